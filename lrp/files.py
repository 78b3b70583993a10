"""The files the tool opens itself, through fsspec: local paths and URLs (file://, memory://, gs://, s3://)
alike: opening, listing and globbing, one spelling per file, and the one line a user reads for a path or URL
that cannot be opened or read. Imports only fsspec, so that every layer may use it."""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator

import fsspec
from fsspec.implementations.local import LocalFileSystem

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
FileSystem = fsspec.AbstractFileSystem
"""What filesystem() gives: a local disk, memory, a bucket, ..."""


def unopenable(what: str, url: str, error: Exception) -> str:
    """The one line for a path or URL whose file system cannot be opened (an unknown protocol, or one whose
    fsspec backend is not installed)."""
    return f"{what} {url!r} cannot be opened ({error}); check the URL or install its fsspec backend."


def unreadable(path: str, error: OSError, what: str = "") -> str:
    """The one line for a file that is missing or cannot be read: 'Cannot read [what ]'path': reason.'"""
    return f"Cannot read {what + ' ' if what else ''}{path!r}: {error.strerror or error}."


def filesystem(url: str, what: str = "File", error: type[Exception] = ValueError) -> tuple[FileSystem, str]:
    """(file system, path on it) of a local path or URL; `error` with unopenable()'s line naming `what` when
    its file system cannot be opened."""
    try:
        return fsspec.core.url_to_fs(url)
    except (ValueError, ImportError) as e:  # an unknown protocol, or one whose fsspec backend is missing
        raise error(unopenable(what, url, e)) from None


def expand(
    pattern: str, what: str = "File", error: type[Exception] = ValueError
) -> tuple[FileSystem, list[str]]:
    """(file system, paths on it) a path, URL or glob names: a glob ("*") its files, sorted; anything else
    itself, whether it exists or not. `error` as for filesystem()."""
    fs, path = filesystem(pattern, what, error)
    if "*" not in path:
        return fs, [path]
    return fs, [p for p in sorted(fs.glob(path)) if not fs.isdir(p)]


def is_local(fs: FileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def url(fs: FileSystem, path: str) -> str:
    """How other libraries (DuckDB, fsspec.open) are told a path of `fs`: a local path as it is, else as
    protocol://path."""
    return path if is_local(fs) else fs.unstrip_protocol(path)


def open_binary(path_or_url: str, decompress: bool = True) -> fsspec.core.OpenFile:
    """A context manager for reading a file's bytes, decompressing .gz, .bz2, .xz and .zst files on the fly
    (unless not decompress)."""
    return fsspec.open(path_or_url, "rb", compression="infer" if decompress else None)


def read_bytes(path_or_url: str) -> bytes:
    """The whole (decompressed) content of a file."""
    with open_binary(path_or_url) as f:
        return f.read()


def is_compressed(path_or_url: str) -> bool:
    """Whether open_binary() decompresses the file (by its suffix)."""
    return fsspec.utils.infer_compression(path_or_url) is not None


def size(path_or_url: str) -> int | None:
    """The file's size in bytes as stored (None where the file system does not say)."""
    fs, path = filesystem(path_or_url)
    return fs.size(path)


def suffix(path_or_url: str) -> str:
    """The lower-case extension that names the format, ignoring a compression suffix: 'a.vec.gz' -> '.vec'."""
    name = posixpath.basename(path_or_url.rstrip("/")).lower()
    for compression in COMPRESSION_SUFFIXES:
        name = name.removesuffix(compression)
    return posixpath.splitext(name)[1]


def sibling(path_or_url: str, name: str) -> str:
    """The path of `name` in the directory that holds `path_or_url`."""
    return child(posixpath.dirname(path_or_url.rstrip("/")) or ".", name)


def child(directory: str, name: str) -> str:
    """The path of `name` inside `directory`."""
    return directory.rstrip("/") + "/" + name


def exists(path_or_url: str) -> bool:
    fs, path = filesystem(path_or_url)
    return fs.exists(path)


def is_dir(path_or_url: str) -> bool:
    fs, path = filesystem(path_or_url)
    return fs.isdir(path)


@contextlib.contextmanager
def local_file(path_or_url: str) -> Iterator[str]:
    """Yield a local path for a file: the file itself when local, else a temporary copy (same file name)."""
    fs, path = filesystem(path_or_url)
    if is_local(fs):
        yield path
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, posixpath.basename(path))
        with fs.open(path, "rb") as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst)
        yield local


def canonical(path_or_url: str) -> str:
    """One spelling per file: local paths (also file:// URLs) absolute with links, "." and ".." resolved;
    other URLs as protocol://path, as fsspec normalises them."""
    fs, path = filesystem(path_or_url)
    if is_local(fs):
        return os.path.realpath(path)
    return fs.unstrip_protocol(path.rstrip("/"))


def spelling(fs: FileSystem, path: str) -> tuple[str, str]:
    """(the spelling of a file to read and write in records, the key to de-duplicate files by): a local file
    as its normalised absolute path (`a/../a/b.jsonl` and `file:///…/a/b.jsonl` alike), keyed by its real
    path (symlinks resolved); another file system's file as its normalised URL."""
    if is_local(fs):
        local = os.path.normpath(os.path.abspath(path))
        return local, os.path.realpath(local)
    normalised = fs.unstrip_protocol(posixpath.normpath(path))
    return normalised, normalised


def within(path: str, directory: str) -> bool:
    """Whether canonical `path` is `directory` (canonical too) or lies under it."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")
