"""Tokenize: review text -> tokens (whitespace or a regular expression, optionally lowercased)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import apache_beam as beam

from transforms import progress
from transforms.records import DeadLetter, Review, is_dead_letter, tagged
from transforms.schemas import DEAD_LETTER, refused


@dataclass(frozen=True)
class TokenizerSpec:
    """How to split text: "whitespace" or "regex:PATTERN" (tokens = the matches of PATTERN).

    max_length: longest review kept whole; longer ones are truncated (over_length "truncate") or
    dead-lettered (over_length "dead-letter"); None = no limit.
    """

    tokenizer: str = "whitespace"
    lowercase: bool = True
    max_length: int | None = None
    over_length: str = "truncate"

    def splitter(self) -> Callable[[str], list[str]]:
        if self.tokenizer == "whitespace":
            return str.split
        if self.tokenizer.startswith("regex:"):
            pattern = self.tokenizer.removeprefix("regex:")
            try:
                regex = re.compile(pattern)
            except re.error as e:
                raise ValueError(f"Tokenizer pattern {pattern!r} is not a regular expression: {e}.") from None
            return lambda text: [match.group(0) for match in regex.finditer(text)]  # groups do not split
        raise ValueError(f"Unknown tokenizer {self.tokenizer!r}; use whitespace or regex:PATTERN.")


def tokenize(review: Review, spec: TokenizerSpec, split: Callable[[str], list[str]]) -> Review | DeadLetter:
    """The review with "tokens" and "truncated" added (split: spec.splitter()), or its dead letter: no
    tokens, or more than spec.max_length with over_length "dead-letter"."""
    text = review["text"].lower() if spec.lowercase else review["text"]
    tokens = split(text)
    limit = spec.max_length
    if not tokens:
        return refused("tokenize", review, "text has no tokens (empty or whitespace only)")
    if limit is not None and len(tokens) > limit and spec.over_length == "dead-letter":
        return refused("tokenize", review, f"review has {len(tokens)} tokens, more than --max-length {limit}")
    truncated = limit is not None and len(tokens) > limit
    return {**review, "tokens": tokens[:limit] if truncated else tokens, "truncated": truncated}


class TokenizeReview(beam.DoFn):
    """Adds "tokens" and "truncated" to a review record; a review without tokens is dead-lettered."""

    def __init__(self, spec: TokenizerSpec) -> None:
        self.spec = spec

    def setup(self) -> None:
        self.split = self.spec.splitter()

    def process(self, review: Review) -> Iterator:
        tokenized = tokenize(review, self.spec, self.split)
        if not is_dead_letter(tokenized):
            progress.report("tokens", len(tokenized["tokens"]))
        yield tagged(tokenized)


class Tokenize(beam.PTransform):
    """Reviews -> reviews with tokens (main output) and dead letters (tag DEAD_LETTER)."""

    def __init__(self, spec: TokenizerSpec = TokenizerSpec()) -> None:
        super().__init__()
        spec.splitter()  # fail at construction on a bad pattern
        self.spec = spec

    def expand(self, reviews):
        return reviews | "SplitTokens" >> beam.ParDo(TokenizeReview(self.spec)).with_outputs(
            DEAD_LETTER, main="reviews"
        )
