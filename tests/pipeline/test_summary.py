"""The summary's counts from the written files, for a runner without metrics (the DaskRunner)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.runners import DASK_RUNNER, runner_path
from pipeline.summary import build_summary, written_totals


def write(directory, name: str, columns: dict) -> None:
    (directory / name).mkdir(parents=True)
    pq.write_table(pa.table(columns), directory / name / "part-0.parquet")


def test_written_totals_count_each_review_once_whatever_its_target_classes(tmp_path):
    write(tmp_path, "reviews", {"source": ["a@0", "a@0", "a@9", "a@9", "b@0"], "n_tokens": [3, 3, 5, 5, 2]})
    write(tmp_path, "dead_letter", {"stage": ["read", "conservation", "conservation"]})
    totals = written_totals(str(tmp_path))
    assert {key: totals[key] for key in ("explained", "tokens", "dead_lettered", "input_records")} == {
        "explained": 3,
        "tokens": 10,
        "dead_lettered": 3,
        "input_records": 6,
    }
    assert totals["conservation_violations"] == 2
    assert totals["skipped_blank"] is totals["oov_tokens"] is totals["padded_tokens"] is None


def test_a_summary_counted_from_the_files_says_so_and_checks_nothing(tmp_path):
    write(tmp_path, "reviews", {"source": ["a@0"], "n_tokens": [4]})
    write(tmp_path, "dead_letter", {"stage": pa.array([], pa.string())})
    summary = build_summary({}, written_totals(str(tmp_path)), {}, {}, DASK_RUNNER, 2.0, measured=False)
    assert summary["counted_from"] == "written_files" and summary["accounting_ok"] is None
    assert summary["explained"] == summary["input_records"] == 1 and summary["tokens_per_second"] == 2.0
    assert summary["skipped_blank_lines"] is summary["oov_tokens"] is summary["padding_waste"] is None


def test_dask_runner_is_spelled_as_its_class_path():
    assert runner_path(["--runner", "DaskRunner", "--x=1"]) == ["--runner", DASK_RUNNER, "--x=1"]
    assert runner_path(["--runner=dask"]) == [f"--runner={DASK_RUNNER}"]
    assert runner_path(["--runner=DirectRunner", "dask"]) == ["--runner=DirectRunner", "dask"]
