"""BucketByLength: group reviews of similar length into batches, so padding stays small and traced graph
shapes repeat.

Batches are formed within each bundle (what Beam's SortAndBatchElements does with one sort key): no keys,
no user state and no shuffle, so the number of explain work units grows with the corpus (every read split
makes its own batches, and batches are explained where they are formed), no key holds any reviews, and
runners without user state can run it. Each bucket's reviews are sorted by length before they are cut
into batches (see SORT_BATCHES); a bundle has at most one partial batch per bucket (and window).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Sequence

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from transforms.coders import ReviewBatch
from transforms.records import Review

DEFAULT_BUCKETS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256)
"""Chosen by benchmarks/sweep.py: on SST, 21% padding and the best tokens/s (8,16,32,64: 36%)."""


def bucket_of(length: int, boundaries: Sequence[int]) -> int:
    """The smallest boundary >= length; beyond the last, the next power of two (long reviews still share
    shapes)."""
    index = bisect.bisect_left(boundaries, length)
    return boundaries[index] if index < len(boundaries) else 1 << (length - 1).bit_length()


def check_buckets(boundaries: Sequence[int]) -> tuple[int, ...]:
    """Validate bucket boundaries: non-empty, positive, strictly increasing."""
    bounds = tuple(int(b) for b in boundaries)
    if not bounds or bounds[0] < 1 or any(a >= b for a, b in itertools.pairwise(bounds)):
        raise ValueError(
            f"Buckets must be positive and strictly increasing, like 8,16,32; got {list(bounds)}."
        )
    return bounds


SORT_BATCHES = 16
"""Reviews of a bucket are sorted by length SORT_BATCHES batches at a time before being cut into batches:
on SST in 1 MiB splits, 3% padding instead of 16% for batches cut in arrival order (benchmarks/scaleout.py),
with at most SORT_BATCHES * batch_size reviews held per bucket."""


class Batcher:
    """Embedded reviews -> lists of at most batch_size reviews of one length bucket (and one `group`), each
    cut from reviews sorted by length (ties in arrival order, so batches depend only on the input order)."""

    def __init__(self, boundaries: Sequence[int], batch_size: int) -> None:
        self.boundaries, self.batch_size = boundaries, batch_size
        self.buffers: dict[tuple, list[Review]] = {}

    def add(self, review: Review, group: object = None) -> list[list[Review]]:
        """The batches that review completes (none, or SORT_BATCHES of them)."""
        key = (group, bucket_of(len(review["ids"]), self.boundaries))
        buffer = self.buffers.setdefault(key, [])
        buffer.append(review)
        if len(buffer) < SORT_BATCHES * self.batch_size:
            return []
        del self.buffers[key]
        return self.cut(buffer)

    def flush(self) -> Iterator[tuple[object, list[Review]]]:
        """(group, batch) of every review held, emptying the buffers."""
        buffers, self.buffers = self.buffers, {}
        for (group, _), buffer in buffers.items():
            for batch in self.cut(buffer):
                yield group, batch

    def cut(self, reviews: list[Review]) -> list[ReviewBatch]:
        ordered = sorted(reviews, key=lambda r: len(r["ids"]))
        size = self.batch_size
        return [ReviewBatch(ordered[i : i + size]) for i in range(0, len(ordered), size)]


class BatchInBundle(beam.DoFn):
    """Reviews -> lists of at most batch_size reviews of one length bucket; each bundle's partial batches
    are emitted when it finishes."""

    def __init__(self, boundaries: Sequence[int], batch_size: int) -> None:
        self.boundaries, self.batch_size = boundaries, batch_size

    def start_bundle(self) -> None:
        self.batcher = Batcher(self.boundaries, self.batch_size)

    def process(self, review: Review, window=beam.DoFn.WindowParam) -> Iterator[list[Review]]:
        yield from self.batcher.add(review, window)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for window, batch in self.batcher.flush():
            yield WindowedValue(batch, window.max_timestamp(), (window,))


class BucketByLength(beam.PTransform):
    """Embedded reviews -> lists of at most batch_size reviews of the same length bucket."""

    def __init__(self, boundaries: Sequence[int] = DEFAULT_BUCKETS, batch_size: int = 256) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"Batch size must be at least 1; got {batch_size}.")
        self.boundaries, self.batch_size = check_buckets(boundaries), batch_size

    def expand(self, reviews):
        batches = beam.ParDo(BatchInBundle(self.boundaries, self.batch_size))
        return reviews | "BatchInBundle" >> batches.with_output_types(ReviewBatch)
