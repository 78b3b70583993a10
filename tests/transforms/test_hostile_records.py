"""Hostile records, one small case per kind, at the stage that must catch them: every record ends up a review
or a dead letter naming its stage and a reason, and no record takes its batch or the run down."""

from __future__ import annotations

import dataclasses
import gzip
import json

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from lrp import LSTMExplainer
from tests.conftest import bundle_outputs
from transforms import (
    ExplainBatches,
    ExplainedBatch,
    ExplainSettings,
    Fields,
    LoadedModel,
    ModelSpec,
    TokenizerSpec,
)
from transforms.embed import EmbedReview
from transforms.explain import REASON_LIMIT, ExplainBatch, failure_reason
from transforms.read import read_file as read_rows
from transforms.records import is_dead_letter
from transforms.schemas import DEAD_LETTER, DEAD_LETTER_SCHEMA, dead_letter
from transforms.tokenize import TokenizeReview

NOT_FINITE = "logits or relevances are not finite"


class Handle:
    """Stands in for a SharedModel: get() returns a LoadedModel built in the test."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded

    def get(self) -> LoadedModel:
        return self.loaded


def run_dofn(dofn: beam.DoFn, element) -> tuple[list, list[dict]]:
    """(main outputs, dead letters) of one DoFn on one element in one bundle, without a pipeline."""
    outputs = bundle_outputs(dofn, element)
    dead = [o.value for o in outputs if isinstance(o, beam.pvalue.TaggedOutput) and o.tag == DEAD_LETTER]
    return [o for o in outputs if not isinstance(o, beam.pvalue.TaggedOutput)], dead


def embedded(engine, review_id: str, text: str, label: int | None = None) -> dict:
    tokens = text.split()
    return {
        "review_id": review_id,
        "source": f"c.jsonl:{review_id}",
        "text": text,
        "label": label,
        "tokens": tokens,
        "truncated": False,
        "ids": engine.ids(tokens),
        "positions": np.arange(len(tokens), dtype=np.int32),
    }


def explained_ids(batches: list[ExplainedBatch]) -> list[str]:
    return sorted(rid for b in batches for rid in b.reviews.column("review_id").to_pylist())


def reasons(letters: list[dict]) -> dict[str, tuple[str, str]]:
    return {d["review_id"]: (d["stage"], d["reason"]) for d in letters}


# ---------------------------------------------------------------------------------------------- read


def read_file(path) -> tuple[list[dict], list[dict], int, int]:
    """(reviews, dead letters, input_records, skipped_blank) of reading one file whole, without a pipeline."""
    rows = list(read_rows(str(path), "auto", Fields()))
    read = [r for r in rows if r is not None]
    reviews = [r for r in read if not is_dead_letter(r)]
    return reviews, [r for r in read if is_dead_letter(r)], len(read), len(rows) - len(read)


def jsonl_lines() -> list[tuple[bytes, str | None]]:
    """(line, what reading it gives): a review (""), a skipped blank line (None) or a dead letter's reason."""
    return [
        (json.dumps({"id": "ok", "text": "good movie", "label": 1}).encode(), ""),
        (b"", None),
        (b"{not json", "line is not valid JSON (Expecting property name enclosed in double quotes)"),
        (b"[" * 5000, "line is not valid JSON (RecursionError: maximum recursion depth exceeded"),
        (
            b'{"id": 1' + b"9" * 5000 + b', "text": "x"}',
            "line is not valid JSON (ValueError: Exceeds the limit",
        ),
        (b'["a", "list"]', "line is not a JSON object"),
        (b'"a string"', "line is not a JSON object"),
        (b"42", "line is not a JSON object"),
        (b'{"id": "m", "label": 1}', "text field 'text' is missing"),
        (b'{"id": "n", "text": null}', "text field 'text' is null"),
        (b'{"id": "num", "text": 3.5}', "text field 'text' is a float, not a string"),
        (b'{"id": "lst", "text": ["good"]}', "text field 'text' is a list, not a string"),
        (b'{"id": "bytes", "text": "caf\xe9"}', "line is not valid UTF-8"),
        (b'{"id": "sur", "text": "bad \\ud800"}', "text is not valid UTF-8"),
        (b'{"id": "\\udcff", "text": "good"}', "id field 'id' is not valid UTF-8"),
        (
            b'{"id": "big", "text": "good", "label": 99999999999}',
            "field 'label': label 99999999999 is too large",
        ),
        (json.dumps({"id": "emoji", "text": "good 😀 שלום \u0007 مرحبا"}, ensure_ascii=False).encode(), ""),
        (b"   ", None),
        (json.dumps({"id": "empty", "text": "", "label": 0}).encode(), ""),
    ]


