"""Embed: token -> vector-table ids under the OOV policies zero, skip and dead-letter."""

from __future__ import annotations

import pathlib

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms import Embed, ModelSpec
from transforms.schemas import DEAD_LETTER

TOKENS = {
    "known": ["good", "movie", "Loud"],
    "mixed": ["good", "xyzzy", "movie", "loud"],
    "unknown": ["xyzzy", "plugh"],
}


def tokenized() -> list[dict]:
    return [
        {"review_id": rid, "source": f"s:{rid}", "text": " ".join(tokens), "label": 1, "tokens": tokens}
        for rid, tokens in TOKENS.items()
    ]


def embed(p, model, oov: str):
    """(review_id, tokens, ids dtype, ids) of kept reviews and (review_id, stage, reason) of dead letters."""
    out = p | f"Create{oov}" >> beam.Create(tokenized()) | f"Embed{oov}" >> Embed(model, oov)
    kept = out.reviews | f"Kept{oov}" >> beam.Map(
        lambda r: (r["review_id"], r["tokens"], r["ids"].dtype.name, r["ids"].tolist())
    )
    dead = out[DEAD_LETTER] | f"Dead{oov}" >> beam.Map(lambda d: (d["review_id"], d["stage"], d["reason"]))
    return kept, dead


def test_oov_policies(tiny_model, loaded_model):
    index = loaded_model.token_ids
    assert loaded_model.oov_id == index["<unk>"] == 1
    known_ids = [index[t] for t in TOKENS["known"]]
    no_known = ("unknown", "embed", "no token of the review is in the vocabulary (2 unknown)")
    model = ModelSpec(tiny_model.model, vocab=tiny_model.vocab)
    expected = {
        "zero": (
            [
                ("known", TOKENS["known"], "int32", known_ids),
                ("mixed", TOKENS["mixed"], "int32", [index["good"], 1, index["movie"], 1]),
            ],
            [no_known],
        ),
        "skip": (
            [
                ("known", TOKENS["known"], "int32", known_ids),
                ("mixed", ["good", "movie"], "int32", [index["good"], index["movie"]]),
            ],
            [no_known],
        ),
        "dead-letter": (
            [("known", TOKENS["known"], "int32", known_ids)],
            [no_known, ("mixed", "embed", "2 unknown tokens: xyzzy loud")],
        ),
    }
    p = BeamTestPipeline()
    for oov, (expected_kept, expected_dead) in expected.items():
        kept, dead = embed(p, model, oov)
        assert_that(kept, equal_to(expected_kept), label=f"Kept {oov}")
        assert_that(dead, equal_to(expected_dead), label=f"Dead {oov}")
    result = p.run()
    result.wait_until_finish()
    query = result.metrics().query(beam.metrics.MetricsFilter().with_name("oov_tokens"))
    assert sum(c.committed for c in query["counters"]) == 3 * (2 + 2)


def test_without_an_oov_token_unknown_tokens_get_the_zero_row(tiny_model, tmp_path):
    """A vocabulary with no OOV entry: unknown tokens map to the all-zero extra row of the table."""
    vocab = pathlib.Path(tiny_model.vocab).read_text(encoding="utf-8").replace("<unk>\n", "unused\n")
    (tmp_path / "vocab.txt").write_text(vocab, encoding="utf-8")
    spec = ModelSpec(tiny_model.model, vocab=str(tmp_path / "vocab.txt"))
    loaded = spec.load()
    assert loaded.oov_id is None
    zero = loaded.zero_id
    assert zero == len(loaded.vectors) and not loaded.table[zero].any()
    with BeamTestPipeline() as p:
        kept, _ = embed(p, spec, "zero")
        assert_that(
            kept | beam.Map(lambda r: (r[0], r[3])),
            equal_to(
                [
                    ("known", [loaded.token_ids[t] for t in TOKENS["known"]]),
                    ("mixed", [loaded.token_ids["good"], zero, loaded.token_ids["movie"], zero]),
                ]
            ),
        )


def test_loaded_model_table(loaded_model):
    """The table is the model's embedding matrix plus a zero row for padding."""
    explainer = loaded_model.explainer
    np.testing.assert_array_equal(loaded_model.table[:-1], explainer.embedding)
    assert loaded_model.table.dtype == np.float32 and not loaded_model.table[-1].any()


def test_unknown_policy_is_refused(tiny_model):
    with pytest.raises(ValueError, match="Unknown OOV policy"):
        Embed(ModelSpec(tiny_model.model), oov="unk")


def test_the_id_0_token_is_left_out_where_it_stands_and_positions_name_each_tokens_place(tiny_model):
    """The tiny model's Embedding has mask_zero: "<pad>" (id 0) in the text is a step Keras skips."""
    review = {"review_id": "p", "source": "s:p", "text": "", "label": None}
    reviews = [
        review | {"tokens": ["<pad>", "good", "xyzzy", "<pad>", "movie"]},
        review | {"review_id": "q", "tokens": ["<pad>", "<pad>"]},
    ]
    with BeamTestPipeline() as p:
        out = p | beam.Create(reviews) | Embed(ModelSpec(tiny_model.model, vocab=tiny_model.vocab), "skip")
        kept = out.reviews | "Kept" >> beam.Map(lambda r: (r["tokens"], r["positions"].tolist()))
        assert_that(kept, equal_to([(["good", "movie"], [1, 4])]), label="kept")
        dead = out[DEAD_LETTER] | "Dead" >> beam.Map(lambda d: (d["review_id"], d["reason"]))
        reason = "the model masks every token of the review: <pad> <pad>"
        assert_that(dead, equal_to([("q", reason)]), label="dead")
