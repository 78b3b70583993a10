"""The `lstm-lrp` command: pipeline.cli.main in this process, and `python -m pipeline run` from an empty
directory (what the console script runs)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from pipeline.cli import describe, main
from pipeline.config import ConfigError
from pipeline.demo import DEMO_CORPUS


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) -> (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("lstm-lrp: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.fixture(scope="module")
def first_run(corpus, tiny_model, tmp_path_factory):
    """`lstm-lrp run` on the test corpus: (output directory, exit code, stdout, stderr)."""
    out = tmp_path_factory.mktemp("cli") / "out"
    code, stdout, stderr = run_main(["run", *corpus.flags(), *tiny_model.flags(), "--output", str(out)])
    return out, code, stdout, stderr


def test_run_prints_where_the_results_are(first_run, corpus):
    out, code, stdout, _ = first_run
    assert code == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert f"Explained {len(corpus.explained)} of {corpus.input_records} reviews" in stdout
    assert f"Results: {out}/tokens/, {out}/reviews/, {out}/dead_letter/, {out}/summary.json" in stdout
    assert stdout.strip() == describe(summary, str(out))


def test_a_non_empty_output_is_refused_without_overwrite(first_run, corpus, tiny_model):
    out, *_ = first_run
    before = (out / "summary.json").read_text(encoding="utf-8")
    code, stdout, stderr = run_main(["run", *corpus.flags(), *tiny_model.flags(), "--output", str(out)])
    assert code == 2 and stdout == ""
    assert_one_line_error(stderr, "is not empty", "--overwrite")
    assert (out / "summary.json").read_text(encoding="utf-8") == before


def test_config_file_with_flag_override_and_overwrite(first_run, corpus, tiny_model, tmp_path, read_output):
    """Settings come from the file unless a flag overrides them; --overwrite replaces the results."""
    out, *_ = first_run
    config = tmp_path / "run.yaml"
    config.write_text(
        f"input: [{corpus.path}]\nmodel: {tiny_model.model}\nvocab: {tiny_model.vocab}\n"
        "target: all\neps: 1e-2\nbuckets: [2, 4, 8]\nbatch_size: 2\n",
        encoding="utf-8",
    )
    argv = ["run", "--config", str(config), "--target", "2", "--output", str(out), "--overwrite"]
    code, stdout, _ = run_main(argv)
    assert code == 0 and "Results:" in stdout
    result = read_output(out)
    settings = result.summary["settings"]
    assert (settings["target"], settings["eps"], settings["batch_size"], settings["overwrite"]) == (
        "2",
        0.01,
        2,
        True,
    )
    assert set(result.tables["reviews"]["target_class"]) == {2}
    assert sorted(result.tables["reviews"]["review_id"]) == sorted(corpus.explained)
    assert sorted(p.name for p in out.iterdir()) == [
        "_lstm-lrp-files.json",
        "dead_letter",
        "reviews",
        "summary.json",
        "tokens",
    ]


def test_unknown_config_key_is_one_line_and_exit_2(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("input: a.jsonl\nmodle: m.keras\n", encoding="utf-8")
    assert main(["run", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_line_error(captured.err, "Unknown key(s) modle", "bad.yaml")
    with pytest.raises(ConfigError, match="modle"):
        main(["run", "--config", str(config), "--debug"])


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (["--input", "{tmp}/none-*.jsonl"], ["matches no readable file"]),
        (["--model", "{tmp}/model.keras"], ["Cannot read", "model.keras"]),
        (["--batch-size", "0"], ["--batch-size must be at least 1"]),
        (["--tokenizer", "regex:(a"], ["is not a regular expression"]),
        (["--target", "7"], ["--target 7 is not a class of the model (0..2)"]),
        (["--ouput", "x"], ["Unknown flag --ouput; did you mean --output?"]),
    ],
)
def test_user_errors_are_one_line_and_exit_2(flags, fragments, corpus, tiny_model, tmp_path, capsys):
    defaults = {"--input": corpus.path, "--model": tiny_model.model}
    argv = [a.format(tmp=tmp_path) for a in flags]
    for flag, value in defaults.items():
        if flag not in argv:
            argv += [flag, value]
    argv += ["--vocab", tiny_model.vocab, "--output", str(tmp_path / "out")]
    assert main(["run", *argv]) == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err, *fragments)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_no_command_or_an_unknown_one_exits_2(capsys):
    for argv, message in (
        ([], "the following arguments are required: command"),
        (["explain"], "invalid choice: 'explain'"),
        (["--verbose", "run"], "unrecognized arguments: --verbose"),
        (["--", "run"], "lstm-lrp: error: "),  # invalid choice '--' (3.11) or the command comes first
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err.splitlines()[-1]
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0 and "--config" in capsys.readouterr().out


def test_the_demo_runs_from_an_empty_directory(demo_run):
    """`python -m pipeline run` with no arguments: the bundled demo into ./lrp-output, quietly. At its
    defaults (eps 1e-3, bias_factor 0) the books balance for every review; biases and stabilisers keep
    some."""
    assert demo_run.returncode == 0, demo_run.stderr[-3000:]
    ours = re.compile(r"\d\d:\d\d:\d\d (lstm_lrp|transforms\.\w+|pipeline\.\w+): ")
    assert all(ours.match(line) for line in demo_run.stderr.splitlines()), demo_run.stderr  # quiet
    assert "Report: lstm-lrp report lrp-output" in demo_run.stdout
    assert "Results: lrp-output/tokens/, lrp-output/reviews/, lrp-output/dead_letter/" in demo_run.stdout
    assert "Conservation: 0 reviews over the tolerance (dead-lettered); absorbed by biases" in demo_run.stdout
    summary = json.loads((demo_run.cwd / "lrp-output" / "summary.json").read_text(encoding="utf-8"))
    reviews = sum(1 for line in DEMO_CORPUS.read_text(encoding="utf-8").splitlines() if line.strip())
    assert summary["input_records"] == reviews == summary["explained"] + summary["dead_lettered"]
    assert summary["explained"] > 0 and summary["runner"] == "DirectRunner"
    assert summary["conservation_violations"] == 0 and summary["dead_lettered"] == 0
    share = summary["absorbed_share"]
    assert 0 < share["p50"] <= share["p95"] <= share["max"] and 0 < share["mean"] < 1
    assert sorted(os.listdir(demo_run.cwd)) == ["lrp-output"]
    assert sorted(os.listdir(demo_run.cwd / "lrp-output")) == [
        "_lstm-lrp-files.json",
        "dead_letter",
        "reviews",
        "summary.json",
        "tokens",
    ]


def heavy_imports(*argv: str, env: dict) -> tuple[int, set[str]]:
    """Run `python -m pipeline ARGV --verbose`; its exit code and which of TensorFlow, Keras and Beam it
    imported (--verbose: -X importtime writes to the process's stderr, which quiet runs close)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pipeline", *argv, "--verbose"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "import time:" in line}
    return done.returncode, modules & {"tensorflow", "keras", "apache_beam"}


def test_help_version_and_refusals_import_no_tensorflow(repo_pythonpath, tmp_path):
    assert heavy_imports("--help", env=repo_pythonpath) == (0, set())
    assert heavy_imports("run", "--help", env=repo_pythonpath) == (0, set())
    assert heavy_imports("--version", env=repo_pythonpath) == (0, set())
    code, imported = heavy_imports("run", "--eps", "-1", env=repo_pythonpath)
    assert code == 2 and "tensorflow" not in imported and "keras" not in imported
    code, imported = heavy_imports(
        "evaluate", "--output", str(tmp_path), "--max-k", "-1", env=repo_pythonpath
    )
    assert code == 2 and "tensorflow" not in imported and "keras" not in imported
    code, imported = heavy_imports("report", str(tmp_path), env=repo_pythonpath)
    assert code == 2 and not imported


def test_version_has_one_source(capsys):
    import pipeline

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out == f"lstm-lrp {pipeline.__version__}\n"
    setup = (pathlib.Path(pipeline.__file__).parents[1] / "setup.py").read_text(encoding="utf-8")
    assert "version=VERSION" in setup and pipeline.__version__ not in setup


def test_library_messages_are_silenced_unless_verbose(monkeypatch):
    import pipeline.cli as cli

    calls = []
    monkeypatch.setattr(cli, "silence_libraries", lambda: calls.append(True))
    monkeypatch.setattr(cli, "COMMANDS", {**cli.COMMANDS, "run": (*cli.COMMANDS["run"][:2], "json:dumps")})
    for argv, silenced in ((["run"], True), (["run", "--verbose"], False), (["run", "--debug"], False)):
        calls.clear()
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli.main(argv) == 0
        assert calls == ([True] if silenced else []), argv


def test_a_terminal_sees_a_progress_line(corpus, tiny_model, tmp_path, repo_pythonpath):
    import fcntl
    import pty
    import struct
    import termios

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))  # 24 rows, 160 columns
    argv = ["run", *corpus.flags(), *tiny_model.flags(), "--output", str(tmp_path / "out")]
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *argv],
        stdout=subprocess.DEVNULL,
        stderr=terminal,
        env=repo_pythonpath,
    )
    os.close(terminal)
    seen = b""
    with contextlib.suppress(OSError):  # EIO once the run has closed the terminal
        while chunk := os.read(controller, 4096):
            seen += chunk
    os.close(controller)
    assert process.wait(timeout=300) == 0
    text = seen.decode("utf-8", errors="replace")
    assert re.search(r"explained: 100%.*\[\d\d:\d\d<\d\d:\d\d, .* tokens/s, input read 100%\]", text), text
