"""The output directory: refuse to clobber, stage while running, publish atomically when done.

Results are written under OUTPUT/_incomplete-<run id>/ and moved into OUTPUT/ only when the run has
succeeded; summary.json is written last, so a directory without it is never a complete result.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection

import fsspec

RESULT_DIRS = ("tokens", "reviews", "dead_letter")
STAGING_PREFIX = "_incomplete-"
SUMMARY = "summary.json"
DELETION_FILE = "deletion.parquet"
"""Written by `lstm-lrp evaluate` into a run's output directory."""


class OutputError(ValueError):
    """The output directory cannot be used as it is; the message says why and what to do."""


def filesystem(output: str) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        fs, _, (path,) = fsspec.core.get_fs_token_paths(output)
    except (ValueError, ImportError) as e:  # an unknown protocol, or one whose fsspec backend is missing
        raise OutputError(
            f"Output {output!r} cannot be opened ({e}); check the URL or install its fsspec backend."
        ) from None
    return fs, path.rstrip("/")


def prepare(output: str, overwrite: bool, run_id: str | None = None) -> str:
    """Check OUTPUT and return a fresh staging directory URL inside it (named after run_id, if given).

    Leftovers of killed runs are removed: staging directories, and results whose publishing was cut short
    (result directories beside a staging directory, without summary.json). Anything else makes a non-empty
    directory that is refused unless overwrite; then publish() replaces the results of the earlier run
    (tokens/, reviews/, dead_letter/, summary.json) once the new run has succeeded, and other files stay.
    """
    fs, root = filesystem(output)
    if fs.exists(root) and not fs.isdir(root):
        raise OutputError(f"Output {output!r} is a file; give a directory.")
    entries = {e.rstrip("/").split("/")[-1]: e for e in fs.ls(root, detail=False)} if fs.exists(root) else {}
    removed = leftovers(entries)
    if any(name not in removed for name in entries) and not overwrite:
        raise OutputError(
            f"Output directory {output!r} is not empty; pass --overwrite to replace its results."
        )
    for name in sorted(removed):
        fs.rm(entries[name], recursive=True)
    staging = f"{root}/{STAGING_PREFIX}{run_id or uuid.uuid4().hex[:12]}"
    fs.makedirs(staging, exist_ok=True)
    return output.rstrip("/") + staging[len(root) :]


def leftovers(names: Collection[str]) -> set[str]:
    """The entries of an output directory that killed runs left: staging directories, and result
    directories too when a staging directory is there but summary.json is not (publish was cut short)."""
    staging = {name for name in names if name.startswith(STAGING_PREFIX)}
    interrupted = bool(staging) and SUMMARY not in names
    return staging | ({name for name in names if name in RESULT_DIRS} if interrupted else set())


def publish(output: str, staging: str, summary: dict) -> None:
    """Replace an earlier run's results (its summary.json first), move the staged results into OUTPUT,
    then summary.json (written in staging and renamed, so it is never partial); the staging directory goes
    last, so the next run's prepare recognises a publish that was cut short."""
    fs, root = filesystem(output)
    _, stage = filesystem(staging)
    with fs.open(f"{stage}/{SUMMARY}", "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")
    for name in (SUMMARY, *RESULT_DIRS):
        if fs.exists(f"{root}/{name}"):
            fs.rm(f"{root}/{name}", recursive=True)
    for name in RESULT_DIRS:
        if fs.exists(f"{stage}/{name}"):
            fs.mv(f"{stage}/{name}", f"{root}/{name}", recursive=True)
    fs.mv(f"{stage}/{SUMMARY}", f"{root}/{SUMMARY}")
    fs.rm(stage, recursive=True)
