"""lrp.files: one entry point for paths and URLs, its spellings and its messages."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import uuid

import fsspec
import pytest

from lrp import files


class Refused(ValueError):
    pass


def memory_dir() -> str:
    """A fresh directory of the memory file system, as it spells its URLs (memory:///...)."""
    return f"memory:///files-{uuid.uuid4().hex}"


def test_an_unknown_protocol_is_one_line_naming_the_input_and_the_fix():
    with pytest.raises(Refused) as refused:
        files.filesystem("nosuch://bucket/a.jsonl", "Input", Refused)
    assert str(refused.value) == (
        "Input 'nosuch://bucket/a.jsonl' cannot be opened (Protocol not known: nosuch); check the URL or "
        "install its fsspec backend."
    )
    with pytest.raises(Refused, match=r"^Output 'nosuch://o/\*.parquet' cannot be opened"):
        files.expand("nosuch://o/*.parquet", "Output", Refused)


def test_an_unreadable_file_is_one_line_naming_it():
    error = FileNotFoundError(2, "No such file or directory", "/x/none.keras")
    assert files.unreadable("/x/m.keras", error) == "Cannot read '/x/m.keras': No such file or directory."
    assert files.unreadable("c.yaml", error, "config file") == (
        "Cannot read config file 'c.yaml': No such file or directory."
    )
    assert files.unreadable("m", OSError("odd")) == "Cannot read 'm': odd."


def test_expand_globs_files_in_order_and_passes_a_plain_path_through():
    root = memory_dir()
    for name in ("b.parquet", "a.parquet", "c.txt", "d.parquet/inner"):
        fsspec.filesystem("memory").pipe(f"{root}/{name}", b"x")
    fs, paths = files.expand(f"{root}/*.parquet")
    assert [files.url(fs, p) for p in paths] == [f"{root}/a.parquet", f"{root}/b.parquet"]  # no directory
    fs, paths = files.expand(f"{root}/none.jsonl")
    assert [files.url(fs, p) for p in paths] == [f"{root}/none.jsonl"]
    assert files.expand(f"{root}/*.none")[1] == []


def test_local_paths_stay_paths_and_other_files_become_urls(tmp_path):
    fs, path = files.filesystem(str(tmp_path / "a.txt"))
    assert files.is_local(fs) and files.url(fs, path) == str(tmp_path / "a.txt")
    fs, path = files.filesystem("memory://bucket/a.txt")
    assert not files.is_local(fs) and files.url(fs, path) == "memory:///bucket/a.txt"


def test_one_spelling_and_one_key_per_file(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b.jsonl").write_text("{}\n")
    os.symlink(tmp_path / "a", tmp_path / "link")
    monkeypatch.chdir(tmp_path)
    real = str(tmp_path / "a" / "b.jsonl")
    for spelled in ("a/b.jsonl", f"file://{real}", "a/../a/b.jsonl"):
        assert files.spelling(*files.filesystem(spelled)) == (real, os.path.realpath(real))
        assert files.canonical(spelled) == os.path.realpath(real)
    linked = str(tmp_path / "link" / "b.jsonl")
    assert files.spelling(*files.filesystem(linked)) == (linked, os.path.realpath(real))  # read as named
    assert files.spelling(*files.filesystem("memory://x/./y/../z.jsonl")) == ("memory:///x/z.jsonl",) * 2
    assert files.canonical("memory://out/") == "memory:///out"
    assert files.within("memory:///out/a/b", "memory:///out") and files.within("/o", "/o")
    assert not files.within("memory:///outside", "memory:///out")


def test_compressed_files_are_read_decompressed_unless_asked_not_to(tmp_path):
    path = tmp_path / "a.txt.gz"
    path.write_bytes(gzip.compress(b"hello\n"))
    assert files.is_compressed(str(path)) and not files.is_compressed(str(tmp_path / "a.txt"))
    assert files.read_bytes(str(path)) == b"hello\n"
    with files.open_binary(str(path), decompress=False) as f:
        assert f.read() == path.read_bytes()
    assert files.size(str(path)) == path.stat().st_size
    assert files.suffix(str(path)) == ".txt" and files.suffix("memory://v/E.VEC.zst") == ".vec"


def test_the_files_and_layout_modules_import_neither_tensorflow_nor_beam(repo_pythonpath):
    check = (
        "import sys, lrp.files, transforms.schemas; "
        "heavy = {'tensorflow', 'keras', 'apache_beam'} & set(sys.modules); assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", check], env=repo_pythonpath, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
