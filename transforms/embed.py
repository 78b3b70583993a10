"""Embed: tokens -> row ids into the model's vector table, under an out-of-vocabulary policy.

The vectors themselves are looked up per batch in ExplainBatches (one numpy take), so records stay small.
OOV policies: "zero" (unknown tokens get the model's OOV id, or a zero vector when it has none — which a
model with a Masking layer skips, so there they are dropped as under "skip"), "skip" (unknown tokens are
dropped), "dead-letter" (a review with any unknown token is dead-lettered). A review
with no known token at all is dead-lettered under every policy.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
import numpy as np

from transforms.model import LoadedModel, ModelSpec, SharedModel
from transforms.records import DeadLetter, Review, tagged
from transforms.schemas import DEAD_LETTER, NAMESPACE, refused

OOV_POLICIES = ("zero", "skip", "dead-letter")


class EmbedReview(beam.DoFn):
    """Adds "ids" (int32 array, one per kept token) to a tokenized review."""

    def __init__(self, model: SharedModel, oov: str) -> None:
        self.model, self.oov = model, oov
        self.unknown = beam.metrics.Metrics.counter(NAMESPACE, "oov_tokens")

    def setup(self) -> None:
        self.loaded = self.model.get()

    def process(self, review: Review) -> Iterator:
        row, unknown = embed(review, self.loaded, self.oov)
        self.unknown.inc(unknown)
        yield tagged(row)


def embed(review: Review, loaded: LoadedModel, oov: str) -> tuple[Review | DeadLetter, int]:
    """(the tokenized review with "ids" added, or its dead letter; the number of its unknown tokens)."""
    tokens = review["tokens"]
    ids = [loaded.token_ids.get(t, -1) for t in tokens]
    unknown = [t for t, i in zip(tokens, ids) if i < 0]
    if len(unknown) == len(tokens):
        reason = f"no token of the review is in the vocabulary ({len(tokens)} unknown)"
        return refused("embed", review, reason), len(unknown)
    if unknown and oov == "dead-letter":
        return refused("embed", review, f"{len(unknown)} unknown tokens: {' '.join(unknown[:20])}"), len(
            unknown
        )
    if unknown and (oov == "skip" or loaded.masks_unknown):  # as the model would skip them
        kept = [(t, i) for t, i in zip(tokens, ids) if i >= 0]
        row = {**review, "tokens": [t for t, _ in kept], "ids": np.array([i for _, i in kept], np.int32)}
        return row, len(unknown)
    row = {**review, "ids": np.array([i if i >= 0 else loaded.unknown_id for i in ids], np.int32)}
    return row, len(unknown)


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
