"""Embed: tokens -> row ids into the model's vector table, the steps the model computes (transforms.steps:
masked steps left out, unknown tokens under an OOV policy, each kept step with its token's position).

The vectors themselves are looked up per batch in ExplainBatches (one numpy take), so records stay small.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam

from transforms.model import ModelSpec, SharedModel
from transforms.records import DeadLetter, Review, tagged
from transforms.schemas import DEAD_LETTER, NAMESPACE, refused
from transforms.steps import OOV_POLICIES, StepRule, model_steps


class EmbedReview(beam.DoFn):
    """Adds "ids" and "positions" (int32 arrays, one per step the model computes) to a tokenized review, and
    keeps the tokens of those steps; a review the model cannot be asked about is dead-lettered."""

    def __init__(self, model: SharedModel, oov: str) -> None:
        self.model, self.oov = model, oov
        self.unknown = beam.metrics.Metrics.counter(NAMESPACE, "oov_tokens")

    def setup(self) -> None:
        self.rule = self.model.get().rule(self.oov)

    def process(self, review: Review) -> Iterator:
        row, unknown = embed(review, self.rule)
        self.unknown.inc(unknown)
        yield tagged(row)


def embed(review: Review, rule: StepRule) -> tuple[Review | DeadLetter, int]:
    """(the tokenized review with the steps the model computes — "ids", "positions" and their "tokens" —
    or its dead letter; the number of its unknown tokens)."""
    tokens = review["tokens"]
    steps = model_steps(tokens, rule)
    if steps.reason is not None:
        return refused("embed", review, steps.reason), steps.unknown
    kept = tokens if len(steps.positions) == len(tokens) else [tokens[p] for p in steps.positions]
    return {**review, "tokens": kept, "ids": steps.ids, "positions": steps.positions}, steps.unknown


class Embed(beam.PTransform):
    """Tokenized reviews -> reviews with vector-table ids (main output) and dead letters (tag DEAD_LETTER)."""

    def __init__(self, model: ModelSpec | SharedModel, oov: str = "zero") -> None:
        super().__init__()
        if oov not in OOV_POLICIES:
            raise ValueError(f"Unknown OOV policy {oov!r}; use one of {', '.join(OOV_POLICIES)}.")
        self.model = model if isinstance(model, SharedModel) else SharedModel(model)
        self.oov = oov

    def expand(self, reviews):
        return reviews | "LookUpTokens" >> beam.ParDo(EmbedReview(self.model, self.oov)).with_outputs(
            DEAD_LETTER, main="reviews"
        )
