"""ReadCorpus: reviews from local files or fsspec URLs (globs allowed) in JSONL, CSV, Parquet or plain text.

Each review becomes a Review record (transforms.records) {"review_id", "source", "text", "label"}.

Several workers read one large file at once: a splittable DoFn reads each file as restrictions over an
OffsetRange. Uncompressed text and JSONL files split into byte ranges (about `split_bytes` each); a line
belongs to the range in which its first byte lies, so every line is read exactly once whatever the splits.
Parquet files split by row groups. Compressed files and CSV files (whose quoted fields may hold line
breaks, so that a byte range cannot tell where a row starts) are read whole.

`source` is stable between runs, runners and split sizes: "path@OFFSET" for text and JSONL (the byte
offset of the line's first byte in the file, decompressed), "path:LINE" for CSV (the line on which the row
ends) and "path:ROW" for Parquet (1-based). Lines end with "\\n" or "\\r\\n". Files are UTF-8 with an
optional byte-order mark; a file that is UTF-16 (its byte-order mark, or NUL bytes) is dead-lettered as one
unit that says so. Paths are canonicalised before de-duplication (a file named twice is read once).

Records that cannot be read go to the dead-letter output with stage "read"; blank lines of text, JSONL and
CSV files are skipped and counted (counter "skipped_blank"). An empty id counts as no id. A line file that
fails midway (corrupt compression) keeps the records read so far, and the rest of it becomes one dead
letter with source "path" (counted as one input record). A Parquet row group that cannot be read
dead-letters each of its rows (counted in rows); only the id, text and label columns are read.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import fsspec
import pyarrow.parquet as pq
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.transforms.core import RestrictionProvider
from fsspec.implementations.local import LocalFileSystem

from lrp.importers.paths import canonical, suffix, within
from transforms import progress
from transforms.records import DeadLetter, Review, tagged
from transforms.schemas import DEAD_LETTER, NAMESPACE, dead_letter, is_valid_utf8

FORMATS = ("auto", "text", "jsonl", "csv", "parquet")
EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
log = logging.getLogger(__name__)
CSV_FIELD_LIMIT = 2**31 - 1
"""Longest CSV field read (the csv module's default, 131072 characters, would refuse long reviews)."""
LABEL_LIMIT = 2**31
"""Labels are written as int32."""
SPLIT_BYTES = 1 << 20
"""Default size of a byte-range split: small enough that a 10 MB file keeps two workers busy, large enough
that a split's fixed cost (a seek) is nothing beside its parsing."""
UTF8_BOM = b"\xef\xbb\xbf"
HEAD_BYTES = 4096
"""Bytes at the start of a file looked at to tell whether it is UTF-8."""

Row = Review | DeadLetter | None
"""What reading yields: a review, a dead letter, or None for a skipped blank line."""


class InputError(ValueError):
    """An input path or URL that cannot be used; the message names it."""


@dataclass(frozen=True)
class Fields:
    """Where a record keeps its id, text and label (label "" = no labels)."""

    id: str = "id"
    text: str = "text"
    label: str = "label"


def spelling(fs: fsspec.AbstractFileSystem, path: str) -> tuple[str, str]:
    """(the spelling read and written in sources, the key files are de-duplicated by): a local file as its
    normalised absolute path (`a/../a/b.jsonl` and `file:///…/a/b.jsonl` alike), keyed by its real path
    (symlinks resolved); another file system's file as its normalised URL."""
    if isinstance(fs, LocalFileSystem):
        local = os.path.normpath(os.path.abspath(path))
        return local, os.path.realpath(local)
    url = fs.unstrip_protocol(posixpath.normpath(path))
    return url, url


def expand_inputs(patterns: Iterable[str], exclude: str | None = None) -> list[str]:
    """Expand local paths, globs and fsspec URLs into a sorted list of canonical file paths or URLs, each file
    once however it is spelled, leaving out what lies under the directory `exclude` (the run's output);
    InputError if a pattern matches nothing else."""
    output = None if exclude is None else canonical(exclude)
    files: dict[str, str] = {}
    for pattern in patterns:
        try:
            fs, _, paths = fsspec.core.get_fs_token_paths(pattern)
        except (ValueError, ImportError) as e:  # an unknown protocol, or one whose fsspec backend is missing
            raise InputError(
                f"Input {pattern!r} cannot be opened ({e}); check the URL or install its fsspec backend."
            ) from None
        matched = [p for p in paths if fs.isfile(p)]
        if not matched:
            raise InputError(f"Input {pattern!r} matches no readable file; check the path or glob.")
        kept = [spelling(fs, p) for p in matched]
        kept = [(s, key) for s, key in kept if output is None or not within(key, output)]
        if not kept:
            raise InputError(
                f"Input {pattern!r} matches only files under --output {exclude!r}, which a run never reads; "
                "move them or choose another --output."
            )
        for spelled, key in kept:
            files.setdefault(key, spelled)
    return sorted(set(files.values()))


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


# ------------------------------------------------------------------------------------- planning a file


@dataclass(frozen=True)
class FilePlan:
    """How one file is read: its format, and the offsets [start, stop) its restriction covers, in `unit`s.

    unit "byte": an uncompressed text or JSONL file, split into byte ranges (start skips a UTF-8 BOM);
    "row_group": a Parquet file, split by row groups; "file": read whole (compressed, CSV, or a file that
    cannot be read at all: then `problem` says why, and it is one dead letter). start also counts the bytes
    of a BOM that a whole file's reader skips.
    """

    path: str
    format: str
    unit: str
    start: int
    stop: int
    problem: str | None = None

    def restriction(self) -> OffsetRange:
        return OffsetRange(self.start, self.stop) if self.unit != "file" else OffsetRange(0, 1)


def encoding_problem(head: bytes) -> str | None:
    """Why a file starting with `head` is not UTF-8 but UTF-16 (or UTF-32), or None: a UTF-16 byte-order
    mark, or NUL bytes making up a quarter of the bytes, nearly all at even or all at odd offsets (the high
    bytes of Latin characters). A stray NUL in UTF-8 text is an ordinary character."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "the file is not UTF-8: it starts with a UTF-16 byte-order mark; re-encode it as UTF-8"
    nuls = head.count(0)
    if nuls and nuls >= len(head) / 4 and max(head[0::2].count(0), head[1::2].count(0)) >= 0.9 * nuls:
        return (
            "the file is not UTF-8: it looks like UTF-16 without a byte-order mark (NUL bytes between its "
            "characters); re-encode it as UTF-8"
        )
    return None


def plan_file(path: str, fmt: str) -> FilePlan:
    """Look at a file's start (and a Parquet file's footer) to decide how it is read."""
    fmt = detect_format(path, fmt)
    try:
        if fmt == "parquet":
            with fsspec.open(path, "rb") as f:
                return FilePlan(path, fmt, "row_group", 0, pq.ParquetFile(f).num_row_groups)
        with fsspec.open(path, "rb", compression="infer") as f:
            head = f.read(HEAD_BYTES)
        bom = len(UTF8_BOM) if head.startswith(UTF8_BOM) else 0
        problem = encoding_problem(head[bom:] if bom else head)
        if problem:
            return FilePlan(path, fmt, "file", 0, 1, problem)
        compressed = fsspec.utils.infer_compression(path) is not None
        if fmt == "csv" or compressed:
            return FilePlan(path, fmt, "file", bom, 1)
        fs, local = fsspec.core.url_to_fs(path)
        return FilePlan(path, fmt, "byte", bom, fs.size(local))
    except Exception as error:  # a broken file must not take the run down
        return FilePlan(path, fmt, "file", 0, 1, failure(0, error))


def failure(read: int, error: Exception) -> str:
    return (
        f"reading the file failed after {read} records ({type(error).__name__}: {error}); "
        "repair or re-export it and rerun"
    )


def covered_bytes(plan: FilePlan, restriction: OffsetRange) -> int:
    """About how many of the file's bytes `restriction` covers (for the progress line)."""
    if plan.unit == "byte":
        return restriction.size()
    fs, local = fsspec.core.url_to_fs(plan.path)
    parts = 1 if plan.unit == "file" else max(1, plan.stop - plan.start)
    return fs.size(local) * restriction.size() // parts


