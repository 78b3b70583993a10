"""WriteResults: explained batches and dead letters -> Parquet under one directory (tokens/, reviews/,
dead_letter/).

Each bundle writes each dataset's rows to a file of its own (`attempt-<random>.parquet`), in row groups of at
least ROW_GROUP_ROWS rows (but a bundle's last), and emits the file's name from process, when it first
names the file: a runner drops a failed bundle's outputs, so its file is removed like any retried one, and
the DaskRunner drops what finish_bundle emits, so a name emitted there would be lost. When every bundle is
done, one step renames the files it heard of to `part-NNNNN-of-NNNNN.parquet` and removes those of
attempts a runner retried or abandoned, so that each row is published once; a dataset without rows gets
one empty file with its schema. (Beam's file sinks do the same in about fourteen transforms per dataset;
these are six in all.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from lrp.files import filesystem
from transforms import coders  # noqa: F401  (the coders of the batches)
from transforms.schemas import (
    DEAD_LETTER,
    DEAD_LETTER_DIR,
    DEAD_LETTER_SCHEMA,
    NAMESPACE,
    REVIEWS_DIR,
    REVIEWS_SCHEMA,
    TOKENS_DIR,
    tokens_schema,
)
from transforms.tables import ExplainedBatch

ROW_GROUP_ROWS = 1 << 16
"""Fewest rows of a written row group (but a bundle's last): readers pay per row group, not per row."""
ATTEMPT = "attempt-"


class BundleFiles:
    """One Parquet file per dataset for one bundle: tables are gathered into row groups of at least
    min_rows rows; close() writes the rest and returns (dataset, path) of every file written."""

    def __init__(self, directory: str, schemas: Mapping[str, pa.Schema], min_rows: int) -> None:
        self.directory, self.schemas, self.min_rows = directory.rstrip("/"), schemas, min_rows
        self.pending: dict[str, list[pa.Table]] = {name: [] for name in schemas}
        self.paths: dict[str, str] = {}
        self.writers: dict[str, tuple[str, object, pq.ParquetWriter]] = {}

    def name(self, name: str) -> str | None:
        """The path of the dataset's file the first time it is asked for (the file exists once close() has
        returned), else None."""
        if name in self.paths:
            return None
        self.paths[name] = f"{self.directory}/{name}/{ATTEMPT}{uuid.uuid4().hex}.parquet"
        return self.paths[name]

    def add(self, name: str, table: pa.Table) -> None:
        pending = self.pending[name]
        pending.append(table)
        if sum(t.num_rows for t in pending) >= self.min_rows:
            self.write(name)

    def write(self, name: str) -> None:
        if name not in self.writers:
            self.name(name)
            path = self.paths[name]
            fs, local = filesystem(path)
            fs.makedirs(f"{self.directory}/{name}", exist_ok=True)
            handle = fs.open(local, "wb")
            writer = pq.ParquetWriter(handle, self.schemas[name], compression="snappy")
            self.writers[name] = (path, handle, writer)
        self.writers[name][2].write_table(pa.concat_tables(self.pending[name]), row_group_size=1 << 30)
        self.pending[name] = []

    def close(self) -> list[tuple[str, str]]:
        for name, pending in self.pending.items():
            if pending:
                self.write(name)
        written = []
        for name, (path, handle, writer) in self.writers.items():
            writer.close()
            handle.close()
            written.append((name, path))
        self.writers, self.paths = {}, {}
        return written


class WriteBundles(beam.DoFn):
    """ExplainedBatch (its tokens and reviews) or dead letters -> each bundle's files, as (dataset, path)."""

    def __init__(self, directory: str, schemas: Mapping[str, pa.Schema], min_rows: int) -> None:
        self.directory, self.schemas, self.min_rows = directory, dict(schemas), min_rows
        self.dead = beam.metrics.Metrics.counter(NAMESPACE, "dead_lettered")

    def start_bundle(self) -> None:
        self.files = BundleFiles(self.directory, self.schemas, self.min_rows)
        self.letters: list[dict] = []

    def process(self, element: ExplainedBatch | dict) -> Iterator[tuple[str, str]]:
        if isinstance(element, ExplainedBatch):
            for name, table in ((TOKENS_DIR, element.tokens), (REVIEWS_DIR, element.reviews)):
                yield from self.named(name)
                self.files.add(name, table)
            return
        self.dead.inc()  # the Beam side of the accounting identity input = explained + dead_lettered
        yield from self.named(DEAD_LETTER_DIR)
        self.letters.append(element)
        if len(self.letters) >= self.min_rows:
            self.add_letters()

    def add_letters(self) -> None:
        self.files.add(DEAD_LETTER_DIR, pa.Table.from_pylist(self.letters, self.schemas[DEAD_LETTER_DIR]))
        self.letters = []

    def named(self, name: str) -> Iterator[tuple[str, str]]:
        """(dataset, path) of this bundle's file of the dataset, when first named."""
        path = self.files.name(name)
        if path is not None:
            yield name, path

    def finish_bundle(self) -> None:
        if self.letters:
            self.add_letters()
        self.files.close()


def publish_files(
    written: Iterable[tuple[str, str]], directory: str, schemas: Mapping[str, pa.Schema]
) -> None:
    """Rename the files (dataset, path) of the bundles that counted to part-NNNNN-of-NNNNN.parquet, remove
    every other attempt's file, and give a dataset without rows one empty file. Safe to run again."""
    fs, root = filesystem(directory.rstrip("/"))
    written = list(written)
    for name, schema in schemas.items():
        kept = sorted(filesystem(path)[1] for dataset, path in written if dataset == name)
        if not kept:
            empty = BundleFiles(directory, {name: schema}, 1)
            empty.add(name, schema.empty_table())
            kept = [filesystem(path)[1] for _, path in empty.close()]
        for stale in set(fs.glob(f"{root}/{name}/{ATTEMPT}*.parquet")) - set(kept):
            fs.rm(stale)
        for n, path in enumerate(kept):
            if fs.exists(path):
                fs.mv(path, f"{root}/{name}/part-{n:05d}-of-{len(kept):05d}.parquet")


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

    def schemas(self) -> dict[str, pa.Schema]:
        schemas = {TOKENS_DIR: tokens_schema(self.dtype), REVIEWS_DIR: REVIEWS_SCHEMA}
        schemas[DEAD_LETTER_DIR] = DEAD_LETTER_SCHEMA
        return {name: s.with_metadata(self.metadata) if self.metadata else s for name, s in schemas.items()}

    def expand(self, outputs: dict):
        schemas = self.schemas()
        write = WriteBundles(self.directory, schemas, ROW_GROUP_ROWS)
        written = (
            outputs["explained"] | "WriteTables" >> beam.ParDo(write),
            outputs[DEAD_LETTER] | "WriteDeadLetters" >> beam.ParDo(write),
        )
        return (
            written
            | "Written" >> beam.Flatten()
            | "ListFiles" >> beam.combiners.ToList()
            | "PublishFiles" >> beam.Map(publish_files, self.directory, schemas)
        )
