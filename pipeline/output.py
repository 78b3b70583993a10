"""The output directory: refuse to clobber, lock, stage while running, publish atomically when done.

Results are written under OUTPUT/_incomplete-<run id>/ and moved into OUTPUT/ only when the run has
succeeded; summary.json is written last, so a directory without it is never a complete result. The tool
only ever removes what it wrote itself: staging directories it marked, and the files a manifest
(OUTPUT/_lstm-lrp-files.json) lists as published by an earlier run. A lock file (OUTPUT/_lstm-lrp.lock:
holder pid and host) keeps a second run out while one runs.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping

import lrp.files
from lrp.files import FileSystem, canonical, is_local, within
from transforms.schemas import LOCK, MANIFEST, PUBLISHED, RESULT_DIRS, STAGING_MARK, STAGING_PREFIX, SUMMARY

GLOB_CHARACTERS = "*?[]{}"
UNREADABLE_LOCK_SECONDS = 60
"""An unreadable lock file older than this was left by a crash while it was written."""


class OutputError(ValueError):
    """The output directory cannot be used as it is; the message says why and what to do."""


class WriteError(Exception):
    """Writing the results failed (a full disk, a read-only file system); the message names the output."""


def filesystem(output: str) -> tuple[FileSystem, str]:
    """The output's file system and its path there; OutputError if it cannot be opened."""
    fs, path = lrp.files.filesystem(output, "Output", OutputError)
    return fs, path.rstrip("/")


def check_output(output: str) -> None:
    """Before any work: refuse an output that cannot be opened, that is a file, or that Beam's file writers
    cannot name (glob characters)."""
    fs, root = filesystem(output)
    if any(c in canonical(output) for c in GLOB_CHARACTERS):
        raise OutputError(
            f"Output {output!r} has glob characters ({GLOB_CHARACTERS}), which Beam's file writers expand; "
            "choose a directory name without them."
        )
    if fs.exists(root) and not fs.isdir(root):
        raise OutputError(f"Output {output!r} is a file; give a directory.")


def check_untouched(
    output: str, protected: Mapping[str, str | None], names: Iterable[str] = PUBLISHED
) -> None:
    """Before any work: refuse an output whose published `names` (and staging directories) would touch a
    protected path (what -> path: inputs, model, ...), or that lies inside one (a model directory)."""
    root = canonical(output)
    names = tuple(names)
    for what, path in protected.items():
        if path is None:
            continue
        target = canonical(path)
        if within(root, target):
            raise OutputError(f"Output {output!r} lies inside the {what} {path!r}; choose another --output.")
        first = target[len(root) + 1 :].split("/", 1)[0] if within(target, root) else None
        if first is not None and (first in names or first.startswith(STAGING_PREFIX)):
            raise OutputError(
                f"Output {output!r} would overwrite the {what} {path!r} when it writes {first}; "
                "choose another --output."
            )


@contextlib.contextmanager
def locked(output: str) -> Iterator[None]:
    """Hold OUTPUT's lock file while the block runs; OutputError naming the holder if another live run
    holds it (a lock left by a dead process on this host is taken over). OUTPUT is created if needed, and
    removed again if the block leaves nothing in it."""
    fs, root = filesystem(output)
    lock = f"{root}/{LOCK}"
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    created = not fs.exists(root)
    try:
        fs.makedirs(root, exist_ok=True)
        if not acquire(fs, lock, holder):
            raise OutputError(
                f"Output {output!r} is in use by another run ({describe_holder(fs, lock)}); wait for it to "
                f"finish, or delete {output.rstrip('/')}/{LOCK} if that run is gone."
            )
    except OSError as e:
        raise OutputError(
            f"Cannot write to output {output!r}: {e.strerror or e}; choose a writable --output."
        ) from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError, NotImplementedError):
            fs.rm(lock)
            if created and not fs.ls(root, detail=False):
                fs.rmdir(root)


def acquire(fs: FileSystem, lock: str, holder: dict) -> bool:
    """Create the lock file exclusively (where the file system cannot, after checking that it is absent); a
    stale one (its process, of this host, is gone) is replaced."""
    for _ in range(2):
        try:
            create_exclusively(fs, lock, json.dumps(holder).encode())
            return True
        except FileExistsError:
            if not stale(fs, lock):
                return False
            fs.rm(lock)
    return False


def create_exclusively(fs: FileSystem, path: str, data: bytes) -> None:
    """Write a new file; FileExistsError if it exists."""
    try:
        with fs.open(path, "xb") as f:
            f.write(data)
    except (ValueError, NotImplementedError):  # no exclusive mode here (object stores): check, then write
        if fs.exists(path):
            raise FileExistsError(path) from None
        fs.pipe_file(path, data)


def stale(fs: FileSystem, lock: str) -> bool:
    """Whether the lock's holder is a process of this host that no longer runs (or the lock is unreadable
    junk that a crash while writing it left, a while ago: a live run may be writing it right now)."""
    try:
        with fs.open(lock, "r") as f:
            holder = json.load(f)
        pid, host = int(holder["pid"]), holder["host"]
    except FileNotFoundError:
        return True
    except (ValueError, KeyError, TypeError):
        return is_local(fs) and time.time() - os.path.getmtime(lock) > UNREADABLE_LOCK_SECONDS
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def describe_holder(fs: FileSystem, lock: str) -> str:
    try:
        with fs.open(lock, "r") as f:
            holder = json.load(f)
        return f"pid {holder['pid']} on {holder['host']} since {holder['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its lock file is unreadable"