# --------------------------------------------------------------------------------- reading records


def read_records(
    plan: FilePlan, fields: Fields, restriction: OffsetRange, claim: Callable[[int], bool]
) -> Iterator[Row]:
    """The rows of `plan`'s file within `restriction`, each position claimed (claim(offset) -> False: stop,
    another reader owns the rest). If reading fails midway, one dead letter for the rest of the file."""
    if plan.problem is not None:
        if claim(0):
            yield dead_letter("read", plan.problem, plan.path)
        return
    if plan.format == "parquet":
        yield from parquet_rows(plan, fields, restriction, claim)
        return
    read = 0
    try:
        if plan.format == "csv":
            rows = csv_rows(plan, fields, claim)
        else:
            parse = text_row if plan.format == "text" else jsonl_row
            rows = (parse(f"{plan.path}@{at}", line, fields) for at, line in lines(plan, restriction, claim))
        for row in rows:
            read += row is not None
            yield row
    except Exception as error:  # a broken file must not take the run down
        yield dead_letter("read", failure(read, error), plan.path)


def read_file(path: str, fmt: str, fields: Fields) -> Iterator[Row]:
    """Every row of one file, read in one piece (what all the splits of ReadCorpus read together)."""
    plan = plan_file(path, fmt)
    return read_records(plan, fields, plan.restriction(), lambda _: True)


