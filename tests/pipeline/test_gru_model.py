"""A GRU model end to end through the command line: `lstm-lrp run` with every method, `report` and
`evaluate` (word deletion), unchanged from LSTM models."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_cli import run_main
from test_run import assert_accounting, assert_matches_engine, explained_texts


@pytest.fixture(scope="module")
def gru_run(corpus, tiny_gru_model, tmp_path_factory):
    """`lstm-lrp run` of the test corpus with the GRU model: float64, bias_factor 1, LRP, G×I and SA."""
    out = tmp_path_factory.mktemp("gru") / "out"
    flags = ["--dtype", "float64", "--bias-factor", "1", "--method", "lrp,gi,sa", "--output", str(out)]
    code, _, stderr = run_main(["run", *corpus.flags(), *tiny_gru_model.flags(), *flags])
    assert code == 0, stderr
    return out


def test_run_rows_equal_the_engine_and_conserve(gru_run, corpus, gru_engine, read_output):
    output, engine = read_output(gru_run), gru_engine
    texts = explained_texts(corpus)
    lrp_only = output.tables["tokens"].method == "lrp"
    output.tables["tokens"] = output.tables["tokens"][lrp_only]
    assert_matches_engine(output, engine, texts, bias_factor=1.0, dtype="float64")
    assert_accounting(output.summary)
    assert output.summary["conservation_violations"] == 0 and output.tables["reviews"].conserved.all()
    tokens = read_output(gru_run).tables["tokens"]
    explainer = engine.explainers["float64"]
    for rid, (text, _) in texts.items():
        x = explainer.embed(engine.ids(text.lower().split())[None, :])
        for method in ("gi", "sa"):
            rows = tokens[(tokens.review_id == rid) & (tokens.method == method)].sort_values("position")
            expected = explainer.attribute(x, method=method)[0].sum(-1)
            np.testing.assert_allclose(rows.relevance, expected, rtol=1e-6, atol=1e-7)


def test_report_shows_the_gru_run(gru_run, tmp_path):
    page = tmp_path / "report.html"
    code, _, stderr = run_main(["report", str(gru_run), "--html", str(page)])
    assert code == 0, stderr
    text = page.read_text(encoding="utf-8")
    assert 'data-method="lrp"' in text and 'data-method="gi"' in text and "good" in text


def test_evaluate_deletes_words_by_each_method(corpus, tiny_gru_model, tmp_path):
    argv = [
        "evaluate",
        "--input",
        corpus.path,
        *tiny_gru_model.flags(),
        "--output",
        str(tmp_path),
        "--max-k",
        "2",
    ]
    code, _, stderr = run_main(argv)
    assert code == 0, stderr
    curves = pq.read_table(tmp_path / "deletion.parquet").to_pandas()
    assert set(curves.method) == {"lrp", "gi", "sa", "random"} and set(curves.k) == {0, 1, 2}
