"""ExplainBatches: batched LRP over length-bucketed reviews with the engine's masking.

The model is loaded once per worker process (shared handle, in `setup`). A batch that fails is split in
halves and retried; only reviews that still fail alone are dead-lettered, as are reviews whose logits or
relevances are not finite.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import apache_beam as beam
import numpy as np
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

from lrp.choices import GRADIENT_METHODS, check_methods
from transforms import (
    coders,  # noqa: F401  (the coders of the batches)
    progress,
)
from transforms.model import LoadedModel, ModelSpec, SharedModel
from transforms.records import rejected
from transforms.schemas import DEAD_LETTER, NAMESPACE
from transforms.tables import ExplainedBatch, explained_batch

if TYPE_CHECKING:
    from lrp import Explanation

TARGETS = ("predicted", "label", "all")
REASON_LIMIT = 300
PROGRESS_SECONDS = 10.0
NOT_FINITE = "logits or relevances are not finite (NaN or inf in a vector or the model)"
log = logging.getLogger(__name__)


class Progress:
    """Logs reviews and tokens explained by this worker, and its tokens/s, at most every PROGRESS_SECONDS."""

    def __init__(self) -> None:
        self.started = self.logged = time.perf_counter()
        self.reviews = self.tokens = 0

    def add(self, reviews: int, tokens: int) -> None:
        progress.report("explained", tokens)
        self.reviews, self.tokens = self.reviews + reviews, self.tokens + tokens
        now = time.perf_counter()
        if now - self.logged >= PROGRESS_SECONDS:
            self.logged = now
            rate = self.tokens / (now - self.started)
            log.info("Explained %d reviews, %d tokens (%.0f tokens/s)", self.reviews, self.tokens, rate)


@dataclass(frozen=True)
class ExplainSettings:
    """eps, bias_factor: the LRP-epsilon rule; target: "predicted", "label", "all" or a class index;
    max_batch_tokens: most padded tokens explained in one engine call (bounds memory); methods: whose token
    relevances are written, of lrp, gi (Gradient × Input) and sa (Sensitivity Analysis). LRP always runs:
    it decides the target and gives the review rows. streams: concurrent engine calls (each on one batch) per
    worker process: one per core of a worker serves best. across_elements: calls may still run when their
    element's process returns (their results come with later elements or when the bundle finishes); False
    for a runner that drops what finish_bundle emits (the DaskRunner): each element's calls end within its
    process, up to `streams` of its own chunks at once."""

    eps: float = 1e-3
    bias_factor: float = 0.0
    target: str | int = "predicted"
    max_batch_tokens: int = 65_536
    methods: tuple[str, ...] = ("lrp",)
    streams: int = 2
    across_elements: bool = True

    def __post_init__(self) -> None:
        if self.eps < 0:
            raise ValueError(f"eps must be >= 0; got {self.eps}.")
        if not isinstance(self.target, int) and self.target not in TARGETS:
            raise ValueError(f"Unknown target {self.target!r}; use predicted, label, all or a class index.")
        check_methods(self.methods)
        if self.streams < 1 or self.max_batch_tokens < 1:
            raise ValueError(f"streams and max_batch_tokens must be at least 1; got {self}.")


@dataclass(frozen=True)
class EngineCall:
    """What one engine call explained (reviews, real tokens, padded tokens) and took (milliseconds);
    failed: it raised, and its reviews were retried in halves."""

    reviews: int
    tokens: int = 0
    padded: int = 0
    millis: int = 0
    failed: bool = False


def failure_reason(error: Exception) -> str:
    """Why a review could not be explained: the error's type and the first line of its message, at most
    REASON_LIMIT characters (TensorFlow's messages run to many lines of graph context)."""
    lines = str(error).strip().splitlines()
    return f"explaining failed: {type(error).__name__}: {lines[0][:REASON_LIMIT] if lines else ''}"


def padded_ids(records: Sequence[dict], fill: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded (B, T) int32 ids and (B,) lengths."""
    lengths = np.array([len(r["ids"]) for r in records], dtype=np.int32)
    ids = np.full((len(records), lengths.max()), fill, dtype=np.int32)
    for row, r in enumerate(records):
        ids[row, : lengths[row]] = r["ids"]
    return ids, lengths


def chunks(records: list[dict], max_tokens: int) -> Iterator[list[dict]]:
    """Consecutive runs of length-sorted records whose padded size stays within max_tokens."""
    records = sorted(records, key=lambda r: len(r["ids"]))
    start = 0
    while start < len(records):
        stop = start + 1
        while stop < len(records) and (stop + 1 - start) * len(records[stop]["ids"]) <= max_tokens:
            stop += 1
        yield records[start:stop]
        start = stop


class ExplainBatch(beam.DoFn):
    """A list of embedded reviews -> ExplainedBatch (main output) and dead letters (tag DEAD_LETTER).

    Up to `settings.streams` engine calls run at once, each on a whole chunk, in a thread pool: while they
    run (TensorFlow releases the GIL), the stages before this one read and embed the next reviews. Results
    are emitted in the order the chunks came, and metrics are counted on the bundle's own thread (Beam
    counts only there).
    """

    def __init__(self, model: SharedModel, settings: ExplainSettings) -> None:
        self.model, self.settings = model, settings
        self.retries = beam.metrics.Metrics.counter(NAMESPACE, "batch_splits")
        self.batch_sizes = beam.metrics.Metrics.distribution(NAMESPACE, "batch_size")
        self.millis = beam.metrics.Metrics.counter(NAMESPACE, "explain_millis")
        self.calls = beam.metrics.Metrics.counter(NAMESPACE, "explain_batches")
        self.padded = beam.metrics.Metrics.counter(NAMESPACE, "padded_tokens")

    def setup(self) -> None:
        self.loaded: LoadedModel = self.model.get()
        self.max_tokens = self.settings.max_batch_tokens
        self.progress = Progress()
        self.pool = ThreadPoolExecutor(self.settings.streams, thread_name_prefix="explain")

    def start_bundle(self) -> None:
        self.pending: deque[Future] = deque()

    def process(self, batch: Sequence[dict]) -> Iterator:
        records = []
        for record in batch:
            problem = self.label_problem(record)
            if problem:
                yield rejected("explain", record, problem)
            else:
                records.append(record)
        for chunk in chunks(records, self.max_tokens):
            self.pending.append(self.pool.submit(self.explain_or_split, chunk))
            if len(self.pending) > self.settings.streams:
                yield from self.collect(self.pending.popleft())
        while self.pending and not self.settings.across_elements:
            yield from self.collect(self.pending.popleft())

    def finish_bundle(self) -> Iterator[WindowedValue]:
        while self.pending:
            for output in self.collect(self.pending.popleft()):
                if isinstance(output, beam.pvalue.TaggedOutput):
                    yield beam.pvalue.TaggedOutput(output.tag, GlobalWindows.windowed_value(output.value))
                else:
                    yield GlobalWindows.windowed_value(output)

    def teardown(self) -> None:
        self.pool.shutdown()

    def collect(self, job: Future) -> Iterator:
        """The outputs of one chunk's engine calls, counting them."""
        outputs, calls = job.result()
        for call in calls:
            if call.failed:
                self.retries.inc()
                continue
            self.batch_sizes.update(call.reviews)
            self.calls.inc()
            self.padded.inc(call.padded)
            self.millis.inc(call.millis)
            self.progress.add(call.reviews, call.tokens)
        yield from outputs

    def label_problem(self, record: dict) -> str | None:
        """Why the record's label cannot be explained with --target label, or None."""
        classes, label = self.loaded.explainer.classes, record.get("label")
        if self.settings.target != "label":
            return None
        if label is None:
            return "review has no label to explain (--target label)"
        return (
            None if 0 <= label < classes else f"label {label} is outside the model's classes 0..{classes - 1}"
        )

    def explain_or_split(self, records: list[dict]) -> tuple[list, list[EngineCall]]:
        """(outputs, engine calls) of explaining records: a batch that fails is retried in halves, and
        only reviews that still fail alone are dead-lettered. Runs on a pool thread: counts nothing."""
        try:
            batch, failed, call = self.explain(records)
        except Exception as error:  # any failure of one batch must not take the run down
            if len(records) == 1:
                return [rejected("explain", records[0], failure_reason(error))], []
            log.warning("A batch of %d reviews failed (%s); retrying in halves.", len(records), error)
            half = len(records) // 2
            first, second = self.explain_or_split(records[:half]), self.explain_or_split(records[half:])
            return first[0] + second[0], [EngineCall(len(records), failed=True), *first[1], *second[1]]
        return [*(rejected("explain", records[row], NOT_FINITE) for row in failed), batch], [call]

    def explain(self, records: list[dict]) -> tuple[ExplainedBatch, np.ndarray, EngineCall]:
        """Explain records for every requested target; returns the batch, the rows that are not finite and
        what the call cost."""
        started = time.perf_counter()
        explainer, settings = self.loaded.explainer, self.settings
        ids, lengths = padded_ids(records, self.loaded.zero_id)
        x = self.loaded.table[ids]
        keys = np.arange(len(records))
        parts, failed = [], np.zeros(len(records), bool)
        gradient = any(method in GRADIENT_METHODS for method in settings.methods)
        results = explainer.explain_targets(
            x, lengths, self.targets(records), settings.eps, settings.bias_factor, 1, gradient
        )
        for result in results:
            scores = self.token_scores(x, result)
            failed |= ~(np.isfinite(result.logits).all(1) & np.isfinite(result.relevance).all((1, 2)))
            failed |= ~np.all([np.isfinite(s).all(1) for s in scores.values()], axis=0)
            parts.append(explained_batch(records, keys, result, scores))
        bad = np.flatnonzero(failed)
        millis = int(1000 * (time.perf_counter() - started))
        call = EngineCall(len(records), int(lengths.sum()), ids.size, millis)
        return ExplainedBatch.concat(parts).drop_records(bad), bad, call

    def token_scores(self, x: np.ndarray, result: Explanation) -> dict[str, np.ndarray]:
        """Per-token scores (B, T) of each requested method, for the classes that `result` explains (the
        gradient methods from result.gradient, computed in the same forward pass as LRP)."""
        from lrp.baselines import attribution_rule  # TensorFlow, on the workers that explain

        return {
            method: result.token_relevance
            if method == "lrp"
            else attribution_rule(method)(x, result.gradient).sum(axis=-1)
            for method in self.settings.methods
        }

    def targets(self, records: list[dict]) -> list:
        """The engine's targets (explain_targets), one per class explained."""
        target = self.settings.target
        if target == "all":
            return list(range(self.loaded.explainer.classes))
        if target == "label":
            return [np.array([r["label"] for r in records])]
        return [None if target == "predicted" else int(target)]


class ExplainBatches(beam.PTransform):
    """Batches of embedded reviews -> ExplainedBatch (main output) and dead letters (tag DEAD_LETTER)."""

    def __init__(self, model: ModelSpec | SharedModel, settings: ExplainSettings = ExplainSettings()) -> None:
        super().__init__()
        self.model = model if isinstance(model, SharedModel) else SharedModel(model)
        self.settings = settings

    def expand(self, batches):
        explain = beam.ParDo(ExplainBatch(self.model, self.settings)).with_output_types(ExplainedBatch)
        return batches | "ExplainBatch" >> explain.with_outputs(DEAD_LETTER, main="explained")
