"""Hostile or unlucky use of `lstm-lrp run` (issue 10): a run never reads its own output, never runs beside
another run in one output directory, fails in one line leaving nothing behind, and writes nothing outside
--output (and the temporary directory, cleaned up)."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from fsspec.implementations.local import LocalFileSystem

from pipeline import output
from pipeline.cli import main
from pipeline.output import LOCK, MANIFEST, OutputError


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def data(tmp_path):
    """data/a.jsonl and data/b.txt: 5 reviews."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.jsonl").write_text(
        "".join(json.dumps({"id": f"a{n}", "text": "good movie"}) + "\n" for n in range(3)), encoding="utf-8"
    )
    (tmp_path / "data" / "b.txt").write_text("bad film\nfun plot\n", encoding="utf-8")
    return tmp_path / "data"


def test_a_run_never_reads_its_own_output(data, tiny_model):
    """--input 'data/**' --output data/lrp, twice: the second run reads the same 5 reviews, not the first
    run's Parquet and summary."""
    argv = ["run", "--input", f"{data}/**", *tiny_model.flags(), "--output", f"{data}/lrp", "--overwrite"]
    for _ in range(2):
        code, _, stderr = run_main(argv)
        assert code == 0, stderr
        summary = json.loads((data / "lrp" / "summary.json").read_text(encoding="utf-8"))
        assert summary["input_records"] == 5 and summary["explained"] == 5


def lock_file(directory, pid: int) -> None:
    directory.mkdir(exist_ok=True)
    holder = {"pid": pid, "host": socket.gethostname(), "since": "2026-01-01T00:00:00+0000"}
    (directory / LOCK).write_text(json.dumps(holder), encoding="utf-8")


def test_a_second_run_into_a_directory_in_use_is_refused_in_one_line(data, tiny_model, tmp_path):
    out = tmp_path / "out"
    lock_file(out, os.getpid())  # a live process holds it
    code, stdout, stderr = run_main(
        ["run", "--input", str(data / "a.jsonl"), *tiny_model.flags(), "--output", str(out)]
    )
    assert (code, stdout, stderr.count("\n")) == (2, "", 1), stderr
    assert f"is in use by another run (pid {os.getpid()} on {socket.gethostname()}" in stderr
    assert sorted(p.name for p in out.iterdir()) == [LOCK]


def test_a_stale_lock_is_taken_over_and_released(data, tiny_model, tmp_path):
    out = tmp_path / "out"
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    lock_file(out, int(gone.stdout))
    code, _, stderr = run_main(
        ["run", "--input", str(data / "a.jsonl"), *tiny_model.flags(), "--output", str(out)]
    )
    assert code == 0, stderr
    assert not (out / LOCK).exists() and (out / "summary.json").exists()


def test_locks_exclude_each_other(tmp_path):
    with output.locked(str(tmp_path / "out")):
        with (
            pytest.raises(OutputError, match="is in use by another run"),
            output.locked(str(tmp_path / "out")),
        ):
            pass
        assert (tmp_path / "out" / LOCK).exists()
    assert not (tmp_path / "out").exists()  # created for the lock, removed with it


def test_an_unreadable_lock_is_stale_only_once_it_is_old(tmp_path):
    """A live run may be writing its lock file right now; an empty one from an hour ago is a crash's."""
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK).write_text("", encoding="utf-8")
    with pytest.raises(OutputError, match="its lock file is unreadable"), output.locked(str(out)):
        pass
    an_hour_ago = time.time() - 3600
    os.utime(out / LOCK, (an_hour_ago, an_hour_ago))
    with output.locked(str(out)):
        assert json.loads((out / LOCK).read_text(encoding="utf-8"))["pid"] == os.getpid()
    assert not (out / LOCK).exists()


def test_a_read_only_output_is_one_line_and_exit_2(data, tiny_model, tmp_path, monkeypatch):
    def read_only(self, path, exist_ok=False):
        raise OSError(errno.EROFS, "Read-only file system", path)

    monkeypatch.setattr(LocalFileSystem, "makedirs", read_only)
    out = tmp_path / "out"
    code, _, stderr = run_main(
        ["run", "--input", str(data / "a.jsonl"), *tiny_model.flags(), "--output", str(out)]
    )
    assert (code, stderr.count("\n")) == (2, 1), stderr
    assert f"Cannot write to output '{out}': Read-only file system" in stderr
    assert not out.exists()


