"""Word deletion: do the explanations point at the tokens the model relies on? (Arras et al. 2017, Sec. 5.2)

For reviews the model classifies correctly, the k most relevant tokens (relevance for the true class) are
deleted, i.e. their vectors set to zero, and the review re-predicted: the faster accuracy falls with k, the
better the relevances find the evidence for the class. For misclassified reviews the k least relevant
tokens are deleted, and accuracy should rise. "random" deletes tokens in a random order, the floor every
method should beat.

Shapes: x (B, T, E) right-padded to the (B,) lengths; labels (B,) true classes; scores (B, T) per token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from lrp.baselines import GRADIENT_METHODS
from lrp.explainer import LSTMExplainer

RANDOM = "random"
DELETION_METHODS = ("lrp", *GRADIENT_METHODS, RANDOM)
SETTINGS = ("correct", "misclassified")
"""Reviews first classified correctly (most relevant tokens deleted first) or not (least relevant first)."""


def token_scores(
    explainer: LSTMExplainer,
    x: np.ndarray,
    lengths: np.ndarray,
    labels: np.ndarray,
    methods: Iterable[str],
    rng: np.random.Generator,
    eps: float = 1e-3,
    bias_factor: float = 0.0,
) -> dict[str, np.ndarray]:
    """Per-token scores (B, T) of each method for the true class; random scores for "random"."""
    scores = {}
    for method in methods:
        if method == "lrp":
            scores[method] = explainer.explain(x, lengths, labels, eps, bias_factor).token_relevance
        elif method == RANDOM:
            scores[method] = rng.random(x.shape[:2])
        else:
            scores[method] = explainer.attribute(x, lengths, labels, method).sum(axis=-1)
    return scores


def deletion_ranks(scores: np.ndarray, lengths: np.ndarray, most_relevant_first: np.ndarray) -> np.ndarray:
    """(B, T) place of each token in its review's deletion order (0 = deleted first); padding comes last.

    most_relevant_first: (B,) bool, deletion by decreasing score where True, by increasing score elsewhere.
    """
    steps = scores.shape[1]
    valid = np.arange(steps)[None, :] < lengths[:, None]
    key = np.where(most_relevant_first[:, None], -scores, scores)
    order = np.argsort(np.where(valid, key, np.inf), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(steps), order.shape), axis=1)
    return ranks


def delete_tokens(x: np.ndarray, ranks: np.ndarray, lengths: np.ndarray, k: int) -> np.ndarray:
    """x with the vectors of the first min(k, length) tokens of each review's deletion order set to zero."""
    deleted = ranks < np.minimum(k, lengths)[:, None]
    return np.where(deleted[..., None], np.zeros((), x.dtype), x)


def without_masked_steps(x: np.ndarray, lengths: np.ndarray, value: float) -> tuple[np.ndarray, np.ndarray]:
    """x (B, T, E) without the steps a Keras Masking(value) layer skips (every feature equal to value): the
    kept steps moved left in order, zero padding after them; returns it and the (B,) new lengths."""
    steps = np.arange(x.shape[1])
    keep = (x != value).any(axis=-1) & (steps < np.asarray(lengths)[:, None])
    order = np.argsort(~keep, axis=1, kind="stable")
    kept = keep.sum(axis=1).astype(np.int32)
    moved = np.take_along_axis(x, order[..., None], axis=1)
    return np.where((steps < kept[:, None])[..., None], moved, np.zeros((), x.dtype)), kept


@dataclass(frozen=True)
class DeletionCounts:
    """Word-deletion tallies. hits (M, S, K + 1): reviews of setting s classified as labelled after deleting
    k tokens in method m's order; reviews (S,): reviews per setting (S = len(SETTINGS))."""

    methods: tuple[str, ...]
    hits: np.ndarray
    reviews: np.ndarray

    def __add__(self, other: DeletionCounts) -> DeletionCounts:
        if other.methods != self.methods or other.hits.shape != self.hits.shape:
            raise ValueError("Only deletion counts of the same methods and k range can be added.")
        return DeletionCounts(self.methods, self.hits + other.hits, self.reviews + other.reviews)

    def rows(self) -> list[dict]:
        """One row per (method, k, setting) with reviews in the setting: accuracy = hits / reviews."""
        return [
            {
                "method": method,
                "k": k,
                "accuracy": float(self.hits[m, s, k] / self.reviews[s]),
                "n_reviews": int(self.reviews[s]),
                "setting": setting,
            }
            for m, method in enumerate(self.methods)
            for s, setting in enumerate(SETTINGS)
            if self.reviews[s]
            for k in range(self.hits.shape[2])
        ]


def deletion_counts(
    explainer: LSTMExplainer,
    x: np.ndarray,
    lengths: np.ndarray,
    labels: np.ndarray,
    scores: Mapping[str, np.ndarray],
    max_k: int = 10,
) -> DeletionCounts:
    """Delete k = 0..max_k tokens in each method's order (scores (B, T) per method), re-predict, tally. A
    model with a Masking layer skips a deleted (zeroed) word whose vector is then its mask value: so does
    the prediction here, as the model would."""
    lengths, labels = np.asarray(lengths), np.asarray(labels)
    correct = explainer.predict(x, lengths).argmax(axis=1) == labels
    groups = np.stack([correct, ~correct])  # (S, B), in the order of SETTINGS
    hits = np.zeros((len(scores), len(SETTINGS), max_k + 1), dtype=np.int64)
    for m, method_scores in enumerate(scores.values()):
        ranks = deletion_ranks(method_scores, lengths, correct)
        for k in range(max_k + 1):
            deleted, kept = delete_tokens(x, ranks, lengths, k), lengths
            if explainer.mask_value is not None:
                deleted, kept = without_masked_steps(deleted, lengths, explainer.mask_value)
            right = explainer.predict(deleted, kept).argmax(axis=1) == labels
            hits[m, :, k] = (groups & right).sum(axis=1)
    return DeletionCounts(tuple(scores), hits, groups.sum(axis=1))
