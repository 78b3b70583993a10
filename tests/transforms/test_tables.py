"""The result tables of one explained batch, built from an Explanation without Beam."""

from __future__ import annotations

import numpy as np

from lrp import Explanation
from transforms.schemas import REVIEWS_SCHEMA, tokens_schema
from transforms.tables import ExplainedBatch, explained_batch


def two_reviews() -> tuple[list[dict], Explanation]:
    """Review "a" of 3 tokens (its second token skipped: positions 0, 2, 3) and review "b" of 1 token,
    explained for classes 1 and 0."""
    records = [
        {"review_id": "a", "source": "f@0", "tokens": ["x", "y", "z"], "positions": np.array([0, 2, 3])},
        {"review_id": "b", "source": "f@9", "tokens": ["w"], "positions": np.array([0]), "label": 1}
        | {"truncated": True},
    ]
    relevance = np.zeros((2, 3, 2))
    relevance[0, :, 0] = [0.5, 0.25, 0.125]
    relevance[1, 0, 1] = -1.0
    result = Explanation(
        relevance=relevance,
        logits=np.array([[0.0, 1.0], [-0.875, 0.0]]),
        target=np.array([1, 0]),
        rest=np.array([0.0625, 0.0]),
        absorbed=np.array([0.0625, 0.125]),
        lengths=np.array([3, 1]),
    )
    return records, result


def test_rows_per_review_and_per_token_and_method():
    records, result = two_reviews()
    scores = {"lrp": result.token_relevance, "sa": 2 * result.token_relevance}
    batch = explained_batch(records, np.array([7, 8]), result, scores)
    assert batch.reviews.schema.equals(REVIEWS_SCHEMA)
    assert batch.tokens.schema.equals(tokens_schema("float64"))
    reviews = batch.reviews.to_pydict()
    assert reviews["n_tokens"] == [3, 1] and reviews["truncated"] == [False, True]
    assert reviews["label"] == [None, 1] and reviews["target_score"] == [1.0, -0.875]
    assert reviews["relevance_sum"] == [0.875, -1.0] and reviews["conservation_residual"] == [0.0, 0.0]
    assert reviews["logits"] == [[0.0, 1.0], [-0.875, 0.0]] and reviews["predicted_class"] == [1, 1]
    tokens = batch.tokens.to_pydict()
    assert tokens["method"] == ["lrp"] * 4 + ["sa"] * 4
    assert tokens["position"] == [0, 2, 3, 0] * 2 and tokens["token"] == ["x", "y", "z", "w"] * 2
    assert tokens["relevance"] == [0.5, 0.25, 0.125, -1.0, 1.0, 0.5, 0.25, -2.0]
    assert tokens["target_class"] == [1, 1, 1, 0] * 2 and tokens["source"][3] == "f@9"
    assert batch.review_keys.tolist() == [7, 8] and batch.token_keys.tolist() == [7, 7, 7, 8] * 2


def test_a_record_is_dropped_with_all_its_rows():
    records, result = two_reviews()
    one = explained_batch(records, np.array([0, 1]), result, {"lrp": result.token_relevance})
    both = ExplainedBatch.concat([one, one])
    kept = both.drop_records(np.array([0]))
    assert kept.reviews.column("review_id").to_pylist() == ["b", "b"]
    assert kept.tokens.column("token").to_pylist() == ["w", "w"]
    assert (kept.review_keys.tolist(), kept.token_keys.tolist()) == ([1, 1], [1, 1])
