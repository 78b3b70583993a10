"""Declared Arrow schemas of the pipeline's outputs and the dead-letter record every stage emits."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

NAMESPACE = "lstm_lrp"
"""Namespace of the pipeline's Beam metrics (counters and distributions)."""

DEAD_LETTER = "dead_letter"
"""Tag of the tagged output on which every stage emits records it could not process."""

RAW_LIMIT = 1000
"""Characters of the offending input kept in a dead letter."""

TOKENS_SCHEMA = pa.schema(
    [
        ("review_id", pa.string()),
        ("source", pa.dictionary(pa.int32(), pa.string())),
        ("position", pa.int32()),
        ("token", pa.string()),
        ("relevance", pa.float32()),
        ("target_class", pa.int32()),
        ("method", pa.string()),
    ]
)

REVIEWS_SCHEMA = pa.schema(
    [
        ("review_id", pa.string()),
        ("source", pa.string()),
        ("n_tokens", pa.int32()),
        ("truncated", pa.bool_()),
        ("label", pa.int32()),
        ("predicted_class", pa.int32()),
        ("target_class", pa.int32()),
        ("target_score", pa.float64()),
        ("logits", pa.list_(pa.float32())),
        ("relevance_sum", pa.float64()),
        ("rest", pa.float64()),
        ("conservation_residual", pa.float64()),
        ("conserved", pa.bool_()),
    ]
)

DEAD_LETTER_SCHEMA = pa.schema(
    [
        ("review_id", pa.string()),
        ("source", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("raw", pa.string()),
    ]
)


def is_valid_utf8(text: str) -> bool:
    """False if text holds surrogates: undecodable bytes smuggled in by surrogateescape, or lone ones."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def writable(text: str) -> str:
    """text as valid UTF-8 for Parquet: undecodable input bytes (read in as surrogates U+DC80..U+DCFF) become
    \\xff escapes, other lone surrogates (e.g. a JSON "\\ud800") \\ud800 escapes; valid text is unchanged."""
    if is_valid_utf8(text):
        return text
    return "".join(escape_surrogate(c) if "\ud800" <= c <= "\udfff" else c for c in text)


def escape_surrogate(char: str) -> str:
    """A surrogate as the escape writable() shows it."""
    code = ord(char)
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def dead_letter(stage: str, reason: str, source: str, raw: object = "", review_id: str | None = None) -> dict:
    """A dead-letter row: which record (review_id may be unknown), which stage refused it, why, and the raw
    input truncated to RAW_LIMIT characters. Every text is made writable, so a dead letter never fails the
    write of the dead-letter dataset, whatever bytes the input held."""
    text = raw if isinstance(raw, str) else repr(raw)
    return {
        "review_id": None if review_id is None else writable(review_id),
        "source": writable(source),
        "stage": stage,
        "reason": writable(reason),
        "raw": writable(text[:RAW_LIMIT]),
    }


def refused(stage: str, review: dict, reason: str) -> dict:
    """The dead letter of a review record that `stage` could not process."""
    return dead_letter(stage, reason, review["source"], review.get("text", ""), review["review_id"])


def rejected(stage: str, review: dict, reason: str) -> beam.pvalue.TaggedOutput:
    """A review record that `stage` could not process, as a dead letter on the DEAD_LETTER output."""
    return beam.pvalue.TaggedOutput(DEAD_LETTER, refused(stage, review, reason))
