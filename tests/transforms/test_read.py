"""ReadCorpus: JSONL, CSV, Parquet and plain text; ids, labels, blank lines, dead letters, globs and URLs."""

from __future__ import annotations

import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms import Fields, ReadCorpus
from transforms.read import InputError, detect_format, expand_inputs, parse_label
from transforms.schemas import DEAD_LETTER


def review(review_id, source, text, label=None) -> dict:
    return {"review_id": review_id, "source": source, "text": text, "label": label}


def letter_keys(letters):
    """(source, stage, review_id, reason) of dead letters, reasons cut at their first ' (' or ':'."""
    return letters | beam.Map(
        lambda d: (d["source"], d["stage"], d["review_id"], d["reason"].split(" (")[0].split(":")[0])
    )


def write_jsonl(path, lines: list[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


@pytest.fixture
def jsonl_file(tmp_path) -> str:
    return write_jsonl(
        tmp_path / "reviews.jsonl",
        [
            json.dumps({"id": "a", "text": "good movie", "label": 1}),
            "",
            json.dumps({"text": "no id here", "label": "0"}),
            "   ",
            json.dumps({"id": 7, "text": "numeric id", "label": 2.0}),
            "{not json",
            json.dumps(["a", "list"]),
            json.dumps({"id": "b", "label": 1}),
            json.dumps({"id": "c", "text": 5}),
            json.dumps({"id": "d", "text": "bad label", "label": "pos"}),
            json.dumps({"id": "e", "text": "float label", "label": 1.5}),
            json.dumps({"id": "f", "text": "no label"}),
        ],
    )


def test_jsonl_reviews_ids_labels_and_dead_letters(jsonl_file, line_source):
    def at(n):
        return line_source(jsonl_file, n)

    p = BeamTestPipeline()
    read = p | ReadCorpus([jsonl_file])
    assert_that(
        read.reviews,
        equal_to(
            [
                review("a", at(1), "good movie", 1),
                review(at(3), at(3), "no id here", 0),
                review("7", at(5), "numeric id", 2),
                review("f", at(12), "no label", None),
            ]
        ),
        label="Reviews",
    )
    assert_that(
        letter_keys(read[DEAD_LETTER]),
        equal_to(
            [
                (at(6), "read", None, "line is not valid JSON"),
                (at(7), "read", None, "line is not a JSON object"),
                (at(8), "read", "b", "text field 'text' is missing"),
                (at(9), "read", "c", "text field 'text' is a int, not a string"),
                (at(10), "read", "d", "field 'label'"),
                (at(11), "read", "e", "field 'label'"),
            ]
        ),
        label="DeadLetters",
    )
    result = p.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(beam.metrics.MetricsFilter().with_namespace("lstm_lrp"))["counters"]
    }
    assert counters == {"input_records": 10, "skipped_blank": 2, "read_splits": 1}


def test_custom_fields_and_no_labels(tmp_path, line_source):
    path = write_jsonl(
        tmp_path / "r.ndjson",
        [json.dumps({"key": "k1", "body": "Some Text", "stars": 4, "label": "ignored"})],
    )
    with BeamTestPipeline() as p:
        read = p | ReadCorpus([path], fields=Fields(id="key", text="body", label=""))
        assert_that(read.reviews, equal_to([review("k1", line_source(path, 1), "Some Text", None)]))


def test_csv(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text(
        'id,text,label\nx1,"good, very good",1\n\nx2,plain,\nx3,too,many,fields\n,empty id,0\n',
        encoding="utf-8",
    )
    with BeamTestPipeline() as p:
        read = p | ReadCorpus([str(path)])
        assert_that(
            read.reviews,
            equal_to(
                [
                    review("x1", f"{path}:2", "good, very good", 1),
                    review("x2", f"{path}:4", "plain", None),
                    review(f"{path}:6", f"{path}:6", "empty id", 0),
                ]
            ),
            label="Reviews",
        )
        assert_that(
            letter_keys(read[DEAD_LETTER]),
            equal_to([(f"{path}:5", "read", None, "CSV row has 4 fields, the header has 3")]),
            label="DeadLetters",
        )


def test_parquet(tmp_path):
    path = tmp_path / "reviews.parquet"
    table = pa.table(
        {
            "id": pa.array([10, 11, None], pa.int64()),
            "text": ["first review", "second review", "third"],
            "label": pa.array([0, None, 2], pa.int64()),
        }
    )
    pq.write_table(table, path)
    with BeamTestPipeline() as p:
        read = p | ReadCorpus([str(path)])
        assert_that(
            read.reviews,
            equal_to(
                [
                    review("10", f"{path}:1", "first review", 0),
                    review("11", f"{path}:2", "second review", None),
                    review(f"{path}:3", f"{path}:3", "third", 2),
                ]
            ),
        )


def test_plain_text_ids_are_path_and_byte_offset(tmp_path):
    path = tmp_path / "reviews.txt"
    path.write_text("First line\n\n  \nthird, with {json-like} text\r\nlast", encoding="utf-8")
    with BeamTestPipeline() as p:
        read = p | ReadCorpus([str(path)])
        assert_that(
            read.reviews,
            equal_to(
                [
                    review(f"{path}@0", f"{path}@0", "First line"),
                    review(f"{path}@15", f"{path}@15", "third, with {json-like} text"),
                    review(f"{path}@45", f"{path}@45", "last"),
                ]
            ),
        )


def test_glob_and_file_url_read_every_file_once(tmp_path):
    """A glob over two JSONL files and a text file read by format override, one of them by file:// URL."""
    for name, ident in (("a.jsonl", "a1"), ("b.jsonl", "b1")):
        write_jsonl(tmp_path / name, [json.dumps({"id": ident, "text": f"text {ident}"})])
    write_jsonl(tmp_path / "notes.md", ["plain words"])
    url = f"file://{tmp_path}/notes.md"
    with BeamTestPipeline() as p:
        jsonl = p | "Glob" >> ReadCorpus([f"{tmp_path}/*.jsonl"])
        text = p | "Url" >> ReadCorpus([url], fmt="text")
        assert_that(
            jsonl.reviews | beam.Map(lambda r: (r["review_id"], r["source"])),
            equal_to([("a1", f"{tmp_path}/a.jsonl@0"), ("b1", f"{tmp_path}/b.jsonl@0")]),
            label="Glob",
        )
        local = f"{tmp_path}/notes.md@0"  # a file:// URL is read as the local path it names
        assert_that(text.reviews, equal_to([review(local, local, "plain words")]), label="Url")


def test_duplicate_ids_are_kept(tmp_path, line_source):
    lines = [json.dumps({"id": "same", "text": "one"}), json.dumps({"id": "same", "text": "two"})]
    path = write_jsonl(tmp_path / "dup.jsonl", lines)
    with BeamTestPipeline() as p:
        read = p | ReadCorpus([path])
        assert_that(
            read.reviews | beam.Map(lambda r: (r["review_id"], r["source"])),
            equal_to([("same", f"{path}@0"), ("same", line_source(path, 2))]),
        )


def test_expand_inputs(tmp_path):
    for name in ("b.jsonl", "a.jsonl", "c.csv"):
        (tmp_path / name).write_text("", encoding="utf-8")
    assert expand_inputs([f"{tmp_path}/*.jsonl", str(tmp_path / "a.jsonl")]) == [
        str(tmp_path / "a.jsonl"),
        str(tmp_path / "b.jsonl"),
    ]
    assert expand_inputs([f"file://{tmp_path}/c.csv"]) == [f"{tmp_path}/c.csv"]
    with pytest.raises(InputError, match="matches no readable file"):
        expand_inputs([f"{tmp_path}/*.parquet"])
    with pytest.raises(InputError, match="Unknown input format"):
        ReadCorpus([str(tmp_path / "a.jsonl")], fmt="xml")


@pytest.mark.parametrize(
    ("path", "fmt", "expected"),
    [
        ("a.jsonl", "auto", "jsonl"),
        ("a.JSON.gz", "auto", "jsonl"),
        ("a.ndjson", "auto", "jsonl"),
        ("a.csv.bz2", "auto", "csv"),
        ("a.parquet", "auto", "parquet"),
        ("a.txt", "auto", "text"),
        ("a.jsonl", "text", "text"),
    ],
)
def test_detect_format(path, fmt, expected):
    assert detect_format(path, fmt) == expected


def test_parse_label():
    assert [parse_label(v) for v in (None, "", 0, "3", 2.0)] == [None, None, 0, 3, 2]
    for bad in (2.5, "pos", True, [1]):
        with pytest.raises(ValueError, match="not an integer class"):
            parse_label(bad)
