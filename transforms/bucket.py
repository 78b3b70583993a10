"""BucketByLength: group reviews of similar length into batches, so padding stays small and traced graph
shapes repeat. Works on every runner: keys + a stateful batching DoFn (state and an event-time timer).

Beam's own GroupIntoBatches always declares a processing-time timer, which makes the Python DirectRunner
fall back from the FnApiRunner to its legacy bundle-based runner (no multi_processing mode, and it failed
on this pipeline); BatchByKey is GroupIntoBatches with only the end-of-window flush.
"""

from __future__ import annotations

import itertools
import pickle
import typing
import zlib
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.coders import BytesCoder, VarIntCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, CombiningValueStateSpec, TimerSpec, on_timer

DEFAULT_BUCKETS = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256)
"""Chosen by benchmarks/sweep.py: on SST, 21% padding and the best tokens/s (8,16,32,64: 36%)."""


def bucket_of(length: int, boundaries: Sequence[int]) -> int:
    """The smallest boundary >= length; beyond the last, the next power of two (long reviews still share
    shapes)."""
    for bound in boundaries:
        if length <= bound:
            return bound
    return 1 << (length - 1).bit_length()


def check_buckets(boundaries: Sequence[int]) -> tuple[int, ...]:
    """Validate bucket boundaries: non-empty, positive, strictly increasing."""
    bounds = tuple(int(b) for b in boundaries)
    if not bounds or bounds[0] < 1 or any(a >= b for a, b in itertools.pairwise(bounds)):
        raise ValueError(
            f"Buckets must be positive and strictly increasing, like 8,16,32; got {list(bounds)}."
        )
    return bounds


class BatchByKey(beam.DoFn):
    """(key, value) -> lists of at most batch_size values of one key; the rest flushed at the window's end."""

    BUFFER = BagStateSpec("buffer", BytesCoder())  # pickled by us: the runner's state cache sizes bytes
    # in O(1), but walks every object of a buffered dict (that walk cost more than the explaining)
    COUNT = CombiningValueStateSpec("count", VarIntCoder(), beam.combiners.CountCombineFn())
    FLUSH = TimerSpec("flush", TimeDomain.WATERMARK)

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def process(
        self,
        element: tuple,
        window=beam.DoFn.WindowParam,
        buffer=beam.DoFn.StateParam(BUFFER),
        count=beam.DoFn.StateParam(COUNT),
        flush=beam.DoFn.TimerParam(FLUSH),
    ):
        buffer.add(pickle.dumps(element[1], protocol=pickle.HIGHEST_PROTOCOL))
        count.add(1)
        buffered = count.read()
        if buffered == 1:  # the first of a new batch: flush it at the end of the window at the latest
            flush.set(window.max_timestamp())
        if buffered >= self.batch_size:
            yield from self.emit(buffer, count)

    @on_timer(FLUSH)
    def on_flush(self, buffer=beam.DoFn.StateParam(BUFFER), count=beam.DoFn.StateParam(COUNT)):
        yield from self.emit(buffer, count)

    def emit(self, buffer, count):
        batch = [pickle.loads(value) for value in buffer.read()]
        buffer.clear()
        count.clear()
        if batch:
            yield batch


class BucketByLength(beam.PTransform):
    """Embedded reviews -> lists of at most batch_size reviews of the same length bucket.

    shards spreads each bucket over several keys so that batches of one bucket can run in parallel.
    """

    def __init__(
        self, boundaries: Sequence[int] = DEFAULT_BUCKETS, batch_size: int = 256, shards: int = 4
    ) -> None:
        super().__init__()
        if batch_size < 1 or shards < 1:
            raise ValueError(f"Batch size and shards must be at least 1; got {batch_size} and {shards}.")
        self.boundaries, self.batch_size, self.shards = check_buckets(boundaries), batch_size, shards

    def key(self, review: dict) -> tuple[tuple[int, int], dict]:
        shard = zlib.crc32(review["source"].encode("utf-8", "surrogateescape")) % self.shards
        return (bucket_of(len(review["ids"]), self.boundaries), shard), review

    def expand(self, reviews):
        return (
            reviews
            | "KeyByBucket" >> beam.Map(self.key).with_output_types(tuple[tuple[int, int], typing.Any])
            | "GroupIntoBatches" >> beam.ParDo(BatchByKey(self.batch_size))
        )
