"""summary.json: what a run read, explained and dead-lettered, from Beam's counters and the written files."""

from __future__ import annotations

import collections
import dataclasses
import re

import apache_beam as beam
import fsspec
import pyarrow.parquet as pq

from pipeline.config import RunConfig
from transforms.schemas import NAMESPACE

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


def counters(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    """Committed (else attempted) totals of the pipeline's counters, summed over steps."""
    totals = dict.fromkeys(COUNTERS, 0)
    query = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(NAMESPACE))
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (value or 0)
    return totals


def reason_kind(stage: str, reason: str) -> str:
    """A dead letter's reason without its particulars: "embed: # unknown tokens"."""
    general = re.split(r": | \(", reason, maxsplit=1)[0]
    return f"{stage}: {NUMBER.sub('#', general)}"


def dead_letter_reasons(directory: str) -> collections.Counter:
    """Count dead letters per reason kind from the dead_letter/ Parquet files under directory."""
    fs, _, (root,) = fsspec.core.get_fs_token_paths(directory.rstrip("/") + "/dead_letter")
    reasons: collections.Counter = collections.Counter()
    for path in fs.glob(f"{root}/*.parquet"):
        with fs.open(path, "rb") as f:
            table = pq.read_table(f, columns=["stage", "reason"])
        for stage, reason in zip(table.column("stage").to_pylist(), table.column("reason").to_pylist()):
            reasons[reason_kind(stage, reason)] += 1
    return reasons


def build_summary(
    config: RunConfig, totals: dict, reasons: collections.Counter, runner: str, seconds: float
) -> dict:
    """summary.json. accounting_ok: every input record was explained or dead-lettered, once, by Beam's
    counters and by the dead letters written alike."""
    dead = sum(reasons.values())
    counted = totals["input_records"] == totals["explained"] + totals["dead_lettered"]
    return {
        "input_records": totals["input_records"],
        "skipped_blank_lines": totals["skipped_blank"],
        "explained": totals["explained"],
        "dead_lettered": dead,
        "dead_lettered_by_reason": dict(sorted(reasons.items())),
        "accounting_ok": counted and totals["dead_lettered"] == dead,
        "tokens": totals["tokens"],
        "oov_tokens": totals["oov_tokens"],
        "conservation_violations": totals["conservation_violations"],
        "work_units": {"read_splits": totals["read_splits"], "explain_batches": totals["explain_batches"]},
        "padding_waste": round(totals["padded_tokens"] / totals["tokens"] - 1, 4)
        if totals["tokens"]
        else None,
        "settings": {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
        },
        "runner": runner,
        "wall_seconds": round(seconds, 3),
        "tokens_per_second": round(totals["tokens"] / seconds, 1) if seconds > 0 else None,
    }
