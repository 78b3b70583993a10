"""fsspec helpers: every importer reads local paths and URLs (file://, memory://, gs://, s3://) alike."""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import fsspec
from fsspec.implementations.local import LocalFileSystem

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")


def open_binary(path_or_url: str) -> fsspec.core.OpenFile:
    """A context manager for reading a file's bytes, decompressing .gz, .bz2, .xz and .zst files on the
    fly."""
    return fsspec.open(path_or_url, "rb", compression="infer")


def read_bytes(path_or_url: str) -> bytes:
    """The whole (decompressed) content of a file."""
    with open_binary(path_or_url) as f:
        return f.read()


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
    fs, path = fsspec.core.url_to_fs(path_or_url)
    return fs.exists(path)


def is_dir(path_or_url: str) -> bool:
    fs, path = fsspec.core.url_to_fs(path_or_url)
    return fs.isdir(path)


@contextmanager
def local_file(path_or_url: str) -> Iterator[str]:
    """Yield a local path for a file: the file itself when local, else a temporary copy (same file name)."""
    fs, path = fsspec.core.url_to_fs(path_or_url)
    if isinstance(fs, LocalFileSystem):
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
    fs, path = fsspec.core.url_to_fs(path_or_url)
    if isinstance(fs, LocalFileSystem):
        return os.path.realpath(path)
    return fs.unstrip_protocol(path.rstrip("/"))


def within(path: str, directory: str) -> bool:
    """Whether canonical `path` is `directory` (canonical too) or lies under it."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")
