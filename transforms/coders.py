"""Coders for the batches that move between the stages: pickled like Beam's fallback, but with a size
estimate read from the batch instead of pickling it.

Beam samples the size of elements on every PCollection for its metrics (about 10 ln N of N elements, by
serialising them); for batches of thousands of tokens that serialisation cost ~5% of a run. These coders
estimate the size from the arrays' byte counts instead.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import apache_beam as beam
import pyarrow as pa

from transforms.batch import ExplainedBatch
from transforms.records import ReviewBatch


class EstimatedCoder(beam.coders.Coder):
    """Pickles values; estimate_size(value) = size(value), without serialising."""

    def __init__(self, size: Callable[[Any], int]) -> None:
        self.size = size

    def encode(self, value: Any) -> bytes:
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes) -> Any:
        return pickle.loads(encoded)

    def estimate_size(self, value: Any) -> int:
        return self.size(value)

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self) -> type:
        return Any

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.size == self.size

    def __hash__(self) -> int:
        return hash((type(self), self.size))


def table_bytes(table: pa.Table) -> int:
    """The bytes of a table's buffers."""
    return table.nbytes


class ArrowTableCoder(EstimatedCoder):
    """pa.Table, sized by its buffers."""

    def __init__(self) -> None:
        super().__init__(table_bytes)


def batch_bytes(batch: list) -> int:
    """About the bytes of a batch of embedded reviews: ids and positions (4 bytes each), ~8 bytes of text and
    of token per step, ~100 bytes of fields per review."""
    return sum(24 * len(review["ids"]) + 100 for review in batch)


def explained_bytes(batch: ExplainedBatch) -> int:
    """The bytes of an ExplainedBatch's tables and keys."""
    return batch.reviews.nbytes + batch.tokens.nbytes + batch.review_keys.nbytes + batch.token_keys.nbytes


class ReviewBatchCoder(EstimatedCoder):
    """ReviewBatch, sized by batch_bytes."""

    def __init__(self) -> None:
        super().__init__(batch_bytes)


class ExplainedBatchCoder(EstimatedCoder):
    """ExplainedBatch, sized by its tables."""

    def __init__(self) -> None:
        super().__init__(explained_bytes)


beam.coders.registry.register_coder(pa.Table, ArrowTableCoder)
beam.coders.registry.register_coder(ReviewBatch, ReviewBatchCoder)
beam.coders.registry.register_coder(ExplainedBatch, ExplainedBatchCoder)