def test_jsonl_records_that_cannot_be_read_are_dead_lettered_and_the_rest_read(tmp_path, line_source):
    """Not JSON, too deep, too long an integer, not an object, missing/null/numeric/list text, undecodable
    bytes, lone surrogates in text or id, an impossible label; emoji, right-to-left text and control
    characters are read; blank lines are counted as skipped."""
    lines = jsonl_lines()
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line, _ in lines))
    reviews, dead, records, skipped = read_file(path)
    expected = {line_source(path, n): what for n, (_, what) in enumerate(lines, start=1) if what is not None}
    assert {r["source"] for r in reviews} == {source for source, what in expected.items() if what == ""}
    assert {r["review_id"]: r["text"] for r in reviews}["emoji"] == "good 😀 שלום \u0007 مرحبا"
    assert len(dead) == len({d["source"] for d in dead})
    for letter in dead:
        assert letter["stage"] == "read" and letter["reason"].startswith(expected[letter["source"]]), letter
    assert len(dead) + len(reviews) == records == len(expected) and skipped == 2
    pa.Table.from_pylist(dead, schema=DEAD_LETTER_SCHEMA)  # undecodable input never breaks the write


def test_csv_rows_with_the_wrong_number_of_fields_or_bad_bytes_are_dead_lettered(tmp_path):
    path = tmp_path / "r.csv"
    long_text = "good " * 30_000  # 150,000 characters: beyond the csv module's default field limit
    path.write_bytes(
        b"id,text,label\nok,great film,2\n\nbad,too,many,fields\n\xff\xfe,good,1\n"
        b'q,"a quoted, multi\nline review",0\nlong,' + long_text.encode() + b",1\n"
    )
    reviews, dead, records, skipped = read_file(path)
    assert [(r["review_id"], r["source"], r["label"]) for r in reviews] == [
        ("ok", f"{path}:2", 2),
        ("q", f"{path}:7", 0),
        ("long", f"{path}:8", 1),
    ]
    assert reviews[1]["text"] == "a quoted, multi\nline review" and reviews[2]["text"] == long_text
    assert [(d["source"], d["stage"], d["reason"]) for d in dead] == [
        (f"{path}:4", "read", "CSV row has 4 fields, the header has 3"),
        (f"{path}:5", "read", "id field 'id' is not valid UTF-8"),
    ]
    assert dead[1]["raw"] == "\\xff\\xfe,good,1" and (records, skipped) == (5, 1)


def test_text_lines_that_are_not_utf8_are_dead_lettered_and_blank_ones_counted(tmp_path, line_source):
    path = tmp_path / "r.txt"
    path.write_bytes(b"good plot\n\ncaf\xe9 bad\n\x0b\x0c\n\x07 fun\n")
    reviews, dead, records, skipped = read_file(path)
    assert [(r["review_id"], r["text"]) for r in reviews] == [
        (line_source(path, 1), "good plot"),
        (line_source(path, 5), "\x07 fun"),
    ]
    assert [(d["source"], d["reason"], d["raw"]) for d in dead] == [
        (line_source(path, 3), "text is not valid UTF-8", "caf\\xe9 bad")
    ]
    assert (records, skipped) == (3, 2)


def test_a_parquet_file_without_the_text_column_dead_letters_each_row_naming_the_columns(tmp_path):
    path = tmp_path / "notext.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "body": ["good", "bad"]}), path)
    reviews, dead, records, _ = read_file(path)
    assert reviews == [] and records == 2
    assert [(d["review_id"], d["stage"], d["reason"]) for d in dead] == [
        (rid, "read", "text field 'text' is missing (the file's columns: id, body)") for rid in ("a", "b")
    ]


