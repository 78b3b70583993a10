"""The one record shape that moves between the stages, and the dead letter any stage makes of it.

A Review is a plain dict (cheap to pickle, easy to build in tests) with these keys; each stage adds its own:
ReadCorpus gives review_id, source, text, label; Tokenize adds tokens, truncated; Embed adds ids (and may
drop the tokens it skips). Every record logic function takes and returns this shape, or a DeadLetter.
"""

from __future__ import annotations

from typing import TypedDict

import apache_beam as beam
import numpy as np

from transforms.schemas import DEAD_LETTER


class ReadReview(TypedDict):
    """What ReadCorpus gives. review_id: --id-field, else source; source: where the record is (see
    transforms.read); label: an integer class or None."""

    review_id: str
    source: str
    text: str
    label: int | None


class Review(ReadReview, total=False):
    """A review at any stage: tokens (after Tokenize), truncated (whether --max-length cut it), ids (after
    Embed: int32 row ids into the model's vector table, one per step the model computes; positions: each
    step's token index in the tokenised review; tokens then holds the tokens of those steps)."""

    tokens: list[str]
    truncated: bool
    ids: np.ndarray
    positions: np.ndarray


class DeadLetter(TypedDict):
    """A record a stage could not process (see transforms.schemas.DEAD_LETTER_SCHEMA)."""

    review_id: str | None
    source: str
    stage: str
    reason: str
    raw: str


class ReviewBatch(list):
    """Embedded reviews of one length bucket, sorted by length: the element ExplainBatches takes."""


def is_dead_letter(row: Review | DeadLetter) -> bool:
    """Whether a record function's result is a dead letter rather than a (further processed) review."""
    return "stage" in row


def tagged(row: Review | DeadLetter) -> Review | beam.pvalue.TaggedOutput:
    """A record function's result as a DoFn emits it: dead letters on the DEAD_LETTER output."""
    return beam.pvalue.TaggedOutput(DEAD_LETTER, row) if is_dead_letter(row) else row