def test_a_full_disk_is_one_line_and_exit_1_and_leaves_nothing(data, tiny_model, tmp_path, monkeypatch):
    from transforms.write import BundleFiles

    def full(self, name):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(BundleFiles, "write", full)
    (data / "bad.jsonl").write_text("{not json\n", encoding="utf-8")  # a dead letter to write
    out = tmp_path / "out"
    code, _, stderr = run_main(
        ["run", "--input", f"{data}/*.jsonl", *tiny_model.flags(), "--output", str(out)]
    )
    errors = [line for line in stderr.splitlines() if line.startswith("lstm-lrp: error: ")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in stderr, stderr
    assert f"Writing the results to '{out}' failed: No space left on device; nothing was published" in stderr
    assert not out.exists()


def test_output_inside_the_model_directory_is_refused(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(OutputError, match="lies inside the --model"):
        output.check_untouched(str(tmp_path / "model" / "out"), {"--model": str(tmp_path / "model")})
    with pytest.raises(OutputError, match="would overwrite the --config file"):
        config = tmp_path / "run" / "_incomplete-x" / "c.yaml"
        output.check_untouched(str(tmp_path / "run"), {"--config file": f"file://{config}"})
    output.check_untouched(str(tmp_path / "run"), {"--input file 1": str(tmp_path / "run" / "notes.jsonl")})


def test_nothing_is_written_outside_the_output_with_a_fresh_home(data, tiny_model, tmp_path, repo_pythonpath):
    """No ~/.keras/keras.json, no matplotlib font cache, nothing left in the temporary directory."""
    home, temp = tmp_path / "home", tmp_path / "temp"
    home.mkdir(), temp.mkdir()
    env = {**repo_pythonpath, "HOME": str(home), "TMPDIR": str(temp)}
    for name in ("KERAS_HOME", "MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        env.pop(name, None)
    command = [sys.executable, "-m", "pipeline", "run", "--input", str(data / "a.jsonl"), *tiny_model.flags()]
    done = subprocess.run(
        [*command, "--output", str(tmp_path / "out")], env=env, cwd=tmp_path, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(home.rglob("*")) == [] and list(temp.rglob("*")) == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [MANIFEST, "dead_letter", "reviews", "summary.json", "tokens"]
    )


def test_a_keras_file_with_a_lambda_is_refused_before_tensorflow_starts(tmp_path, repo_pythonpath):
    """Its layers are read from config.json: one line, and no TensorFlow (nor its log lines) at all."""
    import keras

    stack = [keras.Input((None,), dtype="int32"), keras.layers.Embedding(9, 4)]
    stack += [
        keras.layers.Lambda(lambda t: t * 2, name="doubling"),
        keras.layers.LSTM(3),
        keras.layers.Dense(2),
    ]
    keras.Sequential(stack).save(tmp_path / "lambda.keras")
    (tmp_path / "r.jsonl").write_text('{"text": "good"}\n', encoding="utf-8")
    code = (
        "import sys\n"
        "from pipeline.run import RunError, run\n"
        "try:\n"
        "    run(['--model', 'lambda.keras', '--input', 'r.jsonl', '--output', 'out'])\n"
        "except RunError as e:\n"
        "    print(e)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=repo_pythonpath, capture_output=True, text=True
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and "Layer 'doubling' (Lambda) is not supported" in lines[0], done.stderr[-2000:]
    assert lines[1] == "False False" and not (tmp_path / "out").exists()


def test_two_runs_into_one_output_at_once(tiny_model, tmp_path, repo_pythonpath):
    """While a run works, a second one into its output is refused in one line and touches nothing; the
    first finishes as if alone."""
    corpus, out = tmp_path / "reviews.jsonl", tmp_path / "out"
    corpus.write_text(
        "".join(json.dumps({"text": "good movie but a boring plot " * 3}) + "\n" for _ in range(4000)),
        encoding="utf-8",
    )
    argv = ["run", "--input", str(corpus), *tiny_model.flags(), "--output", str(out)]
    with open(tmp_path / "first.log", "wb") as log:
        first = subprocess.Popen(
            [sys.executable, "-m", "pipeline", *argv],
            env=repo_pythonpath,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    deadline = time.monotonic() + 240
    while (
        not any(out.glob(f"{output.STAGING_PREFIX}*"))
        and first.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert first.poll() is None, "the first run ended before the second could start"
    code, stdout, stderr = run_main(argv)
    assert (code, stdout, stderr.count("\n")) == (2, "", 1) and "is in use by another run" in stderr, stderr
    assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()[-2000:]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["explained"] == 4000 and not (out / LOCK).exists()
