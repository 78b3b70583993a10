"""BucketByLength: batches of at most batch_size reviews of one length bucket, every review exactly once."""

from __future__ import annotations

import collections

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that

from transforms import BucketByLength
from transforms.bucket import bucket_of, check_buckets

BOUNDS = (2, 4, 8)
LENGTHS = [1, 1, 2, 2, 2, 3, 3, 4, 5, 6, 7, 8, 8, 9, 12, 17, 1, 2, 5, 5, 5, 5, 5, 5, 5, 3, 1, 2, 2, 2, 2]


def embedded() -> list[dict]:
    return [
        {"review_id": f"r{n}", "source": f"f.jsonl:{n}", "ids": np.ones(length, np.int32)}
        for n, length in enumerate(LENGTHS)
    ]


def check_batches(batch_size: int):
    """A matcher: batches no larger than batch_size, one bucket each, every review once, and as few batches
    as one bundle allows."""

    def match(batches: list[list[dict]]) -> None:
        ids = [r["review_id"] for batch in batches for r in batch]
        if sorted(ids) != sorted(f"r{n}" for n in range(len(LENGTHS))):
            raise BeamAssertException(f"reviews not each exactly once: {sorted(ids)}")
        per_key: collections.Counter = collections.Counter()
        for batch in batches:
            buckets = {bucket_of(len(r["ids"]), BOUNDS) for r in batch}
            if not 1 <= len(batch) <= batch_size or len(buckets) != 1:
                raise BeamAssertException(f"batch of {len(batch)} reviews in buckets {buckets}")
            per_key[buckets.pop()] += len(batch)
        # At most one partial batch per bucket in one bundle: batching really groups.
        most = sum(-(-n // batch_size) for n in per_key.values())
        if len(batches) > most:
            raise BeamAssertException(f"{len(batches)} batches for {dict(per_key)}; expected <= {most}")

    return match


@pytest.mark.parametrize("batch_size", [1, 3, 4, 100])
def test_batches_respect_size_buckets_and_see_every_review_once(batch_size):
    with BeamTestPipeline() as p:
        batches = p | beam.Create(embedded()) | BucketByLength(BOUNDS, batch_size)
        assert_that(batches, check_batches(batch_size))


def test_one_bundle_fills_batches():
    """In one bundle, a bucket of n reviews gives n // batch_size full batches and one with the rest."""
    n = sum(1 for length in LENGTHS if bucket_of(length, BOUNDS) == 8)
    expected = [5] * (n // 5) + [n % 5]
    assert n % 5

    def sizes_are_expected(sizes: list[int]) -> None:
        if sorted(sizes) != sorted(expected):
            raise BeamAssertException(f"batch sizes {sorted(sizes)}, expected {sorted(expected)}")

    with BeamTestPipeline() as p:
        batches = p | beam.Create(embedded()) | BucketByLength(BOUNDS, 5)
        sizes = batches | beam.Filter(lambda b: bucket_of(len(b[0]["ids"]), BOUNDS) == 8) | beam.Map(len)
        assert_that(sizes, sizes_are_expected)


@pytest.mark.parametrize(
    ("length", "expected"),
    [(1, 2), (2, 2), (3, 4), (4, 4), (5, 8), (8, 8), (9, 16), (16, 16), (17, 32), (100, 128)],
)
def test_bucket_of(length, expected):
    assert bucket_of(length, BOUNDS) == expected


def test_check_buckets():
    assert check_buckets(["8", 16, 32.0]) == (8, 16, 32)
    for bad in ([], [0, 8], [8, 8], [16, 8], [-1]):
        with pytest.raises(ValueError, match="strictly increasing"):
            check_buckets(bad)


def test_bad_batch_size_and_buckets_are_refused():
    with pytest.raises(ValueError, match="Batch size"):
        BucketByLength(BOUNDS, batch_size=0)
    with pytest.raises(ValueError, match="strictly increasing"):
        BucketByLength((8, 4))
