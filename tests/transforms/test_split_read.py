"""Split reading: every record read exactly once, with the same source, whatever the splits; UTF-8 with a
byte-order mark, UTF-16 files, Parquet row groups and columns, and files named twice."""

from __future__ import annotations

import gzip
import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.io.restriction_trackers import OffsetRestrictionTracker
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms import Fields, ReadCorpus
from transforms.read import ReadSplit, expand_inputs, plan_file, read_file, read_records
from transforms.records import is_dead_letter
from transforms.schemas import DEAD_LETTER


def jsonl(records: list[dict], end: bytes = b"\n") -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + end for r in records)


# Lines that straddle any split boundary: CRLF ends, multi-byte characters, blank lines, a bad line, and a
# last line without a line end.
JSONL_CASES = {
    "lf": jsonl([{"id": str(n), "text": f"review {n} " * (n % 5 + 1)} for n in range(40)]),
    "crlf": jsonl([{"id": str(n), "text": "été 😀 " * (n % 4 + 1)} for n in range(30)], b"\r\n"),
    "blank-and-bad": b'{"id": "a", "text": "good"}\n\n   \r\n{oops\n\n'
    + b'{"id": "b", "text": "\xc3\xa9\xf0\x9f\x98\x80"}\n',
    "no-final-newline": jsonl([{"id": str(n), "text": "ünïcödé"} for n in range(9)])
    + b'{"id": "z", "text": "end"}',
    "bom": b"\xef\xbb\xbf" + jsonl([{"id": str(n), "text": "mit BOM"} for n in range(12)]),
}
TEXT_CASES = {
    "text-crlf": "".join(f"ligne {n} é😀\r\n" if n % 3 else "\n" for n in range(50)).encode(),
    "text-bom-no-newline": b"\xef\xbb\xbffirst words\nsecond\n\nlast one",
}


def rows_by_split(path: str, split_bytes: int) -> list:
    """Every row read by the restrictions ReadSplit makes of the file, in order, as the runner would."""
    plan = plan_file(path, "auto")
    reader = ReadSplit(Fields(), split_bytes)
    rows = []
    for restriction in reader.split(plan, reader.initial_restriction(plan)):
        tracker = OffsetRestrictionTracker(restriction)
        rows += list(read_records(plan, Fields(), restriction, tracker.try_claim))
        tracker.check_done()
    return rows


@pytest.mark.parametrize("case", [*JSONL_CASES, *TEXT_CASES])
def test_split_reads_equal_the_unsplit_read_for_every_split_size(tmp_path, case):
    data = JSONL_CASES.get(case) or TEXT_CASES[case]
    path = tmp_path / (f"{case}.jsonl" if case in JSONL_CASES else f"{case}.txt")
    path.write_bytes(data)
    whole = list(read_file(str(path), "auto", Fields()))
    assert len([r for r in whole if r is not None and not is_dead_letter(r)]) > 1
    for split_bytes in (1, 2, 3, 5, 7, 16, 61, 100, len(data) - 1, len(data), 10 * len(data)):
        assert rows_by_split(str(path), split_bytes) == whole, split_bytes


def test_a_split_read_can_be_split_again_while_reading(tmp_path):
    """Dynamic splitting: the runner takes the rest of a restriction away midway; both parts together
    read every line once."""
    path = tmp_path / "r.jsonl"
    path.write_bytes(JSONL_CASES["crlf"])
    plan = plan_file(str(path), "auto")
    whole = list(read_file(str(path), "auto", Fields()))
    tracker = OffsetRestrictionTracker(plan.restriction())
    first = []
    for row in read_records(plan, Fields(), plan.restriction(), tracker.try_claim):
        first.append(row)
        if len(first) == 7:
            _, residual = tracker.try_split(0.5)
    tracker.check_done()
    rest = OffsetRestrictionTracker(residual)
    second = list(read_records(plan, Fields(), residual, rest.try_claim))
    assert 7 <= len(first) < len(whole) and first + second == whole


def test_beam_splits_one_file_into_several_restrictions_and_reads_each_record_once(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_bytes(JSONL_CASES["crlf"] + JSONL_CASES["blank-and-bad"])
    whole = [r for r in read_file(str(path), "auto", Fields()) if r is not None]
    p = BeamTestPipeline()
    read = p | ReadCorpus([str(path)], split_bytes=97)
    assert_that(read.reviews, equal_to([r for r in whole if not is_dead_letter(r)]), label="Reviews")
    assert_that(read[DEAD_LETTER], equal_to([r for r in whole if is_dead_letter(r)]), label="Dead")
    result = p.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(beam.metrics.MetricsFilter().with_namespace("lstm_lrp"))["counters"]
    }
    assert counters["input_records"] == len(whole) and counters["read_splits"] > 10


def test_parquet_splits_by_row_group(tmp_path):
    path = tmp_path / "groups.parquet"
    table = pa.table({"id": [f"p{n}" for n in range(20)], "text": [f"text {n}" for n in range(20)]})
    pq.write_table(table, path, row_group_size=3)
    plan = plan_file(str(path), "auto")
    assert (plan.unit, plan.stop) == ("row_group", 7)
    whole = list(read_file(str(path), "auto", Fields()))
    assert [r["source"] for r in whole] == [f"{path}:{n}" for n in range(1, 21)]
    assert rows_by_split(str(path), 1) == whole
    with BeamTestPipeline() as p:
        assert_that((p | ReadCorpus([str(path)])).reviews, equal_to(whole))


