"""ReadCorpus: reviews from local files or fsspec URLs (globs allowed) in JSONL, CSV, Parquet or plain text.

Each review becomes {"review_id", "source", "text", "label"}; source is "path:line" (rows for Parquet).
Records that cannot be read go to the dead-letter output with stage "read"; blank lines of text, JSONL and
CSV files are skipped and counted (counter "skipped_blank"). An empty id counts as no id. A file that fails
midway (corrupt compression, not Parquet at all) keeps the records read so far, and the rest of it becomes
one dead letter with source "path" (counted as one input record), so the run goes on.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import apache_beam as beam
import fsspec
import pyarrow.parquet as pq

from lrp.importers.paths import canonical, suffix, within
from transforms import progress
from transforms.schemas import DEAD_LETTER, NAMESPACE, dead_letter, is_valid_utf8

FORMATS = ("auto", "text", "jsonl", "csv", "parquet")
EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
log = logging.getLogger(__name__)
CSV_FIELD_LIMIT = 2**31 - 1
"""Longest CSV field read (the csv module's default, 131072 characters, would refuse long reviews)."""
LABEL_LIMIT = 2**31
"""Labels are written as int32."""


class InputError(ValueError):
    """An input path or URL that cannot be used; the message names it."""


@dataclass(frozen=True)
class Fields:
    """Where a record keeps its id, text and label (label "" = no labels)."""

    id: str = "id"
    text: str = "text"
    label: str = "label"


def expand_inputs(patterns: Iterable[str], exclude: str | None = None) -> list[str]:
    """Expand local paths, globs and fsspec URLs into a sorted list of file URLs, leaving out what lies
    under the directory `exclude` (the run's output); InputError if a pattern matches nothing else."""
    output = None if exclude is None else canonical(exclude)
    files: list[str] = []
    for pattern in patterns:
        try:
            fs, _, paths = fsspec.core.get_fs_token_paths(pattern)
        except (ValueError, ImportError) as e:  # an unknown protocol, or one whose fsspec backend is missing
            raise InputError(
                f"Input {pattern!r} cannot be opened ({e}); check the URL or install its fsspec backend."
            ) from None
        matched = [fs.unstrip_protocol(p) if "://" in pattern else p for p in paths if fs.isfile(p)]
        if not matched:
            raise InputError(f"Input {pattern!r} matches no readable file; check the path or glob.")
        kept = [p for p in matched if output is None or not within(canonical(p), output)]
        if not kept:
            raise InputError(
                f"Input {pattern!r} matches only files under --output {exclude!r}, which a run never reads; "
                "move them or choose another --output."
            )
        files += kept
    return sorted(set(files))


def detect_format(path: str, fmt: str) -> str:
    """The reader for path: fmt itself unless "auto", then by extension (after a compression suffix)."""
    if fmt != "auto":
        return fmt
    return EXTENSIONS.get(suffix(path), "text")


def parse_label(value: object) -> int | None:
    """An integer class label or None; raises ValueError for anything else (e.g. 2.5, "pos", True)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"label {value!r} is not an integer class")
    try:
        label = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"label {value!r} is not an integer class") from None
    if not -LABEL_LIMIT <= label < LABEL_LIMIT:
        raise ValueError(f"label {value!r} is too large to be a class index")
    return label


class ReadFile(beam.DoFn):
    """One file URL -> review records, and dead letters for records that cannot be read."""

    def __init__(self, fmt: str, fields: Fields) -> None:
        self.fmt, self.fields = fmt, fields
        self.records = beam.metrics.Metrics.counter(NAMESPACE, "input_records")
        self.skipped = beam.metrics.Metrics.counter(NAMESPACE, "skipped_blank")

    def process(self, path: str) -> Iterator:
        reader = {"text": self.read_text, "jsonl": self.read_jsonl, "csv": self.read_csv}
        fmt = detect_format(path, self.fmt)
        rows = self.read_parquet(path) if fmt == "parquet" else self.read_lines(path, reader[fmt])
        count = 0
        for row in self.guarded(path, rows):
            if row is None:
                self.skipped.inc()
                continue
            self.records.inc()
            count += 1
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, row) if "stage" in row else row
        log.info("Read %d records from %s", count, path)

    def guarded(self, path: str, rows: Iterator[dict | None]) -> Iterator[dict | None]:
        """rows; if reading the file fails midway, one dead letter for the rest of the file instead."""
        read = 0
        try:
            for row in rows:
                read += row is not None
                yield row
        except Exception as error:  # a broken file must not take the run down
            reason = (
                f"reading the file failed after {read} records ({type(error).__name__}: {error}); "
                "repair or re-export it and rerun"
            )
            yield dead_letter("read", reason, path)

    def read_lines(self, path: str, parse) -> Iterator[dict | None]:
        # newline="": line ends stay as written, so that CSV fields keep their quoted line breaks
        opened = fsspec.open(
            path, "rt", encoding="utf-8", errors="surrogateescape", compression="infer", newline=""
        )
        with opened as f:
            yield from progress.reading(parse(path, f), opened.fobjects[0])

    def read_text(self, path: str, f: io.TextIOBase) -> Iterator[dict | None]:
        for n, line in enumerate(f, start=1):
            text = line.rstrip("\r\n")
            yield None if not text.strip() else self.record(f"{path}:{n}", {self.fields.text: text}, text)

    def read_jsonl(self, path: str, f: io.TextIOBase) -> Iterator[dict | None]:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                yield None
                continue
            source = f"{path}:{n}"
            if not is_valid_utf8(line):
                yield dead_letter("read", "line is not valid UTF-8", source, line)
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError) as e:  # also too-long integers and too deep nesting
                detail = e.msg if isinstance(e, json.JSONDecodeError) else f"{type(e).__name__}: {e}"
                yield dead_letter("read", f"line is not valid JSON ({detail})", source, line)
                continue
            if not isinstance(obj, dict):
                yield dead_letter("read", "line is not a JSON object", source, line)
                continue
            yield self.record(source, obj, line)

    def read_csv(self, path: str, f: io.TextIOBase) -> Iterator[dict | None]:
        csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None:
            return
        hint = "" if self.fields.text in header else f" (the file's columns: {', '.join(header)})"
        for row in rows:
            if not row:  # a blank line
                yield None
                continue
            source = f"{path}:{rows.line_num}"
            if len(row) != len(header):
                reason = f"CSV row has {len(row)} fields, the header has {len(header)}"
                yield dead_letter("read", reason, source, ",".join(row))
                continue
            yield self.record(source, dict(zip(header, row)), ",".join(row), hint)

    def read_parquet(self, path: str) -> Iterator[dict]:
        with fsspec.open(path, "rb") as f:
            parquet = pq.ParquetFile(f)
            columns = parquet.schema_arrow.names
            hint = "" if self.fields.text in columns else f" (the file's columns: {', '.join(columns)})"
            rows = (obj for batch in parquet.iter_batches(batch_size=10_000) for obj in batch.to_pylist())
            rows = progress.reading(rows, f)
            for n, obj in enumerate(rows, start=1):
                yield self.record(f"{path}:{n}", obj, None, hint)

    def record(self, source: str, obj: dict, raw: str | None, hint: str = "") -> dict:
        """A review record from a parsed object, or a dead letter naming the field at fault. raw: the input
        as read (None: obj as JSON, made only for a dead letter); hint follows a missing text field."""
        review_id = obj.get(self.fields.id)
        review_id = source if review_id is None or review_id == "" else str(review_id)
        try:
            text, label = self.text_and_label(obj, review_id, hint)
        except ValueError as e:
            raw = json.dumps(obj, default=str) if raw is None else raw
            return dead_letter("read", str(e), source, raw, review_id)
        return {"review_id": review_id, "source": source, "text": text, "label": label}

    def text_and_label(self, obj: dict, review_id: str, hint: str) -> tuple[str, int | None]:
        """The record's text and label; ValueError with a reason a person can act on."""
        if not is_valid_utf8(review_id):
            raise ValueError(f"id field {self.fields.id!r} is not valid UTF-8")
        text = obj.get(self.fields.text)
        if not isinstance(text, str):
            raise ValueError(self.text_problem(obj, hint))
        if not is_valid_utf8(text):
            raise ValueError("text is not valid UTF-8")
        try:
            return text, parse_label(obj.get(self.fields.label)) if self.fields.label else None
        except ValueError as e:
            raise ValueError(f"field {self.fields.label!r}: {e}") from None

    def text_problem(self, obj: dict, hint: str) -> str:
        """Why obj has no usable text: the field is missing (then hint follows), null, or not a string."""
        name = self.fields.text
        if name not in obj:
            return f"text field {name!r} is missing{hint}"
        what = "null" if obj[name] is None else f"a {type(obj[name]).__name__}, not a string"
        return f"text field {name!r} is {what}"


class ReadCorpus(beam.PTransform):
    """Reads every file matching `patterns`, except those under `exclude` (the run's output directory) ->
    reviews (main output) and dead letters (tag DEAD_LETTER)."""

    def __init__(
        self,
        patterns: Iterable[str],
        fmt: str = "auto",
        fields: Fields = Fields(),
        exclude: str | None = None,
    ) -> None:
        super().__init__()
        if fmt not in FORMATS:
            raise InputError(f"Unknown input format {fmt!r}; use one of {', '.join(FORMATS)}.")
        self.files, self.fmt, self.fields = expand_inputs(patterns, exclude), fmt, fields

    def expand(self, pbegin):
        return (
            pbegin
            | "ListFiles" >> beam.Create(self.files)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ParseRecords"
            >> beam.ParDo(ReadFile(self.fmt, self.fields)).with_outputs(DEAD_LETTER, main="reviews")
        )
