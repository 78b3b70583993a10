"""The pipeline tests' corpus, a reader for a run's output directory, and the DirectRunner run that
test_run and test_runners share."""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass

import pandas as pd
import pyarrow.parquet as pq
import pytest

# review id -> (text, label); None text marks a line that is not a review.
REVIEWS = {
    "p01": ("good movie", 1),
    "p02": ("bad plot is boring", 0),
    "p03": ("The actor was very FUN", 2),
    "p04": ("not a great film xyzzy", 0),
    "p05": ("zzz qqq", 1),
    "p06": ("awful", None),
    "p07": ("the plot was good but the actor was bad and the ending was very quiet", 2),
    "p08": ("Loud story", 1),
    "p09": ("   ", 0),
    "p10": ("great great great movie movie and a good story", 2),
    "p11": ("fun", 0),
    "p12": ("boring boring film", 1),
}
EXPLAINED = ("p01", "p02", "p03", "p04", "p06", "p07", "p08", "p10", "p11", "p12")
DEAD = {
    "p05": "embed: no token of the review is in the vocabulary",
    "p09": "tokenize: text has no tokens",
    None: "read: line is not valid JSON",
}
# Bucket boundaries and batch size that give several buckets (p07 lies beyond the last) and batches.
SHAPE_FLAGS = ["--buckets", "2,4,8", "--batch-size", "3", "--split-bytes", "64"]


@dataclass(frozen=True)
class Corpus:
    """The JSONL file and what a run of it must give."""

    path: str
    input_records: int = len(REVIEWS) + 1
    skipped_blank: int = 1
    reviews: tuple = tuple(REVIEWS.items())
    explained: tuple[str, ...] = EXPLAINED
    dead: tuple = tuple(DEAD.items())

    def flags(self) -> list[str]:
        """--input and the small buckets and batches every test run uses."""
        return ["--input", self.path, *SHAPE_FLAGS]

    def size(self) -> int:
        return pathlib.Path(self.path).stat().st_size

    def text(self, review_id: str) -> str:
        return dict(self.reviews)[review_id][0]

    def label(self, review_id: str) -> int | None:
        return dict(self.reviews)[review_id][1]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Corpus:
    """REVIEWS as JSONL, with a blank line and a line that is not JSON among them."""
    lines = [json.dumps({"id": rid, "text": text, "label": label}) for rid, (text, label) in REVIEWS.items()]
    lines.insert(2, "")
    lines.insert(5, "{not json")
    path = tmp_path_factory.mktemp("corpus") / "reviews.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Corpus(str(path))


@dataclass(frozen=True)
class Output:
    """A run's output directory, read back: one DataFrame and the Arrow schemas of the files per dataset."""

    directory: pathlib.Path
    tables: dict[str, pd.DataFrame]
    schemas: dict[str, list]
    summary: dict

    def sorted(self, name: str) -> pd.DataFrame:
        """A dataset's rows in a runner-independent order."""
        keys = {
            "tokens": ["review_id", "target_class", "method", "position"],
            "reviews": ["review_id", "target_class"],
            "dead_letter": ["source", "stage"],
        }[name]
        return self.tables[name].sort_values(keys).reset_index(drop=True)


def read_output(directory) -> Output:
    """Read OUTPUT/{tokens,reviews,dead_letter}/*.parquet and OUTPUT/summary.json."""
    directory = pathlib.Path(directory)
    tables, schemas = {}, {}
    for name in ("tokens", "reviews", "dead_letter"):
        files = sorted((directory / name).glob("*.parquet"))
        assert files, f"no Parquet files in {directory / name}"
        schemas[name] = [pq.read_schema(f) for f in files]
        tables[name] = pq.read_table(files, schema=schemas[name][0]).to_pandas()
    summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
    return Output(directory, tables, schemas, summary)


@pytest.fixture(name="read_output", scope="session")
def read_output_fixture():
    """read_output, for the test modules."""
    return read_output


@pytest.fixture(scope="session")
def direct_run(corpus, tiny_model, tmp_path_factory) -> Output:
    """The corpus explained in this process with the default runner, float32."""
    from pipeline.run import run

    out = tmp_path_factory.mktemp("direct") / "out"
    run([*corpus.flags(), *tiny_model.flags(), "--output", str(out)])
    return read_output(out)
