"""Baseline methods beside LRP: ExplainBatch writes token rows per requested method (gi, sa, lrp), and
`lstm-lrp run --method` carries them through the pipeline into tokens/."""

from __future__ import annotations

import glob
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.config import ConfigError, RunConfig, coerce
from pipeline.demo import DEMO_CORPUS, DEMO_MODEL, DEMO_VOCAB
from pipeline.run import run
from tests.conftest import bundle_outputs
from transforms import ExplainSettings, ModelSpec, SharedModel
from transforms.explain import ExplainBatch

SPEC = ModelSpec(str(DEMO_MODEL), vocab=str(DEMO_VOCAB))


@pytest.fixture(scope="module")
def model() -> SharedModel:
    shared = SharedModel(SPEC)
    shared.loaded = shared.get()  # a strong reference keeps the shared instance alive for the module
    return shared


def demo_records(loaded, count: int) -> list[dict]:
    """The first `count` demo reviews as ExplainBatch receives them (tokenized, embedded, labelled)."""
    with open(DEMO_CORPUS, encoding="utf-8") as f:
        rows = [json.loads(line) for line, _ in zip(f, range(count))]
    records = []
    for n, row in enumerate(rows):
        tokens = row["text"].lower().split()
        ids = np.array([loaded.token_ids.get(t, loaded.unknown_id) for t in tokens], np.int32)
        source = f"reviews.jsonl:{n + 1}"
        records.append({"review_id": row["id"], "source": source, "text": row["text"], "label": row["label"]})
        records[-1] |= {"tokens": tokens, "ids": ids, "positions": np.arange(len(ids)), "truncated": False}
    return records


def explain(model: SharedModel, records: list[dict], **settings):
    """Run ExplainBatch on one batch outside Beam; returns its ExplainedBatch outputs."""
    return bundle_outputs(ExplainBatch(model, ExplainSettings(**settings)), records)


def test_each_method_explains_the_same_target(model):
    loaded = model.get()
    records = demo_records(loaded, 6)
    (batch,) = explain(model, records, target="all", methods=("sa", "lrp", "gi"))
    reviews, tokens = batch.reviews.to_pandas(), batch.tokens.to_pandas()
    assert len(reviews) == 2 * len(records), "review rows stay one per (review, target), from LRP"
    n_tokens = sum(len(r["tokens"]) for r in records)
    assert tokens.groupby(["method", "target_class"]).size().to_dict() == {
        (m, c): n_tokens for m in ("gi", "lrp", "sa") for c in (0, 1)
    }
    explainer = loaded.explainer
    for record in records[:3]:
        x = loaded.table[record["ids"]][None]
        for target in (0, 1):
            rows = tokens[(tokens.review_id == record["review_id"]) & (tokens.target_class == target)]
            by_method = {m: g.sort_values("position").relevance.to_numpy() for m, g in rows.groupby("method")}
            np.testing.assert_allclose(
                by_method["gi"], explainer.attribute(x, target=target)[0].sum(-1), 1e-5
            )
            np.testing.assert_allclose(
                by_method["sa"], explainer.attribute(x, target=target, method="sa")[0].sum(-1), 1e-5
            )
            lrp = explainer.explain(x, target=target).token_relevance[0]
            np.testing.assert_allclose(by_method["lrp"], lrp, rtol=1e-5, atol=1e-7)
            review = reviews[(reviews.review_id == record["review_id"]) & (reviews.target_class == target)]
            assert review.relevance_sum.item() == pytest.approx(lrp.sum(), rel=1e-4, abs=1e-6)


def test_without_lrp_no_lrp_token_rows_but_review_rows(model):
    records = demo_records(model.get(), 4)
    (batch,) = explain(model, records, methods=("gi",))
    assert set(batch.tokens.column("method").to_pylist()) == {"gi"}
    assert batch.reviews.num_rows == 4 and len(batch.token_keys) == batch.tokens.num_rows
    first = batch.review_keys[np.array(batch.reviews.column("review_id").to_pylist()) == "demo-0001"]
    kept = batch.drop_records(first)
    assert "demo-0001" not in kept.tokens.column("review_id").to_pylist()
    assert kept.tokens.num_rows == batch.tokens.num_rows - len(records[0]["tokens"])


def test_method_validation():
    with pytest.raises(ValueError, match="distinct names among lrp, gi, sa"):
        ExplainSettings(methods=("lrp", "ig"))
    with pytest.raises(ValueError, match="distinct names"):
        ExplainSettings(methods=("gi", "gi"))
    assert coerce("method", "lrp, gi") == ("lrp", "gi")
    assert coerce("method", ["sa"]) == ("sa",)
    with pytest.raises(ConfigError, match="got ''"):
        RunConfig(input=("x",), model="m", method=()).validate()


def test_run_writes_the_requested_methods(tmp_path):
    corpus = tmp_path / "reviews.jsonl"
    with open(DEMO_CORPUS, encoding="utf-8") as f:
        corpus.write_text("".join(line for line, _ in zip(f, range(12))), encoding="utf-8")
    output = tmp_path / "out"
    args = ["--input", str(corpus), "--model", str(DEMO_MODEL), "--vocab", str(DEMO_VOCAB)]
    summary = run([*args, "--output", str(output), "--method", "sa,gi"])
    assert summary["settings"]["method"] == ["sa", "gi"]
    tokens = pq.read_table(glob.glob(f"{output}/tokens/*.parquet")).to_pandas()
    reviews = pq.read_table(glob.glob(f"{output}/reviews/*.parquet")).to_pandas()
    assert tokens.groupby("method").size().to_dict() == {"gi": summary["tokens"], "sa": summary["tokens"]}
    assert len(reviews) == 12 and (tokens[tokens.method == "sa"].relevance >= 0).all()
