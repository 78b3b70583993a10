"""The README's examples run as written, from a directory other than the repository: the Python examples
(the demo's files are found through pipeline.demo.demo_paths) and the query of a run's output."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```python\n(.*?)```", README, re.S)
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory) -> pathlib.Path:
    """An empty directory in which `lstm-lrp run` (the README's quick start) has written ./lrp-output."""
    directory = tmp_path_factory.mktemp("elsewhere")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run"], cwd=directory, env=ENV, capture_output=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return directory


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
    assert len(EXAMPLES) == 3


def test_the_python_example_runs_from_any_directory(elsewhere):
    (example,) = [e for e in EXAMPLES if "LSTMExplainer.from_file" in e]
    lines = run_example(example, elsewhere, ENV)
    assert lines[0].startswith("class ") and len(lines) == 1 + 6  # the class, then each of the 6 words


def test_the_text_example_runs_from_any_directory(elsewhere):
    (example,) = [e for e in EXAMPLES if "explain_text" in e]
    lines = run_example(example, elsewhere, ENV)
    assert len(lines) == 2 and lines[0].startswith("TextExplanation('positive'")
    assert lines[1].startswith("TextExplanation('negative'")


def test_the_query_example_runs_on_the_quick_starts_output(elsewhere):
    (example,) = [e for e in EXAMPLES if "duckdb" in e]
    lines = run_example(example, elsewhere, ENV)
    assert "token" in lines[1] and len(lines) > 5
