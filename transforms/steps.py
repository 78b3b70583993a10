"""The steps the model computes for a tokenised review: one plain function, used by the Embed stage and by
LRPModelHandler, so that both explain exactly what the model computes.

A Keras model skips (masks) some steps wherever they are: id 0 when its Embedding has mask_zero=True, and
every step whose vector equals the value of a Masking layer (whose mask then replaces mask_zero's). The
engine masks by length only, so masked steps are left out before explaining; the steps kept keep their
`position`, the index of their token in the tokenised review. Unknown tokens follow the OOV policy:
"zero" (the model's OOV id, or the vector table's zero row when it has none; masked like any other step
when its vector is the mask value), "skip" (left out) or "dead-letter" (the review is refused). A review
with no known token, or whose every step the model masks, is refused under every policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import NamedTuple

import numpy as np

OOV_POLICIES = ("zero", "skip", "dead-letter")
SHOWN = 20
"""Tokens named in a dead-letter reason."""


@dataclass(frozen=True)
class StepRule:
    """token_ids: token -> row of the vector table; unknown_id: the row unknown tokens get under "zero";
    masked: the rows whose steps the model skips; oov: one of OOV_POLICIES."""

    token_ids: Mapping[str, int]
    unknown_id: int
    masked: frozenset[int]
    oov: str = "zero"


class Steps(NamedTuple):
    """ids, positions: (L,) int32, the table row of each kept step and its token's index in the review;
    unknown: how many of the review's tokens are not in the vocabulary; reason: why the review must be
    dead-lettered (then ids and positions are empty), else None. (A named tuple: one is made per review.)"""

    ids: np.ndarray
    positions: np.ndarray
    unknown: int
    reason: str | None = None


def model_steps(tokens: Sequence[str], rule: StepRule) -> Steps:
    """The steps the model computes for `tokens`, or the reason the review cannot be explained. The
    lookup runs at C speed (map over the token index); a review with neither unknown nor masked tokens
    (most of them) keeps every token at its own position."""
    if not tokens:
        return refused(0, "the review has no tokens")
    found = list(map(rule.token_ids.get, tokens, repeat(-1)))
    masked = rule.masked
    if -1 not in found and masked.isdisjoint(found):
        return Steps(np.array(found, np.int32), np.arange(len(found), dtype=np.int32), 0)
    unknown = found.count(-1)
    if unknown == len(tokens):
        return refused(unknown, f"no token of the review is in the vocabulary ({unknown} unknown)")
    if unknown and rule.oov == "dead-letter":
        names = [token for token, i in zip(tokens, found) if i < 0][:SHOWN]
        return refused(unknown, f"{unknown} unknown tokens: {' '.join(names)}")
    kept = [(p, rule.unknown_id if i < 0 else i) for p, i in enumerate(found) if i >= 0 or rule.oov == "zero"]
    steps = [(p, i) for p, i in kept if i not in masked]
    if not steps:
        shown = " ".join(tokens[p] for p, _ in kept[:SHOWN])
        return refused(unknown, f"the model masks every token of the review: {shown}")
    positions, rows = zip(*steps)
    return Steps(np.array(rows, np.int32), np.array(positions, np.int32), unknown)


def refused(unknown: int, reason: str) -> Steps:
    empty = np.zeros(0, np.int32)
    return Steps(empty, empty, unknown, reason)
