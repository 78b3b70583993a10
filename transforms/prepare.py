"""ReadBatches: ReadCorpus, Tokenize, Embed and BucketByLength fused into one step per read split.

Each restriction of a file (see transforms.read) is read, tokenised, embedded and cut into length-bucketed
batches by the same record functions the separate stages wrap, so that no single review crosses a stage
boundary (Beam's per-element cost is paid per batch), the batches depend only on the split, not on the
runner or its bundles (identical rows on every runner), and the number of batches grows with the corpus.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import apache_beam as beam

from transforms import progress
from transforms.bucket import DEFAULT_BUCKETS, Batcher, ReviewBatch, check_buckets
from transforms.embed import embed
from transforms.model import SharedModel
from transforms.read import SPLIT_BYTES, Fields, ReadCorpus, ReadSplit, Row
from transforms.records import tagged
from transforms.schemas import NAMESPACE
from transforms.steps import OOV_POLICIES
from transforms.tokenize import TokenizerSpec, tokenize


@dataclass(frozen=True)
class Preparation:
    """What happens to a review between reading and explaining: tokenizer, the OOV policy, length buckets
    and the most reviews per batch."""

    tokenizer: TokenizerSpec = field(default_factory=TokenizerSpec)
    oov: str = "zero"
    boundaries: Sequence[int] = DEFAULT_BUCKETS
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.oov not in OOV_POLICIES:
            raise ValueError(f"Unknown OOV policy {self.oov!r}; use one of {', '.join(OOV_POLICIES)}.")
        if self.batch_size < 1:
            raise ValueError(f"Batch size must be at least 1; got {self.batch_size}.")
        check_buckets(self.boundaries)
        self.tokenizer.splitter()  # fail at construction on a bad pattern


class PrepareSplit(ReadSplit):
    """One restriction of a file -> batches of embedded reviews, and dead letters of every stage so far."""

    def __init__(
        self, fields: Fields, split_bytes: int, model: SharedModel, preparation: Preparation
    ) -> None:
        super().__init__(fields, split_bytes)
        self.model, self.preparation = model, preparation
        self.unknown = beam.metrics.Metrics.counter(NAMESPACE, "oov_tokens")

    def setup(self) -> None:
        self.rule = self.model.get().rule(self.preparation.oov)
        self.split_text = self.preparation.tokenizer.splitter()

    def outputs(self, rows: Iterator[Row]) -> Iterator:
        prep = self.preparation
        batcher = Batcher(prep.boundaries, prep.batch_size)
        for row in super().outputs(rows):
            if isinstance(row, beam.pvalue.TaggedOutput):
                yield row
                continue
            row = tokenize(row, prep.tokenizer, self.split_text)
            if "stage" not in row:
                progress.report("tokens", len(row["tokens"]))
                row, unknown = embed(row, self.rule)
                self.unknown.inc(unknown)
            if "stage" in row:
                yield tagged(row)
            else:
                yield from batcher.add(row)
        for _, batch in batcher.flush():
            yield batch


class ReadBatches(ReadCorpus):
    """Files -> batches of embedded reviews (main output "batches") and dead letters (tag DEAD_LETTER):
    what ReadCorpus | Tokenize | Embed | BucketByLength give, formed within each read split."""

    main = "batches"
    main_type = ReviewBatch

    def __init__(
        self,
        patterns: Iterable[str],
        model: SharedModel,
        preparation: Preparation,
        fmt: str = "auto",
        fields: Fields | None = None,
        split_bytes: int = SPLIT_BYTES,
        exclude: str | None = None,
    ) -> None:
        super().__init__(patterns, fmt, fields or Fields(), split_bytes, exclude)
        self.model, self.preparation = model, preparation

    def reader(self) -> ReadSplit:
        return PrepareSplit(self.fields, self.split_bytes, self.model, self.preparation)