def manifest(fs: FileSystem, root: str) -> set[str]:
    """The files an earlier run published (relative to root), from its manifest; none without one."""
    try:
        with fs.open(f"{root}/{MANIFEST}", "r") as f:
            files = json.load(f)["files"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return set()
    return {
        name for name in files if isinstance(name, str) and name.split("/", 1)[0] in (*RESULT_DIRS, SUMMARY)
    }


def write_manifest(fs: FileSystem, root: str, files: Iterable[str]) -> None:
    """Replace the manifest (written beside it, then renamed, so it is never partial)."""
    with fs.open(f"{root}/{MANIFEST}.new", "w") as f:
        json.dump({"tool": "lstm-lrp", "files": sorted(files)}, f, indent=1)
    fs.mv(f"{root}/{MANIFEST}.new", f"{root}/{MANIFEST}")


def files_under(fs: FileSystem, root: str, names: Iterable[str]) -> set[str]:
    """Every file under root/name for each name (a file or a directory), relative to root."""
    found = set()
    for name in names:
        path = f"{root}/{name}"
        if fs.isdir(path):
            found |= {p[len(root) + 1 :] for p in fs.find(path)}
        elif fs.exists(path):
            found.add(name)
    return found


def prepare(output: str, overwrite: bool, run_id: str | None = None) -> str:
    """Check OUTPUT (held locked) and return a fresh staging directory URL inside it.

    Leftovers of killed runs are removed: staging directories this tool marked, and the published files
    of a publish that was cut short (a staging directory there, summary.json not). Anything else makes a
    non-empty directory that is refused unless overwrite; then publish() replaces the files the earlier
    run published once the new run has succeeded. Files this tool did not write among its result names
    are refused even with overwrite: it never removes them.
    """
    fs, root = filesystem(output)
    names = {e.rstrip("/").split("/")[-1]: e for e in fs.ls(root, detail=False)}
    staging = {n for n in names if n.startswith(STAGING_PREFIX) and fs.exists(f"{names[n]}/{STAGING_MARK}")}
    ours = manifest(fs, root)
    foreign = sorted(files_under(fs, root, [n for n in names if n in (*RESULT_DIRS, SUMMARY)]) - ours)
    if foreign:
        raise OutputError(
            f"Output {output!r} holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}, which "
            "lstm-lrp did not write and never removes; move it or choose another --output."
        )
    if staging and SUMMARY not in names and ours:  # killed while publishing: its files go, then the list
        remove(fs, root, ours)
        fs.rm(f"{root}/{MANIFEST}")
    for name in staging:
        fs.rm(names[name], recursive=True)
    left = [n for n in fs.ls(root, detail=False) if n.rstrip("/").split("/")[-1] not in (MANIFEST, LOCK)]
    if left and not overwrite:
        raise OutputError(
            f"Output directory {output!r} is not empty; pass --overwrite to replace its results."
        )
    stage = f"{root}/{STAGING_PREFIX}{run_id or uuid.uuid4().hex[:12]}"
    fs.makedirs(stage, exist_ok=True)
    fs.touch(f"{stage}/{STAGING_MARK}")
    return output.rstrip("/") + stage[len(root) :]


def remove(fs: FileSystem, root: str, files: Iterable[str]) -> None:
    """Remove the listed files (relative to root), summary.json first, then result directories left
    empty."""
    for name in sorted(files, key=lambda n: n != SUMMARY):
        if fs.exists(f"{root}/{name}"):
            fs.rm(f"{root}/{name}")
    for name in RESULT_DIRS:
        path = f"{root}/{name}"
        if fs.isdir(path) and not fs.find(path):
            fs.rm(path, recursive=True)


def publish(output: str, staging: str, summary: dict) -> None:
    """Replace the earlier run's published files with the staged results, summary.json last.

    The manifest lists old and new files while they are swapped, so that a publish cut short leaves
    nothing the next run's prepare() cannot tell as its own; the staging directory goes last, so that
    prepare() recognises a publish that was cut short.
    """
    fs, root = filesystem(output)
    _, stage = filesystem(staging)
    with fs.open(f"{stage}/{SUMMARY}", "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")
    old, new = manifest(fs, root), files_under(fs, stage, RESULT_DIRS) | {SUMMARY}
    write_manifest(fs, root, old | new)
    remove(fs, root, old)
    for name in sorted(new - {SUMMARY}):
        fs.makedirs(f"{root}/{name}".rsplit("/", 1)[0], exist_ok=True)
        fs.mv(f"{stage}/{name}", f"{root}/{name}")
    write_manifest(fs, root, new)
    fs.mv(f"{stage}/{SUMMARY}", f"{root}/{SUMMARY}")
    fs.rm(stage, recursive=True)


def discard(staging: str) -> None:
    """After a failed run: remove its staging directory (as much as the failure lets us)."""
    fs, stage = filesystem(staging)
    with contextlib.suppress(OSError):
        fs.rm(stage, recursive=True)


@contextlib.contextmanager
def write_errors(output: str) -> Iterator[None]:
    """A full disk or a read-only file system met in the block (however Beam wraps it) as a WriteError
    naming the output; other errors pass unchanged."""
    try:
        yield
    except BaseException as error:
        seen: BaseException | None = error
        while seen is not None:
            for number, what in (
                (errno.ENOSPC, "No space left on device"),
                (errno.EROFS, "Read-only file system"),
            ):
                if getattr(seen, "errno", None) == number or what in str(seen):
                    message = f"Writing the results to {output!r} failed: {what}; nothing was published."
                    raise WriteError(message) from error
            seen = seen.__cause__ or seen.__context__
        raise
