"""LRPModelHandler: RunInference yields per-token relevances equal to the engine's on each review alone."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.ml.inference.base import RunInference
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from transforms import LRPModelHandler, ModelSpec
from transforms.explain import NOT_FINITE

REVIEWS = [["good", "film"], ["a", "dull", "and", "bad", "movie"], ["unknownword", "good"], ["bad"]]


def matches(expected: dict):
    """A matcher over plain arrays: tokens -> (relevance, logits, target); the engine itself is not
    picklable once traced."""

    def check(results: list) -> None:
        if sorted(r.example for r in results) != sorted(REVIEWS):
            raise BeamAssertException(f"examples {[r.example for r in results]} != {REVIEWS}")
        for r in results:
            relevance, logits, target = expected[tuple(r.example)]
            inference = r.inference
            np.testing.assert_allclose(inference["relevance"], relevance, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(inference["logits"], logits, rtol=1e-5, atol=1e-6)
            assert inference["target"] == target and inference["tokens"] == r.example

    return check


@pytest.mark.parametrize("target", [None, 1])
def test_run_inference_gives_the_engines_relevances(tiny_model, engine, target):
    handler = LRPModelHandler(ModelSpec(tiny_model.model, vocab=tiny_model.vocab), target=target)
    expected = {}
    for tokens in REVIEWS:
        result = engine.explain(tokens, target)
        expected[tuple(tokens)] = (result.token_relevance[0], result.logits[0], int(result.target[0]))
    with BeamTestPipeline() as p:
        results = p | beam.Create(REVIEWS) | RunInference(handler)
        assert_that(results, matches(expected))


def test_what_the_pipeline_would_dead_letter_goes_to_the_failed_output(tiny_model, engine):
    """The pipeline's own rule (transforms.steps): <pad> (id 0, mask_zero) is left out where it stands and
    positions name the tokens' places; reviews the pipeline dead-letters fail with its reason."""
    examples = [["<pad>", "good", "<pad>", "bad"], ["xyzzy", "qqq"], ["<pad>", "<pad>"], [], ["good", "zzz"]]
    result = engine.explain(["good", "bad"])
    kept = (result.token_relevance[0], result.logits[0])
    handler = LRPModelHandler(ModelSpec(tiny_model.model, vocab=tiny_model.vocab), oov="dead-letter")

    def check(results: list) -> None:
        (only,) = results
        inference = only.inference
        assert only.example == examples[0] and inference["tokens"] == ["good", "bad"]
        assert inference["positions"].tolist() == [1, 3]
        np.testing.assert_allclose(inference["relevance"], kept[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(inference["logits"], kept[1], rtol=1e-5, atol=1e-6)

    with BeamTestPipeline() as p:
        results, failed = p | beam.Create(examples) | RunInference(handler).with_exception_handling()
        assert_that(results, check, label="explained")
        (refused,) = failed.failed_preprocessing
        expected = {
            ("xyzzy", "qqq"): "no token of the review is in the vocabulary (2 unknown)",
            ("<pad>", "<pad>"): "the model masks every token of the review: <pad> <pad>",
            (): "the review has no tokens",
            ("good", "zzz"): "1 unknown tokens: zzz",
        }
        reasons = refused | beam.Map(lambda pair: expected.get(tuple(pair[0]), "?") in str(pair[1]))
        assert_that(reasons, equal_to([True] * len(expected)), label="refused")
        count = refused | beam.combiners.Count.Globally()
        assert_that(count, equal_to([len(expected)]), label="count")


def test_an_explanation_that_is_not_finite_goes_to_the_failed_output(tiny_model, tmp_path):
    """A NaN in a word vector: only that review fails (postprocessing), as ExplainBatches dead-letters it."""
    vectors = {"good": "0.1 0.2 0.3 0.4", "bad": "0.4 0.3 0.2 0.1", "broken": "nan 0 0 0"}
    (tmp_path / "vectors.txt").write_text("".join(f"{t} {v}\n" for t, v in vectors.items()), encoding="utf-8")
    spec = ModelSpec(tiny_model.model, embeddings=str(tmp_path / "vectors.txt"))
    examples = [["good", "bad"], ["broken", "good"], ["bad"]]
    with BeamTestPipeline() as p:
        results, failed = (
            p | beam.Create(examples) | RunInference(LRPModelHandler(spec)).with_exception_handling()
        )
        assert_that(
            results | beam.Map(lambda r: r.example), equal_to([examples[0], examples[2]]), label="kept"
        )
        (broken,) = failed.failed_postprocessing
        reasons = broken | beam.Map(lambda pair: (pair[0].example, NOT_FINITE in str(pair[1])))
        assert_that(reasons, equal_to([(examples[1], True)]), label="failed")