def test_a_file_that_breaks_midway_keeps_its_records_and_dead_letters_the_rest(tmp_path):
    """A gzip file cut in half and a file that is not Parquet at all: the run goes on, and the rest of each
    file is one dead letter (one input record) whose source is the file."""
    cut = tmp_path / "cut.jsonl.gz"
    rows = "".join(json.dumps({"id": f"g{n}", "text": f"review {n} " * 8}) + "\n" for n in range(4000))
    whole = gzip.compress(rows.encode(), mtime=0)
    cut.write_bytes(whole[: len(whole) // 2])
    reviews, dead, records, _ = read_file(cut)
    assert 0 < len(reviews) < 4000 and [r["review_id"] for r in reviews] == [
        f"g{n}" for n in range(len(reviews))
    ]
    assert [(d["source"], d["stage"]) for d in dead] == [(str(cut), "read")] and records == len(reviews) + 1
    assert dead[0]["reason"].startswith(f"reading the file failed after {len(reviews)} records (EOFError: ")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not a Parquet file PAR1")
    reviews, dead, records, _ = read_file(broken)
    assert reviews == [] and records == 1
    assert dead[0]["reason"].startswith("reading the file failed after 0 records (ArrowInvalid: ")
    assert dead[0]["reason"].endswith("; repair or re-export it and rerun")


def test_dead_letters_are_always_writable():
    letter = dead_letter(
        "read", "bad \udcff reason", "f\ud800.txt:1", "caf\udce9 \ud800 ok" * 200, "id\udcff"
    )
    table = pa.Table.from_pylist([letter], schema=DEAD_LETTER_SCHEMA)
    row = table.to_pylist()[0]
    assert row["raw"].startswith("caf\\xe9 \\ud800 ok") and len(letter["raw"]) > 1000
    assert (row["review_id"], row["source"], row["reason"]) == (
        "id\\xff",
        "f\\ud800.txt:1",
        "bad \\xff reason",
    )
    assert dead_letter("read", "r", "s", "ok é 😀 שלום")["raw"] == "ok é 😀 שלום"


# ------------------------------------------------------------------------------------------ tokenize


def review(text: str, review_id: str = "r") -> dict:
    return {"review_id": review_id, "source": f"c.txt:{review_id}", "text": text, "label": None}


@pytest.mark.parametrize("text", ["", "   ", "\t\n \u3000\u2028\x0b"])
def test_empty_or_whitespace_only_text_is_dead_lettered_at_tokenize(text):
    reviews, dead = run_dofn(TokenizeReview(TokenizerSpec()), review(text))
    assert reviews == []
    assert [(d["stage"], d["reason"]) for d in dead] == [
        ("tokenize", "text has no tokens (empty or whitespace only)")
    ]


def test_emoji_right_to_left_and_control_characters_are_kept_as_tokens():
    text = "Good 😀 שלום مرحبا \u202eevil\u202c \x07 nul\x00l"
    (tokenized,), dead = run_dofn(TokenizeReview(TokenizerSpec()), review(text))
    assert dead == []
    assert tokenized["tokens"] == ["good", "😀", "שלום", "مرحبا", "\u202eevil\u202c", "\x07", "nul\x00l"]


def test_a_10000_token_review_is_kept_whole_truncated_or_dead_lettered_as_asked():
    text = " ".join(["good", "movie"] * 5_000)
    (whole,), _ = run_dofn(TokenizeReview(TokenizerSpec()), review(text))
    assert len(whole["tokens"]) == 10_000 and whole["truncated"] is False
    (cut,), _ = run_dofn(TokenizeReview(TokenizerSpec(max_length=256)), review(text))
    assert len(cut["tokens"]) == 256 and cut["truncated"] is True
    reviews, dead = run_dofn(
        TokenizeReview(TokenizerSpec(max_length=256, over_length="dead-letter")), review(text)
    )
    assert reviews == [] and [(d["stage"], d["reason"]) for d in dead] == [
        ("tokenize", "review has 10000 tokens, more than --max-length 256")
    ]


# --------------------------------------------------------------------------------------------- embed


@pytest.mark.parametrize("oov", ["zero", "skip", "dead-letter"])
def test_a_review_without_known_tokens_is_dead_lettered_under_every_oov_policy(oov, loaded_model):
    unknown = {**review("xyzzy 😀 qqq"), "tokens": ["xyzzy", "😀", "qqq"], "truncated": False}
    known = {**review("good 😀", "k"), "tokens": ["good", "😀"], "truncated": False}
    reviews, dead = run_dofn(EmbedReview(Handle(loaded_model), oov), unknown)
    assert reviews == []
    assert reasons(dead) == {"r": ("embed", "no token of the review is in the vocabulary (3 unknown)")}
    reviews, dead = run_dofn(EmbedReview(Handle(loaded_model), oov), known)
    if oov == "dead-letter":
        assert reasons(dead) == {"k": ("embed", "1 unknown tokens: 😀")}
    else:
        assert [r["tokens"] for r in reviews] == [["good", "😀"] if oov == "zero" else ["good"]]


# ------------------------------------------------------------------------------------------- explain


def test_a_label_outside_the_models_classes_is_dead_lettered_with_target_label(loaded_model, engine):
    batch = [embedded(engine, rid, "good movie", label) for rid, label in [("ok", 2), ("hi", 3), ("neg", -1)]]
    batch.append(embedded(engine, "none", "bad film"))
    batches, dead = run_dofn(ExplainBatch(Handle(loaded_model), ExplainSettings(target="label")), batch)
    assert explained_ids(batches) == ["ok"]
    assert reasons(dead) == {
        "hi": ("explain", "label 3 is outside the model's classes 0..2"),
        "neg": ("explain", "label -1 is outside the model's classes 0..2"),
        "none": ("explain", "review has no label to explain (--target label)"),
    }


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_nan_or_inf_in_a_word_vector_dead_letters_that_review_not_its_batch(loaded_model, engine):
    vectors = loaded_model.vectors.copy()
    vectors[loaded_model.token_ids["awful"]] = np.nan
    vectors[loaded_model.token_ids["boring"], 0] = np.inf
    poisoned = LoadedModel(loaded_model.explainer, loaded_model.token_ids, vectors, loaded_model.oov_id)
    texts = {"a": "good movie", "nan": "an awful plot", "b": "the actor was fun", "inf": "boring", "c": "bad"}
    batch = [embedded(engine, rid, text) for rid, text in texts.items()]
    batches, dead = run_dofn(ExplainBatch(Handle(poisoned), ExplainSettings(methods=("lrp", "gi"))), batch)
    assert len(batches) == 1 and explained_ids(batches) == ["a", "b", "c"]  # one engine call, not split
    assert reasons(dead) == {
        "nan": ("explain", NOT_FINITE + " (NaN or inf in a vector or the model)"),
        "inf": ("explain", NOT_FINITE + " (NaN or inf in a vector or the model)"),
    }
    tokens = batches[0].tokens
    assert np.isfinite(tokens.column("relevance").to_numpy()).all() and set(
        tokens.column("method").to_pylist()
    ) == {
        "lrp",
        "gi",
    }


def test_nan_in_a_model_output_dead_letters_that_review_not_its_batch(loaded_model, engine, monkeypatch):
    """The engine gives NaN logits for the one review of 5 tokens, as an overflowing model would."""
    explain_targets = LSTMExplainer.explain_targets

    def nan_for_five_tokens(self, x, lengths=None, *args, **kwargs):
        five = (np.asarray(lengths) == 5)[:, None]
        results = explain_targets(self, x, lengths, *args, **kwargs)
        return [dataclasses.replace(r, logits=np.where(five, np.nan, r.logits)) for r in results]

    monkeypatch.setattr(LSTMExplainer, "explain_targets", nan_for_five_tokens)
    texts = {"a": "good movie", "five": "not a great film again", "b": "bad plot is boring"}
    batch = [embedded(engine, rid, text) for rid, text in texts.items()]
    batches, dead = run_dofn(ExplainBatch(Handle(loaded_model), ExplainSettings()), batch)
    assert len(batches) == 1 and explained_ids(batches) == ["a", "b"]
    assert reasons(dead) == {"five": ("explain", NOT_FINITE + " (NaN or inf in a vector or the model)")}


def test_a_failing_batch_is_split_and_only_the_failing_review_dead_lettered(tiny_model, engine, monkeypatch):
    """The engine runs out of memory on any batch holding the marked review (the only one of 7 tokens)."""
    explain_targets = LSTMExplainer.explain_targets

    def out_of_memory_with_seven_tokens(self, x, lengths=None, *args, **kwargs):
        if 7 in np.asarray(lengths):
            raise tf.errors.ResourceExhaustedError(
                None, None, "OOM when allocating tensor [7, 9]\n  graph..."
            )
        return explain_targets(self, x, lengths, *args, **kwargs)

    monkeypatch.setattr(LSTMExplainer, "explain_targets", out_of_memory_with_seven_tokens)
    texts = ["good", "bad movie", "the plot was good but the ending", "a fun film", "not very good", "boring"]
    batch = [embedded(engine, f"r{n}", text) for n, text in enumerate(texts)]
    p = BeamTestPipeline()
    out = p | beam.Create([batch]) | ExplainBatches(ModelSpec(tiny_model.model, vocab=tiny_model.vocab))
    ids = out.explained | beam.FlatMap(lambda b: b.reviews.column("review_id").to_pylist())
    assert_that(ids, equal_to(["r0", "r1", "r3", "r4", "r5"]), label="Explained")
    letters = out[DEAD_LETTER] | beam.Map(lambda d: (d["review_id"], d["stage"], d["reason"]))
    reason = "explaining failed: ResourceExhaustedError: OOM when allocating tensor [7, 9]"
    assert_that(letters, equal_to([("r2", "explain", reason)]), label="Dead")
    result = p.run()
    result.wait_until_finish()
    splits = result.metrics().query(beam.metrics.MetricsFilter().with_name("batch_splits"))["counters"]
    assert sum(c.committed for c in splits) == 3  # sorted by length: 6 -> 3 + 3 -> 1 + 2 -> 1 + 1


def test_failure_reasons_are_one_short_line():
    error = RuntimeError("x" * 1000 + "\n  graph context\n  more context")
    assert failure_reason(error) == "explaining failed: RuntimeError: " + "x" * REASON_LIMIT
    assert failure_reason(MemoryError()) == "explaining failed: MemoryError: "
