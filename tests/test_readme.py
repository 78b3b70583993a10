"""The README's examples run as written, from a directory other than the repository: the Python examples
(the demo's files are found through pipeline.demo.demo_paths) and the query of a run's output."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```python\n(.*?)```", README, re.S)
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}


@pytest.fixture
def elsewhere(demo_run) -> pathlib.Path:
    """The empty directory in which the README's quick start (`lstm-lrp run`) has written ./lrp-output."""
    assert demo_run.returncode == 0, demo_run.stderr[-2000:]
    return demo_run.cwd


def run_example(code: str, cwd: pathlib.Path, env: dict) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_every_python_example_is_tested():
    assert len(EXAMPLES) == 4


def test_the_python_example_runs_from_any_directory(elsewhere):
    (example,) = [e for e in EXAMPLES if "LSTMExplainer.from_file" in e]
    lines = run_example(example, elsewhere, ENV)
    assert lines[0].startswith("class ") and len(lines) == 1 + 6  # the class, then each of the 6 words


def test_the_query_examples_rank_the_same_tokens(demo_run, monkeypatch, capsys):
    """The DuckDB query and its polars equivalent run as written on the demo's output (tokens/ joined to
    reviews/ on source, a string in both, and target class) and rank the same 20 tokens alike."""
    import duckdb

    assert demo_run.returncode == 0, demo_run.stderr[-2000:]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    examples = [block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "lrp-output/" in block]
    assert [("duckdb" in block, "polars" in block) for block in examples] == [(True, False), (False, True)]
    monkeypatch.chdir(demo_run.cwd)
    relations, sql = [], duckdb.sql
    monkeypatch.setattr(duckdb, "sql", lambda query: relations.append(sql(query)) or relations[-1])
    namespace: dict = {}
    exec(examples[0], {})
    exec(examples[1], namespace)
    assert capsys.readouterr().out.count("token") >= 2, "both print their table"
    from_duckdb, from_polars = relations[0].fetchall(), namespace["top"].rows()
    assert len(from_duckdb) == len(from_polars) == 20
    assert [(t, n) for t, _, n in from_duckdb] == [(t, n) for t, _, n in from_polars]
    np.testing.assert_allclose([r for _, r, _ in from_duckdb], [r for _, r, _ in from_polars], rtol=1e-6)


def test_the_text_example_runs_from_any_directory(elsewhere):
    (example,) = [e for e in EXAMPLES if "explain_text" in e]
    lines = run_example(example, elsewhere, ENV)
    assert len(lines) == 2 and lines[0].startswith("TextExplanation('positive'")
    assert lines[1].startswith("TextExplanation('negative'")


def test_the_layout_names_every_module():
    """Each top-level entry of the Layout section names exactly the Python files of its folder that git
    tracks (package __init__ files aside); the tests/ entry names the shared helpers under tests/."""
    layout = README.split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    entries = dict(re.findall(r"^- `([\w.]+)/` — (.*?)(?=^- |\Z)", layout, re.S | re.M))
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    tracked = [pathlib.PurePosixPath(f) for f in listed.stdout.split()]
    for folder in ("lrp", "transforms", "pipeline", "scripts", "benchmarks"):
        files = {f.name for f in tracked if f.parts[0] == folder} - {"__init__.py"}
        named = set(re.findall(r"`(\w+\.py)`", entries[folder]))
        assert named == files, f"{folder}/: unnamed {sorted(files - named)}, missing {sorted(named - files)}"
    tests = [f for f in tracked if f.parts[0] == "tests"]
    helpers = {str(f) for f in tests if not f.name.startswith(("test_", "conftest"))}
    assert helpers <= set(re.findall(r"`(tests/[\w/]+\.py)`", entries["tests"]))
