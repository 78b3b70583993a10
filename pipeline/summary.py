"""summary.json: what a run read, explained and dead-lettered, from Beam's counters and the written files."""

from __future__ import annotations

import collections
import re
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lrp.files import expand
from transforms.schemas import DEAD_LETTER_DIR, NAMESPACE, REVIEWS_DIR

if TYPE_CHECKING:
    import apache_beam as beam

NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?(e-?[0-9]+)?")
COUNTERS = (
    "input_records",
    "skipped_blank",
    "explained",
    "dead_lettered",
    "tokens",
    "conservation_violations",
    "oov_tokens",
    "read_splits",
    "explain_batches",
    "padded_tokens",
)


def counters(result: beam.runners.runner.PipelineResult) -> dict[str, int] | None:
    """Committed (else attempted) totals of the pipeline's counters, summed over steps; None from a runner
    that reports no metrics (the DaskRunner)."""
    import apache_beam as beam  # here, so that the report can use reason_kind without Beam

    totals = dict.fromkeys(COUNTERS, 0)
    try:
        query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(NAMESPACE))
    except NotImplementedError:
        return None
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (value or 0)
    return totals


def written_totals(directory: str) -> dict[str, int | None]:
    """The counters as far as the written files tell them, for a runner that reports no metrics: explained
    reviews and their tokens (reviews/, once per review whatever the target classes), dead letters and
    conservation violations (dead_letter/); input_records is their sum, so it checks nothing. What leaves
    no trace in the files (blank lines skipped, OOV tokens, splits, batches, padding) is None."""
    reviews = read_columns(directory, "reviews", ["source", "n_tokens"])
    stages = read_columns(directory, "dead_letter", ["stage"]).column("stage").to_pylist()
    tokens = dict(zip(reviews.column("source").to_pylist(), reviews.column("n_tokens").to_pylist()))
    totals: dict[str, int | None] = dict.fromkeys(COUNTERS)
    totals |= {
        "explained": len(tokens),
        "tokens": sum(tokens.values()),
        "dead_lettered": len(stages),
        "conservation_violations": stages.count("conservation"),
        "input_records": len(tokens) + len(stages),
    }
    return totals


def reason_kind(stage: str, reason: str) -> str:
    """A dead letter's reason without its particulars: "embed: # unknown tokens"."""
    general = re.split(r": | \(", reason, maxsplit=1)[0]
    return f"{stage}: {NUMBER.sub('#', general)}"


def read_columns(directory: str, dataset: str, columns: list[str]) -> pa.Table:
    """`columns` of every Parquet file of OUTPUT/dataset/ (an empty table when there is none)."""
    fs, paths = expand(f"{directory.rstrip('/')}/{dataset}/*.parquet")
    tables = []
    for path in paths:
        with fs.open(path, "rb") as f:
            tables.append(pq.read_table(f, columns=columns))
    return pa.concat_tables(tables) if tables else pa.table({c: pa.array([], pa.null()) for c in columns})


def dead_letter_reasons(directory: str) -> collections.Counter:
    """Count dead letters per reason kind from the dead_letter/ Parquet files under directory."""
    table = read_columns(directory, DEAD_LETTER_DIR, ["stage", "reason"])
    stages, reasons = table.column("stage").to_pylist(), table.column("reason").to_pylist()
    return collections.Counter(reason_kind(stage, reason) for stage, reason in zip(stages, reasons))


def absorbed_share(directory: str) -> dict[str, float | None]:
    """How much of each explained score the explanation leaves to biases and stabilisers: the mean, median,
    95th percentile and maximum of |absorbed| / |target_score| over the reviews/ rows (0 for a zero
    score, which leaves nothing to absorb); None without rows."""
    table = read_columns(directory, REVIEWS_DIR, ["absorbed", "target_score"])
    absorbed = np.abs(table.column("absorbed").to_numpy(zero_copy_only=False).astype(np.float64))
    score = np.abs(table.column("target_score").to_numpy(zero_copy_only=False).astype(np.float64))
    share = np.divide(absorbed, score, out=np.zeros_like(absorbed), where=score > 0)
    if not share.size:
        return dict.fromkeys(("mean", "p50", "p95", "max"))
    stats = {
        "mean": share.mean(),
        "p50": np.median(share),
        "p95": np.percentile(share, 95),
        "max": share.max(),
    }
    return {name: float(value) for name, value in stats.items()}


def build_summary(
    provenance: dict,
    totals: dict,
    reasons: collections.Counter,
    absorbed: dict[str, float | None],
    runner: str,
    seconds: float,
    measured: bool = True,
) -> dict:
    """summary.json: the run's provenance record (pipeline.provenance, settings included) and what it did.
    counted_from: "metrics" (Beam's counters) or, from a runner without metrics (measured False),
    "written_files" (totals from written_totals(): what they cannot tell is null). accounting_ok: every
    input record was explained or dead-lettered, once, by Beam's counters and by the dead letters written
    alike; null when counted from the files, which cannot check it. absorbed_share: see absorbed_share()."""
    dead = sum(reasons.values())
    counted = totals["input_records"] == totals["explained"] + totals["dead_lettered"]
    return {
        **provenance,
        "input_records": totals["input_records"],
        "skipped_blank_lines": totals["skipped_blank"],
        "explained": totals["explained"],
        "dead_lettered": dead,
        "dead_lettered_by_reason": dict(sorted(reasons.items())),
        "counted_from": "metrics" if measured else "written_files",
        "accounting_ok": counted and totals["dead_lettered"] == dead if measured else None,
        "tokens": totals["tokens"],
        "oov_tokens": totals["oov_tokens"],
        "conservation_violations": totals["conservation_violations"],
        "absorbed_share": absorbed,
        "work_units": {"read_splits": totals["read_splits"], "explain_batches": totals["explain_batches"]},
        "padding_waste": round(totals["padded_tokens"] / totals["tokens"] - 1, 4)
        if totals["tokens"] and totals["padded_tokens"] is not None
        else None,
        "runner": runner,
        "wall_seconds": round(seconds, 3),
        "tokens_per_second": round(totals["tokens"] / seconds, 1) if seconds > 0 else None,
    }