def lines(
    plan: FilePlan, restriction: OffsetRange, claim: Callable[[int], bool]
) -> Iterator[tuple[int, bytes]]:
    """(byte offset, line with its line end) of each line that starts within restriction (unit "byte"),
    or of every line of a file read whole (unit "file", after claiming offset 0)."""
    whole = plan.unit == "file"
    with fsspec.open(plan.path, "rb", compression="infer" if whole else None) as f:
        if whole:
            if not claim(0):
                return
            f.read(plan.start)  # a byte-order mark
            at = plan.start
            for line in f:
                yield at, line
                at += len(line)
            return
        if restriction.start > plan.start:  # the line running into this range belongs to the one before
            f.seek(restriction.start - 1)
            at = restriction.start - 1 + len(f.readline())
        else:
            f.seek(restriction.start)
            at = restriction.start
        while claim(at):
            line = f.readline()
            if not line:
                return
            yield at, line
            at += len(line)


def text_row(source: str, line: bytes, fields: Fields) -> Row:
    text = line.decode("utf-8", "surrogateescape").rstrip("\r\n")
    return None if not text.strip() else record(source, {fields.text: text}, text, fields)


def jsonl_row(source: str, line: bytes, fields: Fields) -> Row:
    text = line.decode("utf-8", "surrogateescape")
    if not text.strip():
        return None
    if not is_valid_utf8(text):
        return dead_letter("read", "line is not valid UTF-8", source, text)
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as e:  # also too-long integers and too deep nesting
        detail = e.msg if isinstance(e, json.JSONDecodeError) else f"{type(e).__name__}: {e}"
        return dead_letter("read", f"line is not valid JSON ({detail})", source, text)
    if not isinstance(obj, dict):
        return dead_letter("read", "line is not a JSON object", source, text)
    return record(source, obj, text, fields)


