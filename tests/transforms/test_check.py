"""CheckConservation: violation counts and the dead letters of violating reviews, on batches crafted with
known residuals."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from lrp import Explanation
from transforms import CheckConservation, ExplainedBatch
from transforms.check import conserved_rows
from transforms.schemas import DEAD_LETTER
from transforms.tables import explained_batch

TOLERANCE = 1e-4
# review id -> (target score, residual): conserved iff |residual| <= TOLERANCE * max(1, |score|)
RESIDUALS = {
    "exact": (0.7, 0.0),
    "violates": (2.0, 0.5),
    "scaled": (100.0, 0.005),  # within 1e-4 * 100
    "small-score": (0.1, 9e-5),  # within 1e-4 * 1, not 1e-4 * 0.1
    "negative": (-3.0, -0.01),
}


def crafted_batch(target: int, residuals: dict[str, tuple[float, float]]) -> ExplainedBatch:
    """Two-token reviews whose explanation of class `target` has the given score and residual; a quarter
    of what is booked is absorbed, a quarter rests on the initial states."""
    ids = list(residuals)
    scores = np.array([residuals[r][0] for r in ids])
    booked = scores - np.array([residuals[r][1] for r in ids])  # relevance + rest + absorbed
    logits = np.zeros((len(ids), 2))
    logits[:, target] = scores
    relevance = np.zeros((len(ids), 2, 3))
    relevance[:, 0, 0], relevance[:, 1, 2] = 0.25 * booked, 0.25 * booked
    result = Explanation(
        relevance=relevance,
        logits=logits,
        target=np.full(len(ids), target),
        rest=0.25 * booked,
        absorbed=0.25 * booked,
        lengths=np.full(len(ids), 2),
    )
    records = [
        {"review_id": r, "source": f"src:{r}", "tokens": ["a", "b"], "positions": np.arange(2), "label": None}
        | {"truncated": False}
        for r in ids
    ]
    return explained_batch(records, np.arange(len(ids)), result, {"lrp": result.token_relevance})


def two_class_batch() -> ExplainedBatch:
    """Each review explained for classes 0 and 1 (as with --target all): for class 1 with RESIDUALS; for
    class 0 exactly, except 'violates' (residual 0.5 again). Violating rows: 3; violating reviews: 2."""
    class_0 = {r: (score, 0.5 if r == "violates" else 0.0) for r, (score, _) in RESIDUALS.items()}
    return ExplainedBatch.concat([crafted_batch(0, class_0), crafted_batch(1, RESIDUALS)])


def review_targets(batch: ExplainedBatch) -> list[tuple]:
    reviews = batch.reviews.to_pydict()
    return list(zip(reviews["review_id"], reviews["target_class"]))


def token_reviews(batch: ExplainedBatch) -> list[tuple]:
    tokens = batch.tokens.to_pydict()
    return list(zip(tokens["review_id"], tokens["target_class"]))


def counters(result) -> dict[str, int]:
    query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace("lstm_lrp"))
    return {c.key.metric.name: c.committed for c in query["counters"]}


def test_crafted_residuals_are_the_books_as_written():
    reviews = crafted_batch(1, RESIDUALS).reviews.to_pydict()
    np.testing.assert_allclose(
        reviews["conservation_residual"], [r for _, r in RESIDUALS.values()], atol=1e-12
    )
    for row in range(len(RESIDUALS)):  # every row adds up exactly as written
        booked = reviews["relevance_sum"][row] + reviews["rest"][row] + reviews["absorbed"][row]
        assert reviews["conservation_residual"][row] == reviews["target_score"][row] - booked
    conserved = conserved_rows(crafted_batch(1, RESIDUALS), TOLERANCE)
    assert conserved.tolist() == [True, False, True, True, False]
    assert conserved_rows(crafted_batch(1, RESIDUALS), 0.0).tolist() == [True, False, False, False, False]


def test_every_row_of_a_violating_review_is_dead_lettered_with_its_residual():
    kept = ["exact", "scaled", "small-score"]
    p = BeamTestPipeline()
    checked = p | beam.Create([two_class_batch()]) | CheckConservation(TOLERANCE)
    assert_that(
        checked.checked | "Reviews" >> beam.FlatMap(review_targets),
        equal_to([(r, t) for r in kept for t in (0, 1)]),
        label="Reviews",
    )
    assert_that(
        checked.checked | "Tokens" >> beam.FlatMap(token_reviews),
        equal_to([(r, t) for r in kept for t in (0, 1) for _ in range(2)]),
        label="Tokens",
    )
    assert_that(
        checked[DEAD_LETTER]
        | beam.Map(lambda d: (d["review_id"], d["source"], d["stage"], d["reason"], d["raw"])),
        equal_to(
            [
                (
                    "violates",
                    "src:violates",
                    "conservation",
                    "relevance not conserved: residual 0.5 exceeds the tolerance 0.0001 "
                    "x max(1, |target score 2|)",
                    "",
                ),
                (
                    "negative",
                    "src:negative",
                    "conservation",
                    "relevance not conserved: residual -0.01 exceeds the tolerance 0.0001 "
                    "x max(1, |target score -3|)",
                    "",
                ),
            ]
        ),
        label="DeadLetters",
    )
    result = p.run()
    result.wait_until_finish()
    assert counters(result) == {"conservation_violations": 2, "explained": 3, "tokens": 6}


def test_zero_tolerance_flags_every_inexact_review():
    with BeamTestPipeline() as p:
        checked = p | beam.Create([crafted_batch(0, RESIDUALS)]) | CheckConservation(0.0)
        assert_that(checked.checked | beam.FlatMap(review_targets), equal_to([("exact", 0)]), label="Kept")
        assert_that(
            checked[DEAD_LETTER] | beam.Map(lambda d: d["review_id"]),
            equal_to(list(RESIDUALS)[1:]),
            label="DeadLetters",
        )
