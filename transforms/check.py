"""CheckConservation: every review's books must balance. The engine accounts for every unit of relevance,

    target_score = relevance_sum + rest + absorbed    (lrp.Explanation)

at every eps and bias_factor, so a residual over the tolerance is a numerical failure (float32 drift, a
masking bug, a broken import), not the rule's design: the review is dead-lettered with its residual."""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
import numpy as np

from transforms import coders  # noqa: F401  (the coder of ExplainedBatch)
from transforms.batch import ExplainedBatch
from transforms.schemas import DEAD_LETTER, NAMESPACE, dead_letter


def conserved_rows(batch: ExplainedBatch, tolerance: float) -> np.ndarray:
    """(rows,) bool: |residual| <= tolerance * max(1, |target score|)."""
    residual = batch.reviews.column("conservation_residual").to_numpy()
    score = batch.reviews.column("target_score").to_numpy()
    return np.abs(residual) <= tolerance * np.maximum(1.0, np.abs(score))


class CheckBatch(beam.DoFn):
    """Counts violating reviews and dead-letters every row of each, passing the rest on."""

    def __init__(self, tolerance: float) -> None:
        self.tolerance = tolerance
        self.violations = beam.metrics.Metrics.counter(NAMESPACE, "conservation_violations")
        self.explained = beam.metrics.Metrics.counter(NAMESPACE, "explained")
        self.tokens = beam.metrics.Metrics.counter(NAMESPACE, "tokens")

    def process(self, batch: ExplainedBatch) -> Iterator:
        conserved = conserved_rows(batch, self.tolerance)
        violators = np.unique(batch.review_keys[~conserved])
        self.violations.inc(len(violators))  # reviews, not rows: --target all has one row per class
        if len(violators):
            yield from self.reject(batch, violators, conserved)
            batch = batch.drop_records(violators)
        self.count(batch)
        yield batch

    def reject(
        self, batch: ExplainedBatch, violators: np.ndarray, conserved: np.ndarray
    ) -> Iterator[beam.pvalue.TaggedOutput]:
        """One dead letter per violating review, naming the residual of its first violating row."""
        reviews = batch.reviews.to_pydict()
        for key in violators:
            row = int(np.flatnonzero((batch.review_keys == key) & ~conserved)[0])
            residual, score = reviews["conservation_residual"][row], reviews["target_score"][row]
            reason = (
                f"relevance not conserved: residual {residual:.3g} exceeds the tolerance {self.tolerance:g} "
                f"x max(1, |target score {score:.3g}|)"
            )
            letter = dead_letter(
                "conservation", reason, reviews["source"][row], "", reviews["review_id"][row]
            )
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, letter)

    def count(self, batch: ExplainedBatch) -> None:
        """Count each explained review once, whatever the number of target classes."""
        _, first_rows = np.unique(batch.review_keys, return_index=True)
        self.explained.inc(len(first_rows))
        self.tokens.inc(int(batch.reviews.column("n_tokens").to_numpy()[first_rows].sum()))


class CheckConservation(beam.PTransform):
    """ExplainedBatch -> ExplainedBatch of the reviews whose books balance (main) and dead letters for the
    others (tag DEAD_LETTER)."""

    def __init__(self, tolerance: float = 1e-4) -> None:
        super().__init__()
        self.tolerance = tolerance

    def expand(self, batches):
        check = beam.ParDo(CheckBatch(self.tolerance)).with_output_types(ExplainedBatch)
        return batches | "CompareResidual" >> check.with_outputs(DEAD_LETTER, main="checked")
