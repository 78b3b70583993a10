"""End to end through pipeline.run.run: the Parquet rows equal the engine called directly on the same reviews;
ids, schemas, dead letters and summary.json are complete and consistent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

from pipeline.provenance import FIELDS
from pipeline.run import run
from transforms.schemas import DEAD_LETTER_SCHEMA, REVIEWS_SCHEMA, tokens_schema

SUMMARY_KEYS = {
    "input_records",
    "skipped_blank_lines",
    "explained",
    "dead_lettered",
    "dead_lettered_by_reason",
    "counted_from",
    "accounting_ok",
    "tokens",
    "oov_tokens",
    "work_units",
    "padding_waste",
    "conservation_violations",
    "absorbed_share",
    "settings",
    "runner",
    "wall_seconds",
    "tokens_per_second",
    *FIELDS,  # the provenance record (settings among them)
}


def assert_matches_engine(
    output,
    engine,
    texts: dict,
    *,
    lowercase=True,
    targets=None,
    eps=1e-3,
    bias_factor=0.0,
    dtype="float32",
):
    """Every review and token row equals engine.explain on that review alone; exactly these rows exist
    (LRP token rows: the default --method).

    texts: review id -> (text, label); targets(label) -> the engine's targets (default: the predicted class).
    Tolerances: 1e-5 in float32; in float64 1e-9, the logits (float32 in reviews/) compared with the rounded
    engine values. Every review row adds up exactly as written, and its relevance_sum is the sum of its
    LRP token rows.
    """
    tolerance = 1e-5 if dtype == "float32" else 1e-9
    reviews = output.sorted("reviews").set_index(["review_id", "target_class"])
    tokens = output.sorted("tokens").set_index(["review_id", "target_class", "method", "position"])
    expected_reviews, expected_tokens = [], []
    for rid, (text, label) in texts.items():
        words = (text.lower() if lowercase else text).split()
        for target in (targets or (lambda _: [None]))(label):
            result = engine.explain(words, target, eps, bias_factor, dtype)
            cls = int(result.target[0])
            expected_reviews.append((rid, cls))
            row = reviews.loc[(rid, cls)]
            assert row["n_tokens"] == len(words)
            assert pd.isna(row["label"]) if label is None else row["label"] == label
            assert row["predicted_class"] == result.logits[0].argmax()
            np.testing.assert_allclose(
                row["logits"], result.logits[0].astype(np.float32), rtol=0, atol=tolerance
            )
            for column, value in (
                ("target_score", result.target_score[0]),
                ("relevance_sum", result.relevance_sum[0]),
                ("rest", result.rest[0]),
                ("absorbed", result.absorbed[0]),
                ("conservation_residual", result.residual[0]),
            ):
                assert abs(row[column] - value) <= tolerance, (rid, cls, column, row[column], value)
            booked = row["relevance_sum"] + row["rest"] + row["absorbed"]
            assert row["conservation_residual"] == row["target_score"] - booked
            assert row["relevance_sum"] == tokens.loc[(rid, cls, "lrp")]["relevance"].astype(np.float64).sum()
            for position, (word, relevance) in enumerate(zip(words, result.token_relevance[0])):
                expected_tokens.append((rid, cls, "lrp", position))
                token = tokens.loc[(rid, cls, "lrp", position)]
                assert token["token"] == word
                assert abs(token["relevance"] - relevance) <= tolerance, (rid, cls, position)
    assert sorted(reviews.index) == sorted(expected_reviews)
    assert sorted(tokens.index) == sorted(expected_tokens)


def assert_schemas(output, dtype: str = "float32") -> None:
    """Every file has its dataset's declared schema; the schemas join: source is a string in all three,
    and only a review's label and a dead letter's review id can be null."""
    for name, schema in (
        ("tokens", tokens_schema(dtype)),
        ("reviews", REVIEWS_SCHEMA),
        ("dead_letter", DEAD_LETTER_SCHEMA),
    ):
        assert output.schemas[name] and all(s.equals(schema) for s in output.schemas[name]), name
    schemas = {name: schemas[0] for name, schemas in output.schemas.items()}
    assert {schema.field("source").type for schema in schemas.values()} == {pa.string()}
    nullable = {(name, f.name) for name, schema in schemas.items() for f in schema if f.nullable}
    assert nullable == {("reviews", "label"), ("dead_letter", "review_id")}


def assert_accounting(summary: dict) -> None:
    assert summary["input_records"] == summary["explained"] + summary["dead_lettered"]
    assert summary["accounting_ok"] is True
    assert sum(summary["dead_lettered_by_reason"].values()) == summary["dead_lettered"]


def explained_texts(corpus) -> dict:
    return {rid: (corpus.text(rid), corpus.label(rid)) for rid in corpus.explained}


def test_rows_equal_the_engine(direct_run, corpus, engine):
    assert_matches_engine(direct_run, engine, explained_texts(corpus))


def test_review_ids_are_complete_and_unique(direct_run, corpus):
    reviews = direct_run.tables["reviews"]
    assert sorted(reviews["review_id"]) == sorted(corpus.explained)
    assert not reviews["review_id"].duplicated().any()
    assert set(direct_run.tables["tokens"]["review_id"]) == set(corpus.explained)
    dead = direct_run.sorted("dead_letter")
    assert sorted(dead["review_id"].dropna()) == sorted(rid for rid, _ in corpus.dead if rid)
    assert set(reviews["review_id"]).isdisjoint(dead["review_id"].dropna())
    assert reviews["source"].str.startswith(corpus.path + "@").all()


def test_schemas(direct_run):
    assert_schemas(direct_run)


def test_dead_letters(direct_run, corpus):
    dead = direct_run.sorted("dead_letter")
    got = {
        (rid if isinstance(rid, str) else None): f"{stage}: {reason}"
        for rid, stage, reason in zip(dead["review_id"], dead["stage"], dead["reason"])
    }
    assert set(got) == {rid for rid, _ in corpus.dead}
    for rid, reason in corpus.dead:
        assert got[rid].startswith(reason), (rid, got[rid])
    assert dead.loc[dead["stage"] == "read", "raw"].tolist() == ["{not json\n"]


def test_summary(direct_run, corpus, tiny_model):
    summary = direct_run.summary
    assert set(summary) == SUMMARY_KEYS
    assert summary["counted_from"] == "metrics"
    assert_accounting(summary)
    assert summary["work_units"]["read_splits"] > 1 and summary["work_units"]["explain_batches"] > 1
    assert 0 <= summary["padding_waste"] < 1
    assert summary["input_records"] == corpus.input_records
    assert summary["skipped_blank_lines"] == corpus.skipped_blank
    assert summary["explained"] == len(corpus.explained)
    assert summary["dead_lettered_by_reason"] == {reason: 1 for _, reason in corpus.dead}
    assert summary["tokens"] == len(direct_run.tables["tokens"])
    assert summary["oov_tokens"] == 4  # xyzzy, zzz, qqq and loud (lowercased; the vocabulary has Loud)
    assert summary["conservation_violations"] == 0  # bias_factor 0 absorbs relevance, and books it
    share = summary["absorbed_share"]
    reviews = direct_run.tables["reviews"]
    shares = (reviews["absorbed"] / reviews["target_score"]).abs()
    assert share == pytest.approx(
        {"mean": shares.mean(), "p50": shares.median(), "p95": shares.quantile(0.95), "max": shares.max()}
    )
    assert 0 < share["p50"] <= share["p95"] <= share["max"]
    assert summary["runner"] == "DirectRunner"
    assert summary["wall_seconds"] > 0
    settings = summary["settings"]
    assert settings["input"] == [corpus.path] and settings["model"] == tiny_model.model
    assert (settings["buckets"], settings["batch_size"], settings["split_bytes"]) == ([2, 4, 8], 3, 64)
    assert settings["output"] == str(direct_run.directory)
    published = sorted(p.name for p in direct_run.directory.iterdir())
    assert published == [
        "_lstm-lrp-files.json",
        "dead_letter",
        "reviews",
        "summary.json",
        "tokens",
    ]  # no staging directory left


def test_float64_all_targets_with_bias_factor_one(corpus, tiny_model, engine, tmp_path, read_output):
    """float64 matches the engine to 1e-9 for every class, token relevances stored in float64; with
    bias_factor 1 nothing is absorbed."""
    flags = ["--dtype", "float64", "--target", "all", "--bias-factor", "1", "--eps", "0.01"]
    summary = run([*corpus.flags(), *tiny_model.flags(), *flags, "--output", str(tmp_path / "out")])
    output = read_output(tmp_path / "out")
    assert_matches_engine(
        output,
        engine,
        explained_texts(corpus),
        targets=lambda _: [0, 1, 2],
        eps=0.01,
        bias_factor=1.0,
        dtype="float64",
    )
    assert_schemas(output, "float64")
    assert (output.tables["reviews"]["absorbed"] == 0).all()
    assert output.tables["reviews"]["conservation_residual"].abs().max() < 1e-9
    assert summary == output.summary
    assert summary["conservation_violations"] == 0 and summary["explained"] == len(corpus.explained)
    assert summary["tokens"] * 3 == len(output.tables["tokens"])
    assert_accounting(summary)


def test_conservation_violators_are_dead_lettered(corpus, tiny_model, tmp_path, read_output):
    """A tolerance of 0: float32 rounding leaves residuals, and every review with one is dead-lettered
    (stage conservation) instead of written, with its residual."""
    flags = ["--conservation-tolerance", "0"]
    summary = run([*corpus.flags(), *tiny_model.flags(), *flags, "--output", str(tmp_path / "out")])
    output = read_output(tmp_path / "out")
    dead = output.tables["dead_letter"]
    violators = set(dead.loc[dead["stage"] == "conservation", "review_id"])
    assert violators and summary["conservation_violations"] == len(violators)
    assert summary["dead_lettered_by_reason"]["conservation: relevance not conserved"] == len(violators)
    assert (
        dead.loc[dead["stage"] == "conservation", "reason"].str.contains("residual -?[0-9.e-]+ exceeds").all()
    )
    reviews = output.tables["reviews"]
    assert set(reviews["review_id"]) | violators == set(corpus.explained)
    assert (reviews["conservation_residual"] == 0).all()
    assert set(output.tables["tokens"]["review_id"]) == set(reviews["review_id"])
    assert_accounting(summary)


def test_text_input_with_every_tokenising_flag_and_a_test_pipeline(
    tmp_path, tiny_model, engine, read_output, line_source
):
    """Plain text, case kept, unknown tokens skipped, long reviews dead-lettered, class 1 explained; run on a
    TestPipeline given to run()."""
    lines = ["good movie", "Loud story xyzzy", "The actor was very fun", "GOOD Movie", "", "fun fun"]
    path = tmp_path / "reviews.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    flags = [
        "--input",
        str(path),
        "--format",
        "text",
        "--no-lowercase",
        "--oov",
        "skip",
        "--max-length",
        "3",
        "--over-length",
        "dead-letter",
        "--target",
        "1",
        "--label-field",
        "",
        "--output",
        str(tmp_path / "o"),
    ]
    summary = run([*tiny_model.flags(), *flags], test_pipeline=BeamTestPipeline())
    output = read_output(tmp_path / "o")
    texts = {
        line_source(path, 1): ("good movie", None),
        line_source(path, 2): ("Loud story", None),
        line_source(path, 6): ("fun fun", None),
    }
    assert_matches_engine(output, engine, texts, lowercase=False, targets=lambda _: [1])
    assert output.tables["reviews"]["label"].isna().all()
    dead = output.sorted("dead_letter")
    assert list(zip(dead["review_id"], dead["stage"])) == [
        (line_source(path, 3), "tokenize"),
        (line_source(path, 4), "embed"),
    ]
    assert summary["oov_tokens"] == 3 and summary["skipped_blank_lines"] == 1
    assert summary["input_records"] == 5 and summary["explained"] == 3
    assert_accounting(summary)


def test_positions_point_into_the_tokenised_text_with_oov_skip(corpus, tiny_model, tmp_path, read_output):
    """--oov skip drops unknown tokens but not their places: token rows join back to the text."""
    run([*corpus.flags(), *tiny_model.flags(), "--oov", "skip", "--output", str(tmp_path / "out")])
    tokens = read_output(tmp_path / "out").tables["tokens"]
    for rid, position, token in zip(tokens["review_id"], tokens["position"], tokens["token"]):
        assert corpus.text(rid).lower().split()[position] == token, (rid, position, token)
    p08 = tokens[tokens["review_id"] == "p08"]  # "Loud story": "loud" is unknown (the vocabulary has Loud)
    assert p08[["position", "token"]].values.tolist() == [[1, "story"]]
