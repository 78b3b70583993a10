"""One end-to-end run over a hostile corpus that mixes valid and invalid records in JSONL, CSV, text and
Parquet files, with a word-vector table holding NaN and inf rows, a 10,000-token review and a batch that
fails: every record is explained exactly once or dead-lettered with its stage and reason, the accounting
identity holds in summary.json and in Beam's counters, and nothing is written outside --output.

The run is shared by every test of this module (one pipeline run: TensorFlow and Beam start-up are slow)."""

from __future__ import annotations

import json
import pathlib
import resource
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

STAGES = ("read", "tokenize", "embed", "explain", "conservation")
NOT_FINITE = "explain: logits or relevances are not finite (NaN or inf in a vector or the model)"
LONG = 10_000
LONG_WORDS = ("good", "movie", "the", "plot", "was", "not", "very", "boring")


def jsonl_lines() -> list[tuple[bytes, str | None]]:
    """(line, outcome): "" explained, None a skipped blank line, else "stage: reason" (a prefix of it)."""
    long_text = " ".join(LONG_WORDS[n % len(LONG_WORDS)] for n in range(LONG))
    records = [
        ({"id": "v01", "text": "good movie", "label": 1}, ""),
        ({"id": "v02", "text": "😀 שלום the plot", "label": 0}, ""),
        ({"id": "v03", "text": "bad\u0007 film \u202e ending مرحبا", "label": 2}, ""),
        ({"id": "dup", "text": "great story"}, ""),
        ({"id": "dup", "text": "boring story"}, ""),
        ({"id": "../../escape", "text": "good film"}, ""),
        ({"text": "no id but fun"}, ""),
        ({"id": "long", "text": long_text, "label": 1}, ""),
        ({"id": "m1", "label": 1}, "read: text field 'text' is missing"),
        ({"id": "m2", "text": None}, "read: text field 'text' is null"),
        ({"id": "m3", "text": 7}, "read: text field 'text' is a int, not a string"),
        ({"id": "m4", "text": ["good"]}, "read: text field 'text' is a list, not a string"),
        (
            {"id": "big", "text": "good", "label": 99999999999},
            "read: field 'label': label 99999999999 is too",
        ),
        ({"id": "e1", "text": ""}, "tokenize: text has no tokens"),
        ({"id": "e2", "text": " \t \u3000 "}, "tokenize: text has no tokens"),
        ({"id": "o1", "text": "xyzzy qqq"}, "embed: no token of the review is in the vocabulary (2 unknown)"),
        ({"id": "n1", "text": "good nanword movie"}, NOT_FINITE),
        ({"id": "n2", "text": "infword film"}, NOT_FINITE),
        (
            {"id": "boom", "text": "the actor was fun"},
            "explain: explaining failed: ResourceExhaustedError: OOM",
        ),
    ]
    lines = [(json.dumps(obj, ensure_ascii=False).encode(), outcome) for obj, outcome in records]
    lines[2:2] = [(b"", None)]
    lines[6:6] = [(b"   ", None)]
    lines += [
        (b"{not json", "read: line is not valid JSON (Expecting property name"),
        (b"[" * 3000, "read: line is not valid JSON (RecursionError"),
        (b'["a", "list"]', "read: line is not a JSON object"),
        (b"12", "read: line is not a JSON object"),
        (b'{"id": "x1", "text": "caf\xe9 good"}', "read: line is not valid UTF-8"),
        (b'{"id": "x2", "text": "good \\ud800"}', "read: text is not valid UTF-8"),
        (b'{"id": "\\udcff", "text": "good"}', "read: id field 'id' is not valid UTF-8"),
    ]
    return lines


CSV_LINES = [
    (b"id,text,label", None),
    (b"c1,great film,1", ""),
    (b"", None),
    (b"c2,too,many,fields", "read: CSV row has 4 fields, the header has 3"),
    (b"\xff,good,0", "read: id field 'id' is not valid UTF-8"),
    (b'c3,"a quoted, comma",2', ""),
]
TEXT_LINES = [
    (b"good story", ""),
    (b"", None),
    (b"bad caf\xe9", "read: text is not valid UTF-8"),
    (b"\x00 fun", ""),
]


@dataclass(frozen=True)
class Hostile:
    """The run's output, what each input record must give (source -> outcome, see jsonl_lines), the
    review ids explained records must carry, Beam's counters, and where everything lies."""

    output: object
    outcomes: dict[str, str]
    review_ids: dict[str, str]
    skipped_blank: int
    counters: dict[str, int]
    rss_growth_mb: float
    root: pathlib.Path

    def explained(self) -> list[tuple[str, str]]:
        return sorted((self.review_ids[s], s) for s, outcome in self.outcomes.items() if outcome == "")

    def dead(self) -> dict[str, str]:
        return {source: outcome for source, outcome in self.outcomes.items() if outcome}


