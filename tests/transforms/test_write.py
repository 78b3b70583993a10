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
)


def batch(review_ids: list[str], lengths: list[int], target: int) -> ExplainedBatch:
    rng = np.random.default_rng(len(review_ids) + target)
    steps = max(lengths)
    relevance = (
        rng.normal(size=(len(lengths), steps, 2)) * (np.arange(steps) < np.array(lengths)[:, None])[..., None]
    )
    result = Explanation(
        relevance,
        rng.normal(size=(len(lengths), 3)),
        np.full(len(lengths), target),
        np.zeros(len(lengths)),
        np.array(lengths),
    )
    records = [
        {"review_id": r, "source": f"f:{r}", "tokens": [f"{r}-{i}" for i in range(n)], "label": i % 2 or None}
        | {"positions": np.arange(n)}
        for i, (r, n) in enumerate(zip(review_ids, lengths))
    ]
    checked = explained_batch(records, np.arange(len(records)), result, {"lrp": result.token_relevance})
    return checked.with_conserved(np.arange(len(records)) % 2 == 0)


def read(directory, name: str):
    """(schema of every file, all rows) of one output dataset."""
    files = sorted(glob.glob(f"{directory}/{name}/*.parquet"))
    assert files, f"no Parquet files under {name}/"
    schemas = [pq.read_schema(f) for f in files]
    return schemas, pq.read_table(files, schema=schemas[0]).to_pylist()


def test_tables_and_dead_letters_are_written_with_the_declared_schemas(tmp_path):
    batches = [batch(["a", "b"], [3, 1], 0), batch(["c"], [2], 2)]
    letters = [
        dead_letter("read", "line is not valid JSON", "f:9", "x" * (RAW_LIMIT + 5)),
        dead_letter("embed", "no token of the review is in the vocabulary", "f:10", "zzz", "r10"),
    ]
    with BeamTestPipeline() as p:
        outputs = {
            "explained": p | "Batches" >> beam.Create(batches),
            DEAD_LETTER: p | "Letters" >> beam.Create(letters),
        }
        _ = outputs | WriteResults(str(tmp_path / "out"))
    expected = {
        "tokens": (TOKENS_SCHEMA, [row for b in batches for row in b.tokens.to_pylist()]),
        "reviews": (REVIEWS_SCHEMA, [row for b in batches for row in b.reviews.to_pylist()]),
        "dead_letter": (DEAD_LETTER_SCHEMA, letters),
    }
    for name, (schema, rows) in expected.items():
        schemas, written = read(tmp_path / "out", name)
        assert all(s.equals(schema) for s in schemas), (name, schemas)
        key = lambda row: tuple(str(v) for v in row.values())  # noqa: E731
        assert sorted(written, key=key) == sorted(rows, key=key)
    assert len(letters[0]["raw"]) == RAW_LIMIT
    assert {r["conserved"] for r in expected["reviews"][1]} == {True, False}


def test_no_dead_letters_still_gives_a_dead_letter_dataset(tmp_path):
    with BeamTestPipeline() as p:
        outputs = {
            "explained": p | "Batches" >> beam.Create([batch(["a"], [2], 1)]),
            DEAD_LETTER: p | "Letters" >> beam.Create([]).with_output_types(dict),
        }
        _ = outputs | WriteResults(f"{tmp_path}/out/")
    schemas, rows = read(tmp_path / "out", "dead_letter")
    assert rows == [] and all(s.equals(DEAD_LETTER_SCHEMA) for s in schemas)
    _, tokens = read(tmp_path / "out", "tokens")
    assert [(t["review_id"], t["position"], t["method"]) for t in tokens] == [
        ("a", 0, "lrp"),
        ("a", 1, "lrp"),
    ]
