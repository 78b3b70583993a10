"""Outputs appear only when complete: a run killed with SIGKILL midway leaves nothing that looks complete,
the same command run again cleans up after it and gives the rows of an uninterrupted run; leftovers of
killed runs are cleaned, other content is refused without --overwrite."""

from __future__ import annotations

import contextlib
import io
import json
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from pipeline import output
from pipeline.cli import main
from pipeline.output import OutputError
from transforms.schemas import LOCK, MANIFEST, RESULT_DIRS, STAGING_MARK, STAGING_PREFIX, SUMMARY

REVIEWS = 4000
WORDS = (
    "good",
    "bad",
    "great",
    "awful",
    "movie",
    "film",
    "plot",
    "actor",
    "boring",
    "fun",
    "the",
    "a",
    "xyzzy",
)
RESULTS = [MANIFEST, "dead_letter", "reviews", "summary.json", "tokens"]


def write_corpus(path) -> None:
    """REVIEWS short reviews of random words; some are only unknown words and get dead-lettered."""
    rng = random.Random(0)
    lines = []
    for n in range(REVIEWS):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 12))]
        lines.append(json.dumps({"id": f"r{n}", "text": " ".join(words), "label": n % 3}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def kill_midway(command: list[str], out, env, log) -> subprocess.Popen:
    """Start command and SIGKILL it as soon as the run has written a result file into its staging
    directory (results written, not yet published)."""
    with open(log, "wb") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 180
    while process.poll() is None and time.monotonic() < deadline:
        if any(out.glob(f"{STAGING_PREFIX}*/*/**/*.parquet")):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    else:
        process.kill()
        pytest.fail(f"the run ended (or stalled) before it could be killed midway: {log.read_text()[-2000:]}")
    process.wait(timeout=30)
    return process


def run_quietly(argv: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        return main(argv)


def rows(directory, name: str, keys: list[str]) -> pd.DataFrame:
    frame = pd.read_parquet(directory / name)
    return frame.sort_values(keys).reset_index(drop=True)


def test_a_killed_run_leaves_nothing_complete_and_the_same_command_gives_the_same_rows(
    tiny_model, tmp_path, repo_pythonpath
):
    corpus, out, reference = tmp_path / "reviews.jsonl", tmp_path / "out", tmp_path / "reference"
    write_corpus(corpus)
    argv = ["run", "--input", str(corpus), *tiny_model.flags(), "--output", str(out)]
    process = kill_midway([sys.executable, "-m", "pipeline", *argv], out, repo_pythonpath, tmp_path / "log")
    assert process.returncode == -signal.SIGKILL

    left = sorted(p.name for p in out.iterdir() if p.name != LOCK)  # the dead run's lock: stale
    assert len(left) == 1 and left[0].startswith(STAGING_PREFIX)  # no summary.json, tokens/, reviews/, ...
    assert any((out / left[0]).rglob("*.parquet"))  # it was killed midway: results staged, not published

    assert run_quietly(argv) == 0  # the same command again, without --overwrite
    assert sorted(p.name for p in out.iterdir()) == RESULTS
    assert run_quietly([*argv[:-1], str(reference)]) == 0  # an uninterrupted run
    again, whole = (json.loads((d / SUMMARY).read_text(encoding="utf-8")) for d in (out, reference))
    for name in ("input_records", "explained", "dead_lettered", "tokens", "accounting_ok"):
        assert again[name] == whole[name], name
    assert again["input_records"] == REVIEWS and again["dead_lettered"] > 0 and again["accounting_ok"]

    keys = {"reviews": ["review_id"], "tokens": ["review_id", "position"], "dead_letter": ["source"]}
    for name, key in keys.items():
        got, want = rows(out, name, key), rows(reference, name, key)
        assert len(got) == len(want) and list(got.columns) == list(want.columns), name
        for column in got.columns:
            if column in ("relevance", "target_score", "relevance_sum", "rest", "conservation_residual"):
                np.testing.assert_allclose(got[column], want[column], rtol=1e-5, atol=1e-6)
            elif column == "logits":
                np.testing.assert_allclose(
                    np.stack(got[column]), np.stack(want[column]), rtol=1e-5, atol=1e-6
                )
            else:
                assert got[column].tolist() == want[column].tolist(), (name, column)


@pytest.fixture
def stage(tmp_path):
    """Make an output directory holding the given entries, names ending in / directories (with a file), as
    an earlier run of the tool left them: its published files listed in the manifest, its staging
    directories marked. Entries in `foreign` are the user's own."""

    def make(*names: str, foreign: tuple[str, ...] = ()):
        root = tmp_path / "out"
        root.mkdir(exist_ok=True)
        published = []
        for name in (*names, *foreign):
            if name.endswith("/"):
                (root / name).mkdir(exist_ok=True)
                (root / name / f"part-{len(published)}.parquet").write_bytes(b"x")
                if name.startswith(STAGING_PREFIX) and name not in foreign:
                    (root / name / STAGING_MARK).touch()
            else:
                (root / name).write_text("{}", encoding="utf-8")
            if name in names and name.rstrip("/") in (*RESULT_DIRS, SUMMARY):
                published.append(f"{name}part-{len(published)}.parquet" if name.endswith("/") else name)
        if published:
            (root / MANIFEST).write_text(json.dumps({"files": published}), encoding="utf-8")
        return root

    return make


def entries(root) -> list[str]:
    hidden = (MANIFEST, LOCK)
    return sorted(
        p.name for p in root.iterdir() if not p.name.startswith(STAGING_PREFIX) and p.name not in hidden
    )


def test_leftovers_of_a_killed_run_are_cleaned_without_overwrite(stage):
    root = stage(f"{STAGING_PREFIX}old/")
    staging = output.prepare(str(root), overwrite=False)
    assert [p.name for p in root.iterdir()] == [
        staging.rsplit("/", 1)[1]
    ] and staging != f"{root}/_incomplete-old"


def test_a_publish_cut_short_is_cleaned_without_overwrite(stage):
    """Killed while moving results into place: result directories beside the staging one, no summary.json."""
    root = stage(f"{STAGING_PREFIX}old/", "tokens/", "reviews/")
    output.prepare(str(root), overwrite=False)
    assert entries(root) == []


def test_a_complete_result_or_other_content_is_refused_without_overwrite(stage):
    root = stage(f"{STAGING_PREFIX}old/", "tokens/", "reviews/", "dead_letter/", SUMMARY)
    with pytest.raises(OutputError, match="is not empty; pass --overwrite to replace its results"):
        output.prepare(str(root), overwrite=False)
    assert entries(root) == RESULTS[1:]


def test_overwrite_replaces_the_results_and_keeps_other_files(stage):
    root = stage("tokens/", "reviews/", "dead_letter/", SUMMARY, foreign=("notes.txt", "corpus/"))
    with pytest.raises(OutputError):
        output.prepare(str(root), overwrite=False)
    staging = output.prepare(str(root), overwrite=True)
    staged = staging.rsplit("/", 1)[1]
    old = ["corpus", "dead_letter", "notes.txt", "reviews", "summary.json", "tokens"]
    assert entries(root) == old  # the earlier results stay until the new run succeeds
    (root / staged / "tokens").mkdir()
    (root / staged / "tokens" / "part-new.parquet").write_bytes(b"y")
    output.publish(str(root), staging, {"explained": 1})
    assert entries(root) == ["corpus", "notes.txt", "summary.json", "tokens"]
    assert [p.name for p in (root / "tokens").iterdir()] == ["part-new.parquet"]
    assert json.loads((root / SUMMARY).read_text(encoding="utf-8")) == {"explained": 1}
    assert json.loads((root / MANIFEST).read_text(encoding="utf-8"))["files"] == [
        "summary.json",
        "tokens/part-new.parquet",
    ]
    assert not any(p.name.startswith(STAGING_PREFIX) for p in root.iterdir())


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_says_so_in_one_line_and_leaves_only_what_the_next_run_cleans(
    sent, code, tiny_model, tmp_path, repo_pythonpath
):
    corpus, out, log = tmp_path / "reviews.jsonl", tmp_path / "out", tmp_path / "log"
    write_corpus(corpus)
    argv = ["run", "--input", str(corpus), *tiny_model.flags(), "--output", str(out)]
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline", *argv],
            env=repo_pythonpath,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 180
    while process.poll() is None and not any(out.glob(f"{STAGING_PREFIX}*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(1.0)  # inside the pipeline's run
    assert process.poll() is None, f"the run ended before it could be interrupted: {log.read_text()[-2000:]}"
    process.send_signal(sent)
    signalled = time.monotonic()
    process.wait(timeout=60)
    stopped = time.monotonic() - signalled
    err = log.read_text(encoding="utf-8")
    assert process.returncode == code, err[-2000:]
    assert err.splitlines()[-1] == "interrupted: nothing was published" and "Traceback" not in err, err
    assert stopped < 20, f"took {stopped:.1f} s to stop"
    left = [p.name for p in out.iterdir() if p.name != LOCK] if out.exists() else []
    assert not set(left) & {SUMMARY, *RESULT_DIRS}, left  # nothing published
    assert all(name.startswith(STAGING_PREFIX) for name in left), left  # what the next run removes
    assert run_quietly(argv) == 0
    assert sorted(p.name for p in out.iterdir() if p.name != LOCK) == RESULTS


@pytest.mark.parametrize("overwrite", [False, True])
def test_files_the_tool_did_not_write_are_never_removed(stage, overwrite):
    """A user's file among the result names (reviews/corpus.jsonl), a staging-like directory the tool did
    not mark: refused, even with --overwrite, and left as they are."""
    root = stage("tokens/", SUMMARY, foreign=("reviews/",))
    (root / "reviews" / "corpus.jsonl").write_text("{}\n", encoding="utf-8")
    with pytest.raises(
        OutputError, match=r"holds reviews/corpus.jsonl, reviews/part-2.parquet, which lstm-lrp"
    ):
        output.prepare(str(root), overwrite=overwrite)
    assert (root / "reviews" / "corpus.jsonl").exists() and (root / "tokens").exists()


def test_a_staging_directory_the_tool_did_not_mark_is_not_removed(tmp_path):
    mine = tmp_path / "out" / f"{STAGING_PREFIX}mine"
    mine.mkdir(parents=True)
    (mine / "data.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputError, match="is not empty"):
        output.prepare(str(tmp_path / "out"), overwrite=False)
    output.prepare(str(tmp_path / "out"), overwrite=True)
    assert (mine / "data.txt").read_text(encoding="utf-8") == "mine"
