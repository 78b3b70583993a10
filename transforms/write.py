"""WriteResults: explained batches and dead letters -> Parquet under one directory (tokens/, reviews/,
dead_letter/). The explained batches' tables are gathered within each bundle into row groups of at least
ROW_GROUP_ROWS rows (the rest of a bundle makes one smaller group)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.parquetio import WriteToParquet, WriteToParquetBatched
from apache_beam.utils.windowed_value import WindowedValue

from transforms import coders  # noqa: F401  (the coder of pa.Table)
from transforms.schemas import DEAD_LETTER, DEAD_LETTER_SCHEMA, NAMESPACE, REVIEWS_SCHEMA, tokens_schema

ROW_GROUP_ROWS = 1 << 16
"""Fewest rows of a written row group (but a bundle's last): readers pay per row group, not per row."""


def parquet_prefix(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}/part"


class GatherTables(beam.DoFn):
    """Arrow tables of one schema -> their concatenations of at least min_rows rows, within each bundle."""

    def __init__(self, min_rows: int = ROW_GROUP_ROWS) -> None:
        self.min_rows = min_rows

    def start_bundle(self) -> None:
        self.buffers: dict = {}

    def process(self, table: pa.Table, window=beam.DoFn.WindowParam) -> Iterator[pa.Table]:
        buffer = self.buffers.setdefault(window, [])
        buffer.append(table)
        if sum(t.num_rows for t in buffer) >= self.min_rows:
            del self.buffers[window]
            yield pa.concat_tables(buffer)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for window, buffer in self.buffers.items():
            yield WindowedValue(pa.concat_tables(buffer), window.max_timestamp(), (window,))
        self.buffers = {}


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
                | f"Select{name.title()}"
                >> beam.Map(lambda batch, n=name: getattr(batch, n)).with_output_types(pa.Table)
                | f"Gather{name.title()}" >> beam.ParDo(GatherTables()).with_output_types(pa.Table)
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