@pytest.mark.parametrize("name", ["r.csv", "r.jsonl.gz"])
def test_csv_and_compressed_files_are_read_whole(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(JSONL_CASES["bom"], mtime=0))
    else:
        path.write_bytes(b"id,text\n" + b'1,"a quoted\nline break"\n2,plain\n' * 20)
    plan = plan_file(str(path), "auto")
    reader = ReadSplit(Fields(), 1)
    assert plan.unit == "file" and len(list(reader.split(plan, plan.restriction()))) == 1
    rows = list(read_file(str(path), "auto", Fields()))
    assert len(rows) in (12, 40) and not any(is_dead_letter(r) for r in rows)


# --------------------------------------------------------------------------------- encodings (issue #10)


def test_a_utf8_byte_order_mark_is_read_in_every_line_format(tmp_path):
    bom = b"\xef\xbb\xbf"
    (tmp_path / "a.jsonl").write_bytes(bom + b'{"id": "j", "text": "first"}\n')
    (tmp_path / "b.csv").write_bytes(bom + b"id,text\nc,first\n")
    (tmp_path / "c.txt").write_bytes(bom + b"first word\n")
    (tmp_path / "d.jsonl.gz").write_bytes(gzip.compress(bom + b'{"id": "g", "text": "first"}\n'))
    rows = {name: list(read_file(str(tmp_path / name), "auto", Fields())) for name in ("a.jsonl", "b.csv")}
    rows.update(
        {name: list(read_file(str(tmp_path / name), "auto", Fields())) for name in ("c.txt", "d.jsonl.gz")}
    )
    assert [(r[0]["review_id"], r[0]["text"]) for r in rows.values()] == [
        ("j", "first"),
        ("c", "first"),
        (f"{tmp_path}/c.txt@3", "first word"),
        ("g", "first"),
    ]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_file_is_one_dead_letter_that_says_it_is_not_utf8(tmp_path, encoding):
    path = tmp_path / "wide.jsonl"
    text = "".join(json.dumps({"id": str(n), "text": "good"}) + "\n" for n in range(5))
    path.write_bytes(text.encode(encoding))
    (row,) = read_file(str(path), "auto", Fields())
    assert is_dead_letter(row) and row["source"] == str(path) and row["stage"] == "read"
    assert "not UTF-8" in row["reason"] and "re-encode it as UTF-8" in row["reason"]
    with BeamTestPipeline() as p:
        read = p | ReadCorpus([str(path)], split_bytes=4)
        assert_that(read.reviews, equal_to([]), label="Reviews")
        assert_that(read[DEAD_LETTER] | beam.Map(lambda d: d["source"]), equal_to([str(path)]), label="Dead")


# ------------------------------------------------------------------------------------ Parquet (issue #10)


def test_parquet_reads_only_the_columns_it_needs(tmp_path):
    """An out-of-range timestamp in a column the run does not use loses nothing."""
    path = tmp_path / "wide.parquet"
    when = pa.array([0] * 999 + [2**62], pa.timestamp("ms"))
    table = pa.table({"id": [f"r{n}" for n in range(1000)], "text": ["good film"] * 1000, "when": when})
    pq.write_table(table, path)
    with pytest.raises((OverflowError, ValueError)):
        table.to_pylist()
    rows = list(read_file(str(path), "auto", Fields()))
    assert len(rows) == 1000 and not any(is_dead_letter(r) for r in rows)


def test_a_parquet_row_group_that_cannot_be_read_dead_letters_each_of_its_rows(tmp_path):
    path = tmp_path / "torn.parquet"
    table = pa.table({"id": [f"r{n}" for n in range(30)], "text": [f"review number {n}" for n in range(30)]})
    pq.write_table(table, path, row_group_size=10, compression="none")
    column = pq.ParquetFile(path).metadata.row_group(1).column(1)
    data = bytearray(path.read_bytes())
    data[column.data_page_offset : column.data_page_offset + 16] = b"\xff" * 16  # a torn page header
    path.write_bytes(bytes(data))
    rows = list(read_file(str(path), "auto", Fields()))
    assert len(rows) == 30, "the accounting holds in rows"
    dead = [r for r in rows if is_dead_letter(r)]
    assert [d["source"] for d in dead] == [f"{path}:{n}" for n in range(11, 21)]
    assert dead[0]["reason"].startswith("row group 1 of the file cannot be read (")
    assert [r["review_id"] for r in rows if not is_dead_letter(r)] == [
        f"r{n}" for n in (*range(10), *range(20, 30))
    ]


# ------------------------------------------------------------------------------------ paths (issue #10)


def test_the_same_file_spelled_three_ways_is_read_once(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    path = tmp_path / "a" / "b.jsonl"
    path.write_bytes(JSONL_CASES["lf"])
    monkeypatch.chdir(tmp_path)
    spellings = ["a/b.jsonl", f"file://{path}", "a/../a/b.jsonl", f"{tmp_path}/a/*.jsonl"]
    assert expand_inputs(spellings) == [str(path)]
    with BeamTestPipeline() as p:
        read = p | ReadCorpus(spellings)
        assert_that(read.reviews | beam.combiners.Count.Globally(), equal_to([40]))


def test_a_nul_character_in_utf8_text_is_an_ordinary_character(tmp_path):
    path = tmp_path / "nul.txt"
    path.write_bytes(b"good \x00 fun\nplain\n")
    assert [r["text"] for r in read_file(str(path), "auto", Fields())] == ["good \x00 fun", "plain"]