def csv_rows(plan: FilePlan, fields: Fields, claim: Callable[[int], bool]) -> Iterator[Row]:
    """A CSV file read whole (quoted fields may span lines); source "path:LINE", the row's last line."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    if not claim(0):
        return
    with fsspec.open(plan.path, "rb", compression="infer") as raw:
        raw.read(plan.start)  # a byte-order mark
        # newline="": line ends stay as written, so that fields keep their quoted line breaks
        f = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None:
            return
        hint = "" if fields.text in header else f" (the file's columns: {', '.join(header)})"
        for row in rows:
            if not row:  # a blank line
                yield None
                continue
            source = f"{plan.path}:{rows.line_num}"
            if len(row) != len(header):
                reason = f"CSV row has {len(row)} fields, the header has {len(header)}"
                yield dead_letter("read", reason, source, ",".join(row))
                continue
            yield record(source, dict(zip(header, row)), ",".join(row), fields, hint)


def parquet_rows(
    plan: FilePlan, fields: Fields, restriction: OffsetRange, claim: Callable[[int], bool]
) -> Iterator[Row]:
    """The rows of the row groups in restriction, reading only the id, text and label columns; a row group
    that cannot be read is one dead letter per row (the accounting holds in rows)."""
    with fsspec.open(plan.path, "rb") as f:
        parquet = pq.ParquetFile(f)
        names = parquet.schema_arrow.names
        columns = [c for c in dict.fromkeys((fields.id, fields.text, fields.label)) if c and c in names]
        hint = "" if fields.text in names else f" (the file's columns: {', '.join(names)})"
        sizes = [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)]
        first = sum(sizes[: restriction.start])
        for group in range(restriction.start, restriction.stop):
            if not claim(group):
                return
            sources = [f"{plan.path}:{first + n}" for n in range(1, sizes[group] + 1)]
            first += sizes[group]
            try:
                table = parquet.read_row_group(group, columns=columns)
                objs = table.to_pylist() if table.num_columns else [{}] * table.num_rows
            except Exception as error:  # a corrupt row group loses its rows, not the file
                reason = (
                    f"row group {group} of the file cannot be read ({type(error).__name__}: {error}); "
                    "repair or re-export it and rerun"
                )
                for source in sources:
                    yield dead_letter("read", reason, source)
                continue
            for source, obj in zip(sources, objs, strict=True):
                yield record(source, obj, None, fields, hint)


def record(source: str, obj: dict, raw: str | None, fields: Fields, hint: str = "") -> Review | DeadLetter:
    """A review record from a parsed object, or a dead letter naming the field at fault. raw: the input as
    read (None: obj as JSON, made only for a dead letter); hint follows a missing text field."""
    review_id = obj.get(fields.id)
    review_id = source if review_id is None or review_id == "" else str(review_id)
    try:
        text, label = text_and_label(obj, review_id, fields, hint)
    except ValueError as e:
        raw = json.dumps(obj, default=str) if raw is None else raw
        return dead_letter("read", str(e), source, raw, review_id)
    return {"review_id": review_id, "source": source, "text": text, "label": label}


def text_and_label(obj: dict, review_id: str, fields: Fields, hint: str) -> tuple[str, int | None]:
    """The record's text and label; ValueError with a reason a person can act on."""
    if not is_valid_utf8(review_id):
        raise ValueError(f"id field {fields.id!r} is not valid UTF-8")
    text = obj.get(fields.text)
    if not isinstance(text, str):
        raise ValueError(text_problem(obj, fields.text, hint))
    if not is_valid_utf8(text):
        raise ValueError("text is not valid UTF-8")
    try:
        return text, parse_label(obj.get(fields.label)) if fields.label else None
    except ValueError as e:
        raise ValueError(f"field {fields.label!r}: {e}") from None


def text_problem(obj: dict, name: str, hint: str) -> str:
    """Why obj has no usable text: the field is missing (then hint follows), null, or not a string."""
    if name not in obj:
        return f"text field {name!r} is missing{hint}"
    what = "null" if obj[name] is None else f"a {type(obj[name]).__name__}, not a string"
    return f"text field {name!r} is {what}"


# ---------------------------------------------------------------------------------------------- Beam


