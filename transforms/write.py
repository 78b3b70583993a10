"""WriteResults: explained batches and dead letters -> Parquet under one directory (tokens/, reviews/,
dead_letter/). The explained batches' tables are gathered within each bundle into row groups of at least
ROW_GROUP_ROWS rows (the rest of a bundle makes one smaller group).

Beam's file sinks learn which files a bundle wrote from what their DoFn emits in finish_bundle; a runner
that drops those outputs (the DaskRunner) would publish nothing. There, `bundle_files` has each bundle
write its own file (WriteBundleFile).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Mapping

import apache_beam as beam
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
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


class WriteBundleFile(beam.DoFn):
    """Arrow tables or rows of `schema` -> one Parquet file per bundle, directory/part-NAME.parquet, written
    when the bundle finishes (row groups of up to ROW_GROUP_ROWS rows); emits nothing. NAME hashes the
    bundle's first source, so that a bundle the runner computes again rewrites its own file; an empty
    bundle writes an empty file (a random NAME), so that every dataset has its schema on disk, as with
    Beam's sinks. For runners that drop what finish_bundle emits (see the module)."""

    def __init__(self, directory: str, schema: pa.Schema) -> None:
        self.directory, self.schema = directory.rstrip("/"), schema

    def start_bundle(self) -> None:
        self.tables: list[pa.Table] = []
        self.rows: list[dict] = []

    def process(self, element: pa.Table | dict) -> Iterator:
        if isinstance(element, pa.Table):
            self.tables.append(element.cast(self.schema))
        else:
            self.rows.append(element)
        return iter(())

    def finish_bundle(self) -> None:
        tables = [*self.tables, pa.Table.from_pylist(self.rows, self.schema)]
        table = pa.concat_tables(tables)
        self.tables, self.rows = [], []
        first = table.column("source")[0].as_py() if table.num_rows else uuid.uuid4().hex
        name = hashlib.sha1(first.encode("utf-8", "surrogatepass")).hexdigest()[:20]
        fs, root = fsspec.core.url_to_fs(self.directory)
        fs.makedirs(root, exist_ok=True)
        with fs.open(f"{root}/part-{name}.parquet", "wb") as f:
            pq.write_table(table, f, row_group_size=ROW_GROUP_ROWS, compression="snappy")


class WriteResults(beam.PTransform):
    """Writes {"explained": ExplainedBatch PCollection, "dead_letter": dead letters} under `directory`;
    dtype: the engine's, that of the token relevances; every file carries `metadata` (Parquet key-value
    metadata, e.g. the run's provenance); bundle_files: each bundle writes its own files (WriteBundleFile)
    instead of Beam's file sinks. Returns the PCollection of the written files' names (empty with
    bundle_files), which depends on every write."""

    def __init__(
        self,
        directory: str,
        dtype: str = "float32",
        metadata: Mapping[bytes, bytes] | None = None,
        bundle_files: bool = False,
    ) -> None:
        super().__init__()
        self.directory, self.dtype, self.bundle_files = directory, dtype, bundle_files
        self.metadata = dict(metadata or {})

    def schema(self, schema: pa.Schema) -> pa.Schema:
        return schema.with_metadata(self.metadata) if self.metadata else schema

    def expand(self, outputs: dict):
        explained, dead = outputs["explained"], outputs[DEAD_LETTER]
        written = []
        for name, schema in (("tokens", tokens_schema(self.dtype)), ("reviews", REVIEWS_SCHEMA)):
            tables = explained | f"Select{name.title()}" >> beam.Map(
                lambda batch, n=name: getattr(batch, n)
            ).with_output_types(pa.Table)
            if self.bundle_files:
                written.append(tables | f"Write{name.title()}" >> self.bundle_file(name, schema))
                continue
            written.append(
                tables
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
        if self.bundle_files:
            written.append(counted | "WriteDeadLetters" >> self.bundle_file(DEAD_LETTER, DEAD_LETTER_SCHEMA))
        else:
            written.append(
                counted
                | "WriteDeadLetters"
                >> WriteToParquet(
                    parquet_prefix(self.directory, DEAD_LETTER),
                    self.schema(DEAD_LETTER_SCHEMA),
                    codec="snappy",
                    file_name_suffix=".parquet",
                )
            )
        return written | "WrittenFiles" >> beam.Flatten()

    def bundle_file(self, name: str, schema: pa.Schema) -> beam.ParDo:
        return beam.ParDo(WriteBundleFile(f"{self.directory.rstrip('/')}/{name}", self.schema(schema)))