def write_lines(path: pathlib.Path, lines: list[tuple[bytes, str | None]], outcomes: dict, source) -> None:
    """Write lines and record the outcome of each record among them (source(path, line number))."""
    path.write_bytes(b"".join(line + b"\n" for line, _ in lines))
    for n, (_, outcome) in enumerate(lines, start=1):
        if outcome is not None:
            outcomes[source(path, n)] = outcome


def write_vectors(path: pathlib.Path, engine) -> None:
    """The tiny model's own vectors as a GloVe text file, plus a finite vector for an emoji and a Hebrew
    word, and a NaN row and an inf row."""
    table = engine.explainers["float32"].embedding
    rows = {token: table[i] for token, i in engine.token_ids.items()}
    rows["😀"], rows["שלום"] = table[engine.token_ids["good"]], table[engine.token_ids["bad"]]
    rows["nanword"] = np.full(table.shape[1], np.nan)
    rows["infword"] = np.r_[np.inf, np.zeros(table.shape[1] - 1)]
    path.write_text(
        "".join(f"{t} {' '.join(f'{v:.9g}' for v in vector)}\n" for t, vector in rows.items()),
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def hostile(tiny_model, engine, tmp_path_factory, read_output, line_source) -> Hostile:
    """Write the corpus and run the pipeline once, with the engine failing on batches that hold "boom"."""
    from pipeline import run as run_module
    from transforms.explain import ExplainBatch

    root = tmp_path_factory.mktemp("hostile")
    inputs, parent = root / "inputs", root / "run"
    inputs.mkdir()
    parent.mkdir()
    outcomes: dict[str, str] = {}
    write_lines(inputs / "reviews.jsonl", jsonl_lines(), outcomes, line_source)
    write_lines(inputs / "reviews.csv", CSV_LINES, outcomes, lambda path, n: f"{path}:{n}")
    write_lines(inputs / "reviews.txt", TEXT_LINES, outcomes, line_source)
    pq.write_table(pa.table({"id": ["p1", "p2"], "text": ["good plot", None]}), inputs / "rows.parquet")
    outcomes[f"{inputs}/rows.parquet:1"] = ""
    outcomes[f"{inputs}/rows.parquet:2"] = "read: text field 'text' is null"
    pq.write_table(pa.table({"id": ["q1"], "body": ["good"]}), inputs / "notext.parquet")
    outcomes[f"{inputs}/notext.parquet:1"] = (
        "read: text field 'text' is missing (the file's columns: id, body)"
    )
    (inputs / "broken.parquet").write_bytes(b"PAR1 not a Parquet file PAR1")
    outcomes[f"{inputs}/broken.parquet"] = "read: reading the file failed after 0 records (ArrowInvalid"
    write_vectors(root / "vectors.txt", engine)

    review_ids = {source: source for source in outcomes}  # the default id: the source
    for n, (line, outcome) in enumerate(jsonl_lines(), start=1):
        if outcome == "":
            source = line_source(inputs / "reviews.jsonl", n)
            review_ids[source] = json.loads(line).get("id", source)
    review_ids.update({f"{inputs}/reviews.csv:2": "c1", f"{inputs}/reviews.csv:6": "c3"})
    review_ids[f"{inputs}/rows.parquet:1"] = "p1"

    explain, totals = ExplainBatch.explain, {}

    def out_of_memory_with_boom(self, records):
        if any(r["review_id"] == "boom" for r in records):
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor (simulated)")
        return explain(self, records)

    def keep_counters(result):
        totals.update(counters(result))
        return totals

    counters = run_module.counters
    flags = [
        "--input",
        str(inputs / "*"),
        "--model",
        tiny_model.model,
        "--embeddings",
        str(root / "vectors.txt"),
    ]
    flags += [
        "--buckets",
        "4,16",
        "--batch-size",
        "64",
        "--output",
        str(parent / "out"),
    ]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ExplainBatch, "explain", out_of_memory_with_boom)
        patch.setattr(run_module, "counters", keep_counters)
        run_module.run(flags)
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    skipped = sum(
        outcome is None for lines in (jsonl_lines(), CSV_LINES[1:], TEXT_LINES) for _, outcome in lines
    )
    return Hostile(read_output(parent / "out"), outcomes, review_ids, skipped, totals, growth, root)