class ReadSplit(beam.DoFn, RestrictionProvider):
    """A FilePlan and one restriction of it -> review records, and dead letters for records that cannot be
    read. Its own restriction provider: a plan's restriction splits into byte ranges of about split_bytes,
    into single row groups, or not at all (unit "file")."""

    def __init__(self, fields: Fields, split_bytes: int) -> None:
        self.fields, self.split_bytes = fields, split_bytes
        self.records = beam.metrics.Metrics.counter(NAMESPACE, "input_records")
        self.skipped = beam.metrics.Metrics.counter(NAMESPACE, "skipped_blank")
        self.splits = beam.metrics.Metrics.counter(NAMESPACE, "read_splits")

    def initial_restriction(self, plan: FilePlan) -> OffsetRange:
        return plan.restriction()

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def split(self, plan: FilePlan, restriction: OffsetRange) -> Iterator[OffsetRange]:
        if plan.unit == "file" or restriction.size() <= 1:
            yield restriction
            return
        size = self.split_bytes if plan.unit == "byte" else 1
        pieces = -(-restriction.size() // size)
        yield from restriction.split(-(-restriction.size() // pieces))

    def restriction_size(self, plan: FilePlan, restriction: OffsetRange) -> int:
        return restriction.size()

    def process(self, plan: FilePlan, tracker=beam.DoFn.RestrictionParam()) -> Iterator:
        self.splits.inc()
        restriction = tracker.current_restriction()
        yield from self.outputs(read_records(plan, self.fields, restriction, tracker.try_claim))
        if progress.LISTENERS:
            progress.report("bytes", covered_bytes(plan, restriction))

    def outputs(self, rows: Iterator[Row]) -> Iterator:
        """What the DoFn emits for one restriction's rows: reviews, and dead letters (tag DEAD_LETTER);
        blank lines are counted and dropped."""
        for row in rows:
            if row is None:
                self.skipped.inc()
                continue
            self.records.inc()
            yield tagged(row)


class Unsplit(beam.DoFn):
    """A ReadSplit run on each FilePlan's whole restriction as a plain DoFn, for runners without
    splittable DoFns (such as the DaskRunner)."""

    def __init__(self, reader: ReadSplit) -> None:
        self.reader = reader

    def setup(self) -> None:
        self.reader.setup()

    def process(self, plan: FilePlan) -> Iterator:
        yield from self.reader.process(plan, OffsetRestrictionTracker(plan.restriction()))


class ReadCorpus(beam.PTransform):
    """Reads every file matching `patterns`, except those under `exclude` (the run's output directory) ->
    reviews (main output) and dead letters (tag DEAD_LETTER).

    split_bytes: the size of the byte ranges that text and JSONL files are split into; 0 reads every file
    whole with a plain DoFn (for runners without splittable DoFns).
    """

    def __init__(
        self,
        patterns: Iterable[str],
        fmt: str = "auto",
        fields: Fields = Fields(),
        split_bytes: int = SPLIT_BYTES,
        exclude: str | None = None,
    ) -> None:
        super().__init__()
        if fmt not in FORMATS:
            raise InputError(f"Unknown input format {fmt!r}; use one of {', '.join(FORMATS)}.")
        if split_bytes < 0:
            raise InputError(f"Split size must be at least 0 bytes; got {split_bytes}.")
        self.files, self.fmt, self.fields = expand_inputs(patterns, exclude), fmt, fields
        self.split_bytes = split_bytes

    main = "reviews"

    def reader(self) -> ReadSplit:
        """The DoFn that reads one restriction of a file."""
        return ReadSplit(self.fields, self.split_bytes)

    main_type: Any = Any
    """The type of the main output's elements (which picks their coder)."""

    def expand(self, pbegin):
        reader = self.reader()
        return (
            pbegin
            | "ListFiles" >> beam.Create(self.files)
            | "SpreadFiles" >> beam.Reshuffle()
            | "PlanFiles" >> beam.Map(plan_file, self.fmt)
            | "ReadSplits"
            >> beam.ParDo(reader if self.split_bytes else Unsplit(reader))
            .with_output_types(self.main_type)
            .with_outputs(DEAD_LETTER, main=self.main)
        )
