"""ReadBatches: the fused read-tokenise-embed-batch step gives the reviews and dead letters that the record
functions of ReadCorpus, Tokenize and Embed give, in batches of one length bucket formed per read split."""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from transforms import Fields, ModelSpec, SharedModel, TokenizerSpec
from transforms.bucket import bucket_of
from transforms.embed import embed
from transforms.prepare import Preparation, ReadBatches
from transforms.read import read_file
from transforms.records import is_dead_letter
from transforms.schemas import DEAD_LETTER
from transforms.tokenize import tokenize

BOUNDS = (2, 4, 8)
TEXTS = ["good movie", "", "bad plot is boring", "xyzzy plugh", "   ", "the actor was very fun", "fun"] * 7


def flat(review: dict) -> tuple:
    return (review["review_id"], review["source"], tuple(review["tokens"]), tuple(review["ids"].tolist()))


def expected(path: str, loaded) -> tuple[list[tuple], list[tuple]]:
    """(reviews, dead letters) of the record functions, applied one after the other."""
    spec = TokenizerSpec()
    reviews, dead = [], []
    for row in read_file(path, "auto", Fields()):
        if row is not None and not is_dead_letter(row):
            row = tokenize(row, spec, spec.splitter())
        if row is not None and not is_dead_letter(row):
            row = embed(row, loaded.rule("zero"))[0]
        if row is not None:
            (dead if is_dead_letter(row) else reviews).append(row)
    return [flat(r) for r in reviews], [(d["source"], d["stage"], d["reason"]) for d in dead]


def test_read_batches_equals_the_record_functions(tmp_path, tiny_model, loaded_model):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS) + "{oops\n", encoding="utf-8")
    model = SharedModel(ModelSpec(tiny_model.model, vocab=tiny_model.vocab))
    reviews, dead = expected(str(path), loaded_model)
    assert len(reviews) == 28 and len(dead) == 22

    def one_bucket_each(batches: list[list[dict]]) -> None:
        for batch in batches:
            if not 1 <= len(batch) <= 4 or len({bucket_of(len(r["ids"]), BOUNDS) for r in batch}) != 1:
                raise BeamAssertException(f"a batch of {len(batch)} reviews, or of several buckets")
        if len(batches) >= len(reviews):
            raise BeamAssertException(f"{len(batches)} batches for {len(reviews)} reviews: nothing batched")

    with BeamTestPipeline() as p:
        fused = p | ReadBatches(
            [str(path)], model, Preparation(TokenizerSpec(), "zero", BOUNDS, 4), split_bytes=200
        )
        assert_that(fused.batches, one_bucket_each, label="Shape")
        assert_that(
            fused.batches | beam.FlatMap(lambda b: [flat(r) for r in b]), equal_to(reviews), label="Same"
        )
        letters = fused[DEAD_LETTER] | beam.Map(lambda d: (d["source"], d["stage"], d["reason"]))
        assert_that(letters, equal_to(dead), label="Dead")
