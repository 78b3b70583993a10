"""WriteResults: explained batches and dead letters -> Parquet under one directory (tokens/, reviews/,
dead_letter/), one Arrow table per explained batch."""

from __future__ import annotations

from collections.abc import Mapping

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.parquetio import WriteToParquet, WriteToParquetBatched

from transforms.schemas import DEAD_LETTER, DEAD_LETTER_SCHEMA, NAMESPACE, REVIEWS_SCHEMA, tokens_schema


def parquet_prefix(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}/part"


class CountDeadLetters(beam.DoFn):
    """Passes dead letters on and counts them (counter "dead_lettered"), the Beam side of the accounting
    identity input_records = explained + dead_lettered."""

    def __init__(self) -> None:
        self.dead = beam.metrics.Metrics.counter(NAMESPACE, "dead_lettered")

    def process(self, letter: dict):
        self.dead.inc()
        yield letter


class WriteResults(beam.PTransform):
    """Writes {"explained": ExplainedBatch PCollection, "dead_letter": dead letters} under `directory`;
    dtype: the engine's, that of the token relevances; every file carries `metadata` (Parquet key-value
    metadata, e.g. the run's provenance)."""

    def __init__(
        self, directory: str, dtype: str = "float32", metadata: Mapping[bytes, bytes] | None = None
    ) -> None:
        super().__init__()
        self.directory, self.dtype = directory, dtype
        self.metadata = dict(metadata or {})

    def schema(self, schema: pa.Schema) -> pa.Schema:
        return schema.with_metadata(self.metadata) if self.metadata else schema

    def expand(self, outputs: dict):
        explained, dead = outputs["explained"], outputs[DEAD_LETTER]
        written = {}
        for name, schema in (("tokens", tokens_schema(self.dtype)), ("reviews", REVIEWS_SCHEMA)):
            written[name] = (
                explained
                | f"Select{name.title()}" >> beam.Map(lambda batch, n=name: getattr(batch, n))
                | f"Write{name.title()}"
                >> WriteToParquetBatched(
                    parquet_prefix(self.directory, name),
                    self.schema(schema),
                    codec="snappy",
                    file_name_suffix=".parquet",
                )
            )
        counted = dead | "CountDeadLetters" >> beam.ParDo(CountDeadLetters())
        written[DEAD_LETTER] = counted | "WriteDeadLetters" >> WriteToParquet(
            parquet_prefix(self.directory, "dead_letter"),
            self.schema(DEAD_LETTER_SCHEMA),
            codec="snappy",
            file_name_suffix=".parquet",
        )
        return written
