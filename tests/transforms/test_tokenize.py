"""Tokenize: whitespace and regex tokenizers, lowercasing on and off, max_length truncate vs dead-letter."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms import Tokenize, TokenizerSpec
from transforms.schemas import DEAD_LETTER

TEXTS = {
    "r1": "The  Movie,\twas GOOD!",
    "r2": "one two three four five",
    "r3": "   ",
    "r4": "short one",
}


def reviews() -> list[dict]:
    return [
        {"review_id": rid, "source": f"f.txt:{n}", "text": text, "label": None}
        for n, (rid, text) in enumerate(TEXTS.items(), start=1)
    ]


def tokenized(spec: TokenizerSpec, label: str, p):
    """(review_id, tokens, truncated) of the main output and (review_id, stage, reason) of dead letters."""
    out = p | f"Create{label}" >> beam.Create(reviews()) | f"Tokenize{label}" >> Tokenize(spec)
    kept = out.reviews | f"Kept{label}" >> beam.Map(lambda r: (r["review_id"], r["tokens"], r["truncated"]))
    dead = out[DEAD_LETTER] | f"Dead{label}" >> beam.Map(
        lambda d: (d["review_id"], d["source"], d["stage"], d["reason"], d["raw"])
    )
    return kept, dead


def test_tokenizers_lowercase_and_max_length():
    empty = ("r3", "f.txt:3", "tokenize", "text has no tokens (empty or whitespace only)", "   ")
    cases = {
        "Whitespace": (
            TokenizerSpec(),
            [
                ("r1", ["the", "movie,", "was", "good!"], False),
                ("r2", ["one", "two", "three", "four", "five"], False),
                ("r4", ["short", "one"], False),
            ],
            [empty],
        ),
        "CaseKept": (
            TokenizerSpec(lowercase=False),
            [
                ("r1", ["The", "Movie,", "was", "GOOD!"], False),
                ("r2", ["one", "two", "three", "four", "five"], False),
                ("r4", ["short", "one"], False),
            ],
            [empty],
        ),
        "Regex": (
            TokenizerSpec(tokenizer=r"regex:\w+|[^\w\s]"),
            [
                ("r1", ["the", "movie", ",", "was", "good", "!"], False),
                ("r2", ["one", "two", "three", "four", "five"], False),
                ("r4", ["short", "one"], False),
            ],
            [empty],
        ),
        "Truncate": (
            TokenizerSpec(max_length=3),
            [
                ("r1", ["the", "movie,", "was"], True),
                ("r2", ["one", "two", "three"], True),
                ("r4", ["short", "one"], False),
            ],
            [empty],
        ),
        "DeadLetter": (
            TokenizerSpec(max_length=4, over_length="dead-letter"),
            [("r1", ["the", "movie,", "was", "good!"], False), ("r4", ["short", "one"], False)],
            [
                empty,
                (
                    "r2",
                    "f.txt:2",
                    "tokenize",
                    "review has 5 tokens, more than --max-length 4",
                    "one two three four five",
                ),
            ],
        ),
    }
    with BeamTestPipeline() as p:
        for label, (spec, expected_kept, expected_dead) in cases.items():
            kept, dead = tokenized(spec, label, p)
            assert_that(kept, equal_to(expected_kept), label=f"AssertKept{label}")
            assert_that(dead, equal_to(expected_dead), label=f"AssertDead{label}")


def test_tokenize_keeps_the_review_fields():
    with BeamTestPipeline() as p:
        out = p | beam.Create(reviews()[3:]) | Tokenize()
        assert_that(
            out.reviews,
            equal_to(
                [
                    {
                        "review_id": "r4",
                        "source": "f.txt:4",
                        "text": "short one",
                        "label": None,
                        "tokens": ["short", "one"],
                        "truncated": False,
                    }
                ]
            ),
        )


def test_tokenizer_spec_errors():
    with pytest.raises(ValueError, match="Unknown tokenizer"):
        Tokenize(TokenizerSpec(tokenizer="spaces"))
    with pytest.raises(ValueError, match="'\\(unclosed' is not a regular expression"):
        Tokenize(TokenizerSpec(tokenizer="regex:(unclosed"))
    assert TokenizerSpec(tokenizer=r"regex:[a-z]+").splitter()("ab1cd") == ["ab", "cd"]
    assert TokenizerSpec(tokenizer=r"regex:(\w)(\w*)").splitter()("ab c") == ["ab", "c"]  # whole matches
