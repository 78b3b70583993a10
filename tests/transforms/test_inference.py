"""LRPModelHandler: RunInference yields per-token relevances equal to the engine's on each review alone."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.ml.inference.base import RunInference
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that

from transforms import LRPModelHandler, ModelSpec

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
            booked = (
                inference["relevance"].astype(np.float64).sum() + inference["rest"] + inference["absorbed"]
            )
            assert abs(inference["logits"][target] - booked) <= 1e-4 * max(
                1.0, abs(inference["logits"][target])
            )

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


def test_empty_examples_are_refused(loaded_model, tiny_model):
    handler = LRPModelHandler(ModelSpec(tiny_model.model, vocab=tiny_model.vocab))
    with pytest.raises(ValueError, match="non-empty token lists"):
        list(handler.run_inference([["good"], []], loaded_model))
