"""The README's Python example runs as written, from the repository root, and explains the sentence."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_the_python_example_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    assert "LSTMExplainer.from_file" in example
    done = subprocess.run(
        [sys.executable, "-c", example], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
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
