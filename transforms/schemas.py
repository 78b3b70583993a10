"""The output directory's layout: the name of every file and directory that `lstm-lrp run`, `evaluate` and
`report` write in OUTPUT, the Arrow schema of each Parquet file, and the dead-letter record every stage
emits. Imports no Beam or TensorFlow, so that every command (the report too) can use it.

run: tokens/, reviews/ and dead_letter/ (Parquet part files) and summary.json (last), beside them its
manifest and lock, and _incomplete-<run id>/ while it runs; evaluate: deletion.parquet and deletion.png;
report: report.html.
"""

from __future__ import annotations

import pyarrow as pa

TOKENS_DIR = "tokens"
REVIEWS_DIR = "reviews"
DEAD_LETTER_DIR = "dead_letter"
RESULT_DIRS = (TOKENS_DIR, REVIEWS_DIR, DEAD_LETTER_DIR)
"""The Parquet datasets of a run, each a directory of part files."""
SUMMARY = "summary.json"
MANIFEST = "_lstm-lrp-files.json"
"""The files the last run published, relative to OUTPUT: the only ones --overwrite removes."""
LOCK = "_lstm-lrp.lock"
STAGING_PREFIX = "_incomplete-"
"""Of the directories (and files) written beside their place before they are moved into it."""
STAGING_MARK = "_lstm-lrp-staging"
"""Written first into every staging directory: a directory without it is not this tool's."""
PUBLISHED = (*RESULT_DIRS, SUMMARY, MANIFEST, LOCK)
"""The names a run writes in OUTPUT, beside its staging directory."""
DELETION_FILE = "deletion.parquet"
"""Written by `lstm-lrp evaluate` into a run's output directory."""
DELETION_PLOT_FILE = "deletion.png"
"""The plot of DELETION_FILE's curves, written beside it."""
REPORT_FILE = "report.html"
"""Where `lstm-lrp report` writes its page unless --html says."""

NAMESPACE = "lstm_lrp"
"""Namespace of the pipeline's Beam metrics (counters and distributions)."""

DEAD_LETTER = "dead_letter"
"""Tag of the tagged output on which every stage emits records it could not process."""

RAW_LIMIT = 1000
"""Characters of the offending input kept in a dead letter."""


def required(name: str, kind: pa.DataType) -> pa.Field:
    """A column that is never null."""
    return pa.field(name, kind, nullable=False)


def tokens_schema(dtype: str = "float32") -> pa.Schema:
    """tokens/: one row per (token, target class, method); relevance in the engine's dtype. position: the
    token's index in the tokenised review, counted before any unknown token is skipped."""
    return pa.schema(
        [
            required("review_id", pa.string()),
            required("source", pa.string()),
            required("position", pa.int32()),
            required("token", pa.string()),
            required("relevance", pa.from_numpy_dtype(dtype)),
            required("target_class", pa.int32()),
            required("method", pa.string()),
        ]
    )


TOKENS_SCHEMA = tokens_schema("float32")
"""tokens/ of a float32 run (the default)."""

REVIEWS_SCHEMA = pa.schema(
    [
        required("review_id", pa.string()),
        required("source", pa.string()),
        required("n_tokens", pa.int32()),
        required("truncated", pa.bool_()),
        pa.field("label", pa.int32()),
        required("predicted_class", pa.int32()),
        required("target_class", pa.int32()),
        required("target_score", pa.float64()),
        required("logits", pa.list_(pa.float32())),
        required("relevance_sum", pa.float64()),
        required("rest", pa.float64()),
        required("absorbed", pa.float64()),
        required("conservation_residual", pa.float64()),
    ]
)
"""reviews/: one row per (review, target class). The books balance as written: conservation_residual =
target_score - (relevance_sum + rest + absorbed), relevance_sum being the sum of the review's LRP rows in
tokens/."""

DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("review_id", pa.string()),
        required("source", pa.string()),
        required("stage", pa.string()),
        required("reason", pa.string()),
        required("raw", pa.string()),
    ]
)
"""dead_letter/: review_id is null where the record has none (a line that is not JSON)."""

DELETION_SCHEMA = pa.schema(
    [
        ("method", pa.string()),
        ("k", pa.int32()),
        ("accuracy", pa.float64()),
        ("n_reviews", pa.int64()),
        ("setting", pa.string()),
    ]
)
"""deletion.parquet: one row per (setting, method, k): the accuracy over the setting's n_reviews reviews
after deleting k tokens ("correct": the most relevant of correctly classified reviews first,
"misclassified": the least relevant of misclassified ones; see lrp.deletion)."""


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
