"""The accounting identity and the rows under splitting: the one-file corpus read in splits of 1 byte, 7
bytes, the default, and whole (--split-bytes 0) gives the same counts, sources and rows."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.run import run

COUNTS = ("input_records", "skipped_blank_lines", "explained", "dead_lettered", "dead_lettered_by_reason")


@pytest.mark.parametrize("split_bytes", ["1", "7", "0"])
def test_counts_sources_and_rows_do_not_depend_on_the_splits(
    split_bytes, direct_run, corpus, tiny_model, tmp_path, read_output
):
    flags = [*corpus.flags(), "--split-bytes", split_bytes, *tiny_model.flags(), "--output", str(tmp_path)]
    run(flags)
    output = read_output(tmp_path)
    summary = output.summary
    assert (
        summary["accounting_ok"]
        and summary["input_records"] == summary["explained"] + summary["dead_lettered"]
    )
    assert {k: summary[k] for k in COUNTS} == {k: direct_run.summary[k] for k in COUNTS}
    expected_splits = {"1": corpus.size(), "7": -(-corpus.size() // 7), "0": 1}[split_bytes]
    assert summary["work_units"]["read_splits"] == expected_splits
    for name in ("tokens", "reviews", "dead_letter"):
        got, want = output.sorted(name), direct_run.sorted(name)
        if name == "reviews":
            got, want = got.drop(columns="logits"), want.drop(columns="logits")
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-6, atol=1e-6)