def test_the_accounting_identity_holds_in_summary_and_counters(hostile):
    summary, counters = hostile.output.summary, hostile.counters
    assert summary["input_records"] == len(hostile.outcomes) == 37
    assert summary["explained"] == len(hostile.explained()) == 13
    assert summary["dead_lettered"] == len(hostile.dead()) == 24
    assert summary["input_records"] == summary["explained"] + summary["dead_lettered"]
    assert summary["accounting_ok"] is True
    assert summary["skipped_blank_lines"] == hostile.skipped_blank == 4
    assert sum(summary["dead_lettered_by_reason"].values()) == summary["dead_lettered"]
    assert counters["input_records"] == counters["explained"] + counters["dead_lettered"]
    for name in ("input_records", "explained", "dead_lettered"):
        assert counters[name] == summary[name], name
    assert counters["skipped_blank"] == summary["skipped_blank_lines"]


def test_every_valid_record_is_explained_exactly_once(hostile):
    reviews = hostile.output.tables["reviews"]
    assert sorted(zip(reviews["review_id"], reviews["source"])) == hostile.explained()
    assert reviews["source"].is_unique and np.isfinite(np.stack(reviews["logits"])).all()
    tokens = hostile.output.tables["tokens"]
    assert np.isfinite(tokens["relevance"]).all() and hostile.output.summary["tokens"] == len(tokens)
    per_id = reviews.groupby("review_id")["n_tokens"].sum()
    assert tokens.groupby("review_id").size().sort_index().to_dict() == per_id.sort_index().to_dict()


def test_duplicate_ids_are_both_explained_and_told_apart_by_source(hostile):
    reviews = hostile.output.tables["reviews"]
    duplicates = reviews[reviews["review_id"] == "dup"]
    assert len(duplicates) == 2 and duplicates["source"].nunique() == 2


def test_every_dead_letter_names_its_stage_and_reason(hostile):
    dead = hostile.output.tables["dead_letter"]
    assert dead["source"].is_unique and set(dead["stage"]) <= set(STAGES)
    assert sorted(dead["source"]) == sorted(hostile.dead())
    for letter in dead.to_dict("records"):
        expected = hostile.dead()[letter["source"]]
        assert f"{letter['stage']}: {letter['reason']}".startswith(expected), letter
        assert letter["reason"].strip() and letter["stage"] in STAGES


def test_a_failing_batch_loses_only_its_failing_review(hostile):
    """The engine raised for the batch holding "boom", which also held every other review of up to four
    tokens: the batch was split, and only "boom" was dead-lettered."""
    assert hostile.counters["batch_splits"] >= 1
    reviews = set(hostile.output.tables["reviews"]["review_id"])
    assert {"v01", "v02", "dup", "../../escape"} <= reviews and "boom" not in reviews


def test_nan_and_inf_word_vectors_dead_letter_their_reviews_only(hostile):
    dead = hostile.output.tables["dead_letter"].set_index("review_id")
    assert f"explain: {dead.loc['n1', 'reason']}" == NOT_FINITE == f"explain: {dead.loc['n2', 'reason']}"
    assert {"v01", "c1", "p1"} <= set(hostile.output.tables["reviews"]["review_id"])  # same bucket, explained


def test_a_10000_token_review_is_explained_whole_in_linear_memory(hostile):
    reviews = hostile.output.tables["reviews"].set_index("review_id")
    assert reviews.loc["long", "n_tokens"] == LONG and not reviews.loc["long", "truncated"]
    tokens = hostile.output.tables["tokens"]
    long = tokens[tokens["review_id"] == "long"].sort_values("position")
    assert long["position"].tolist() == list(range(LONG)) and np.isfinite(long["relevance"]).all()
    assert long["token"].tolist()[:3] == ["good", "movie", "the"]
    # A single (T, T) float32 matrix at T = 10,000 is 400 MB; the whole run grows the process far less.
    assert hostile.rss_growth_mb < 400


def test_emoji_right_to_left_and_control_characters_survive_as_tokens(hostile, line_source):
    tokens = hostile.output.sorted("tokens")
    by_id = tokens.groupby("review_id")["token"].apply(list).to_dict()
    assert by_id["v02"] == ["😀", "שלום", "the", "plot"]
    assert by_id["v03"] == ["bad\u0007", "film", "\u202e", "ending", "مرحبا"]
    assert by_id[line_source(hostile.root / "inputs" / "reviews.txt", 4)] == ["\x00", "fun"]


def test_nothing_is_written_outside_the_output_directory(hostile):
    out = hostile.output.directory
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "_lstm-lrp-files.json",
        "dead_letter",
        "reviews",
        "summary.json",
        "tokens",
    ]
    assert not [p for p in hostile.root.rglob("*escape*")]
    assert sorted(p.name for p in (hostile.root / "inputs").iterdir()) == [
        "broken.parquet",
        "notext.parquet",
        "reviews.csv",
        "reviews.jsonl",
        "reviews.txt",
        "rows.parquet",
    ]
