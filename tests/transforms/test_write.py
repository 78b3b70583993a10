"""WriteResults: Parquet under tokens/, reviews/ and dead_letter/ with exactly the declared schemas."""

from __future__ import annotations

import glob

import apache_beam as beam
import numpy as np
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

from lrp import Explanation
from transforms import ExplainedBatch, WriteResults
from transforms.batch import explained_batch
from transforms.schemas import (
    DEAD_LETTER,
    DEAD_LETTER_SCHEMA,
    RAW_LIMIT,
    REVIEWS_SCHEMA,
    TOKENS_SCHEMA,
    dead_letter,
    tokens_schema,
)
from transforms.write import BundleFiles, publish_files


def batch(review_ids: list[str], lengths: list[int], target: int, dtype: str = "float32") -> ExplainedBatch:
    """An ExplainedBatch of random relevances in the engine dtype `dtype`."""
    rng = np.random.default_rng(len(review_ids) + target)
    steps = max(lengths)
    relevance = (
        rng.normal(size=(len(lengths), steps, 2)) * (np.arange(steps) < np.array(lengths)[:, None])[..., None]
    )
    result = Explanation(
        relevance=relevance.astype(dtype),
        logits=rng.normal(size=(len(lengths), 3)).astype(dtype),
        target=np.full(len(lengths), target),
        rest=rng.normal(size=len(lengths)).astype(dtype),
        absorbed=rng.normal(size=len(lengths)).astype(dtype),
        lengths=np.array(lengths),
    )
    records = [
        {"review_id": r, "source": f"f:{r}", "tokens": [f"{r}-{i}" for i in range(n)], "label": i % 2 or None}
        | {"positions": np.arange(n)}
        for i, (r, n) in enumerate(zip(review_ids, lengths))
    ]
    return explained_batch(records, np.arange(len(records)), result, {"lrp": result.token_relevance})


def read(directory, name: str):
    """(schema of every file, all rows) of one output dataset."""
    files = sorted(glob.glob(f"{directory}/{name}/*.parquet"))
    assert files, f"no Parquet files under {name}/"
    schemas = [pq.read_schema(f) for f in files]
    return schemas, pq.read_table(files, schema=schemas[0]).to_pylist()


def test_tables_and_dead_letters_are_written_with_the_declared_schemas(tmp_path):
    """A float64 run: token relevances stay float64."""
    batches = [batch(["a", "b"], [3, 1], 0, "float64"), batch(["c"], [2], 2, "float64")]
    letters = [
        dead_letter("read", "line is not valid JSON", "f:9", "x" * (RAW_LIMIT + 5)),
        dead_letter("embed", "no token of the review is in the vocabulary", "f:10", "zzz", "r10"),
    ]
    with BeamTestPipeline() as p:
        outputs = {
            "explained": p | "Batches" >> beam.Create(batches),
            DEAD_LETTER: p | "Letters" >> beam.Create(letters),
        }
        _ = outputs | WriteResults(str(tmp_path / "out"), "float64")
    expected = {
        "tokens": (tokens_schema("float64"), [row for b in batches for row in b.tokens.to_pylist()]),
        "reviews": (REVIEWS_SCHEMA, [row for b in batches for row in b.reviews.to_pylist()]),
        "dead_letter": (DEAD_LETTER_SCHEMA, letters),
    }
    for name, (schema, rows) in expected.items():
        schemas, written = read(tmp_path / "out", name)
        assert all(s.equals(schema) for s in schemas), (name, schemas)
        key = lambda row: tuple(str(v) for v in row.values())  # noqa: E731
        assert sorted(written, key=key) == sorted(rows, key=key)
    assert len(letters[0]["raw"]) == RAW_LIMIT
    for row in expected["reviews"][1]:  # the books balance as written
        booked = row["relevance_sum"] + row["rest"] + row["absorbed"]
        assert row["conservation_residual"] == row["target_score"] - booked


def test_no_dead_letters_still_gives_a_dead_letter_dataset(tmp_path):
    with BeamTestPipeline() as p:
        outputs = {
            "explained": p | "Batches" >> beam.Create([batch(["a"], [2], 1)]),
            DEAD_LETTER: p | "Letters" >> beam.Create([]).with_output_types(dict),
        }
        _ = outputs | WriteResults(f"{tmp_path}/out/")
    schemas, rows = read(tmp_path / "out", "dead_letter")
    assert rows == [] and all(s.equals(DEAD_LETTER_SCHEMA) for s in schemas)
    schemas, tokens = read(tmp_path / "out", "tokens")
    assert all(s.equals(TOKENS_SCHEMA) for s in schemas)
    assert [(t["review_id"], t["position"], t["method"]) for t in tokens] == [
        ("a", 0, "lrp"),
        ("a", 1, "lrp"),
    ]


def test_each_bundle_writes_row_groups_of_at_least_min_rows(tmp_path):
    """Tables gathered into row groups of >= min_rows (the bundle's last may be smaller), in one file."""
    files = BundleFiles(str(tmp_path), {"tokens": TOKENS_SCHEMA}, min_rows=5)
    for n in (2, 2, 3, 1, 4, 1):
        files.add("tokens", batch([f"r{i}" for i in range(n)], [1] * n, 0).tokens)
    ((name, path),) = files.close()
    metadata = pq.ParquetFile(path).metadata
    sizes = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
    assert name == "tokens" and sizes == [7, 5, 1]


def test_publishing_keeps_the_files_that_counted_and_only_those(tmp_path):
    """Files of attempts nobody heard of (a retried bundle) are removed, the rest numbered; an empty dataset
    gets one empty file; publishing again changes nothing."""
    schemas = {"tokens": TOKENS_SCHEMA, DEAD_LETTER: DEAD_LETTER_SCHEMA}
    written = []
    for n in (1, 2, 3):
        files = BundleFiles(str(tmp_path), schemas, min_rows=1)
        files.add("tokens", batch([f"r{n}"] * n, [1] * n, 0).tokens)
        written += files.close()
    abandoned = written.pop(1)
    for _ in range(2):
        publish_files(written, str(tmp_path), schemas)
    tokens = sorted(p.name for p in (tmp_path / "tokens").iterdir())
    assert tokens == ["part-00000-of-00002.parquet", "part-00001-of-00002.parquet"]
    assert not (tmp_path / abandoned[1]).exists()
    rows = pq.read_table(tmp_path / "tokens").column("review_id").to_pylist()
    assert sorted(rows) == ["r1", "r3", "r3", "r3"]
    (letters,) = (tmp_path / DEAD_LETTER).iterdir()
    assert pq.read_table(letters).num_rows == 0 and pq.read_schema(letters).equals(DEAD_LETTER_SCHEMA)
