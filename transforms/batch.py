"""ExplainedBatch: the Arrow tables one explained batch yields, and how they are built from an Explanation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from transforms.schemas import REVIEWS_SCHEMA, tokens_schema

if TYPE_CHECKING:
    from lrp import Explanation


@dataclass(frozen=True)
class ExplainedBatch:
    """reviews: one row per (review, target class); tokens: one row per (token, target class, method).

    review_keys / token_keys: which input record (index within the batch) each row belongs to, so that
    a record's rows can be dropped together.
    """

    reviews: pa.Table
    tokens: pa.Table
    review_keys: np.ndarray
    token_keys: np.ndarray

    @classmethod
    def concat(cls, batches: Sequence[ExplainedBatch]) -> ExplainedBatch:
        return cls(
            pa.concat_tables([b.reviews for b in batches]),
            pa.concat_tables([b.tokens for b in batches]),
            np.concatenate([b.review_keys for b in batches]),
            np.concatenate([b.token_keys for b in batches]),
        )

    def drop_records(self, keys: np.ndarray) -> ExplainedBatch:
        """The batch without any row of the records `keys`."""
        keep_reviews = ~np.isin(self.review_keys, keys)
        keep_tokens = ~np.isin(self.token_keys, keys)
        return ExplainedBatch(
            self.reviews.filter(pa.array(keep_reviews)),
            self.tokens.filter(pa.array(keep_tokens)),
            self.review_keys[keep_reviews],
            self.token_keys[keep_tokens],
        )


def list_column(values: np.ndarray) -> pa.Array:
    """(B, C) -> list<float32> column of B lists."""
    offsets = np.arange(0, values.size + 1, values.shape[1], dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.ravel().astype(np.float32)))


def token_table(
    records: Sequence[dict], scores: np.ndarray, lengths: np.ndarray, target: np.ndarray, method: str
) -> pa.Table:
    """Token rows of one method: scores (B, T) per token, padded to the (B,) lengths, written in their own
    dtype; target (B,) classes. Positions are the records' "positions": the tokens' indices in the
    tokenised review, counted before any token was skipped."""
    valid = np.arange(scores.shape[1])[None, :] < lengths[:, None]
    rows = np.repeat(np.arange(len(records)), lengths)
    return pa.table(
        {
            "review_id": pa.array([r["review_id"] for r in records], pa.string()).take(rows),
            "source": pa.array([r["source"] for r in records], pa.string()).take(rows),
            "position": pa.array(np.concatenate([r["positions"] for r in records]).astype(np.int32)),
            "token": pa.array(list(chain.from_iterable(r["tokens"] for r in records)), pa.string()),
            "relevance": pa.array(scores[valid]),
            "target_class": pa.array(np.repeat(target, lengths).astype(np.int32)),
            "method": pa.array([method], pa.string()).take(np.zeros(len(rows), np.int32)),
        },
        schema=tokens_schema(scores.dtype.name),
    )


def review_table(records: Sequence[dict], result: Explanation) -> pa.Table:
    """One row per record: prediction, explained target and the LRP books of `result`, which balance as
    written (relevance_sum is the sum of the LRP token rows; Explanation.residual)."""
    return pa.table(
        {
            "review_id": [r["review_id"] for r in records],
            "source": [r["source"] for r in records],
            "n_tokens": pa.array(result.lengths.astype(np.int32)),
            "truncated": [bool(r.get("truncated", False)) for r in records],
            "label": pa.array([r.get("label") for r in records], pa.int32()),
            "predicted_class": pa.array(result.logits.argmax(axis=1).astype(np.int32)),
            "target_class": pa.array(result.target.astype(np.int32)),
            "target_score": pa.array(result.target_score.astype(np.float64)),
            "logits": list_column(result.logits),
            "relevance_sum": pa.array(result.relevance_sum),
            "rest": pa.array(result.rest.astype(np.float64)),
            "absorbed": pa.array(result.absorbed.astype(np.float64)),
            "conservation_residual": pa.array(result.residual),
        },
        schema=REVIEWS_SCHEMA,
    )


def explained_batch(
    records: Sequence[dict], keys: np.ndarray, result: Explanation, scores: Mapping[str, np.ndarray]
) -> ExplainedBatch:
    """Arrow tables for records (with "tokens", "ids", "positions") explained as `result` (LRP), with token
    rows for each method of `scores` (method -> (B, T) per-token scores for result.target); keys: (B,)
    record indices."""
    keys = np.asarray(keys)
    tokens = [token_table(records, s, result.lengths, result.target, m) for m, s in scores.items()]
    token_keys = np.tile(np.repeat(keys, result.lengths), len(tokens))
    return ExplainedBatch(review_table(records, result), pa.concat_tables(tokens), keys, token_keys)
