"""Engine benchmark: LRP over the SST test sentences with a 60-d bidirectional LSTM and a 60-d bidirectional
GRU (60 units, 5 classes).

    python benchmarks/engine.py [--sst ../shared/data/sst_test.jsonl] [--buckets 8,16,24,32,48,64]
                                [--batch 256] [--streams 2] [--threads 1]

Random weights and random 60-d word vectors (the cost does not depend on their values). Reviews are grouped
in length buckets, one engine call per bucket (at most --batch reviews). Prints cold seconds (a fresh
explainer: tracing included), warm seconds (best of --repeats) for one stream of engine calls and for
--streams concurrent streams (one per core, as Beam runs one engine per worker process), tokens/s, and the
speed-up over the slow float64 numpy reference (lrp.reference) (timed on a sample, extrapolated per token),
per model and dtype, and the GRU's cost per token relative to the LSTM's (the two take turns; in wall
seconds, and in process CPU seconds, which another load on the machine disturbs less); then, for the LSTM,
warm float32 cost ratios measured in the same run: the relevance ledger, explaining all classes, and the
gradient baselines sharing LRP's forward pass.
TensorFlow's intra-op threads are set by --threads (default 1: the per-step operations are too small to
split, so cores serve best as parallel streams).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import pathlib
import time
from unittest import mock

import numpy as np
import tensorflow as tf

from lrp import LSTMExplainer
from lrp.explainer import set_engine_threads
from lrp.reference import random_model, reference_ledger

ROOT = pathlib.Path(__file__).resolve().parents[1]

E, H, C = 60, 60, 5


def load_corpus(path: pathlib.Path, rng: np.random.Generator) -> list[np.ndarray]:
    """Each sentence as (L, E) vectors, one random vector per distinct token."""
    sentences = [json.loads(line)["text"].split() for line in path.open(encoding="utf-8")]
    token_ids = {t: i for i, t in enumerate(sorted({t for s in sentences for t in s}))}
    table = rng.normal(size=(len(token_ids), E))
    return [table[[token_ids[t] for t in s]] for s in sentences]


def buckets(corpus: list[np.ndarray], bounds: list[int], batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Right-padded (B, T, E) batches and (B,) lengths, one per bucket (split when over `batch`)."""
    out, lower = [], 0
    for bound in bounds:
        members = [x for x in corpus if lower < len(x) <= bound]
        lower = bound
        for start in range(0, len(members), batch):
            group = members[start : start + batch]
            padded = np.zeros((len(group), max(len(x) for x in group), E))
            for row, x in enumerate(group):
                padded[row, : len(x)] = x
            out.append((padded, np.array([len(x) for x in group])))
    return out


def time_pass(explainer: LSTMExplainer, batches: list, streams: int = 1) -> float:
    """Seconds to explain every batch, in `streams` concurrent threads (TensorFlow runs them in parallel,
    as Beam runs one engine per worker)."""
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(streams) as pool:
        list(pool.map(lambda batch: explainer.explain(*batch), batches))
    return time.perf_counter() - started


def reference_seconds_per_token(layers, dense, corpus: list[np.ndarray], sample: int) -> float:
    picked = corpus[:: max(1, len(corpus) // sample)][:sample]
    started = time.perf_counter()
    for x in picked:
        reference_ledger(layers, dense, x, 0, 1e-3, 0.0)
    return (time.perf_counter() - started) / sum(len(x) for x in picked)


def length_scaling(layers, dense, rng: np.random.Generator, max_batch_tokens: int = 65_536) -> None:
    """Warm float32 cost per token of corpora of 20-token and of 2,000-token reviews (100,000 tokens each),
    batched as the pipeline batches them (at most max_batch_tokens padded tokens per engine call)."""
    explainer = LSTMExplainer(layers, dense, dtype="float32")
    print(f"{'length':>7} {'batch':>6} {'us/token':>9}")
    costs = {}
    for length in (20, 2000):
        batch = max(1, min(256, max_batch_tokens // length))
        x, lengths = rng.normal(size=(batch, length, E)), np.full(batch, length)
        calls = max(1, 100_000 // (batch * length))
        explainer.explain(x, lengths)
        started = time.perf_counter()
        for _ in range(calls):
            explainer.explain(x, lengths)
        costs[length] = (time.perf_counter() - started) / (calls * batch * length)
        print(f"{length:7d} {batch:6d} {costs[length] * 1e6:9.2f}")
    print(f"2,000-token reviews cost {costs[2000] / costs[20]:.2f}x per token what 20-token reviews cost")


def without_ledger(layers, dense) -> LSTMExplainer:
    """A float32 explainer whose traced graph books nothing as absorbed (the ledger's functions patched to
    zeros while it is traced): the engine as it would cost without the ledger."""
    explainer = LSTMExplainer(layers, dense, dtype="float32")
    layer = lambda trace, coefficients, total, *_: tf.zeros_like(total[0, 0, :, 0])  # noqa: E731
    dense_layer = lambda z, *_: tf.zeros_like(z[:, 0])  # noqa: E731
    with (
        mock.patch("lrp.lstm.layer_absorbed", layer),
        mock.patch("lrp.explainer.absorbed_relevance", dense_layer),
    ):
        explainer.explain(np.zeros((1, 1, E)))  # traces the default graph
    return explainer


def cost_ratios(layers, dense, batches: list, repeats: int) -> None:
    """Warm float32 cost ratios, each pair timed in this run batch by batch, alternately, and summed over
    the batches' best times (robust to a contended CPU): the ledger (explain vs the same engine without
    it), every class vs the predicted one, and LRP with the gradient of --method gi,sa from the same
    forward pass vs LRP then attribute() for gi and sa."""
    explainer = LSTMExplainer(layers, dense, dtype="float32")
    plain = without_ledger(layers, dense)
    pairs = {
        "ledger / no ledger": (
            lambda x, n: explainer.explain(x, n),
            lambda x, n: plain.explain(x, n),
        ),
        f"all {C} classes / predicted": (
            lambda x, n: explainer.explain_targets(x, n, range(C)),
            lambda x, n: explainer.explain(x, n),
        ),
        "lrp+gi+sa shared / separate": (
            lambda x, n: explainer.explain(x, n, gradient=True),
            lambda x, n: (
                [explainer.explain(x, n)] + [explainer.attribute(x, n, method=m) for m in ("gi", "sa")]
            ),
        ),
    }
    batches = [(x.astype(np.float32), lengths) for x, lengths in batches]
    for name, calls in pairs.items():
        best = np.full((2, len(batches)), np.inf)
        for repeat in range(repeats + 1):  # repeat 0 warms up (traces) both
            for n, (x, lengths) in enumerate(batches):
                for k, call in enumerate(calls):
                    started = time.perf_counter()
                    call(x, lengths)
                    if repeat:
                        best[k, n] = min(best[k, n], time.perf_counter() - started)
        a, b = best.sum(axis=1)
        print(f"{name:>30}: {a:.3f} s / {b:.3f} s = {a / b:.3f}")


def parse_args() -> argparse.Namespace:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--sst", type=pathlib.Path, default=ROOT.parent / "shared/data/sst_test.jsonl")
    parser.add_argument("--buckets", default="8,16,24,32,48,64")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-sample", type=int, default=40)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    set_engine_threads(args.threads)
    rng = np.random.default_rng(0)
    corpus = load_corpus(args.sst, rng)
    models = {kind: random_model(rng, E, H, 1, True, C, kinds=kind) for kind in ("lstm", "gru")}
    batches = buckets(corpus, [int(b) for b in args.buckets.split(",")], args.batch)
    batches.sort(key=lambda batch: -batch[0].size)  # largest first: streams finish together
    tokens = sum(int(lengths.sum()) for _, lengths in batches)  # reviews beyond the last bucket are left out
    print(f"{len(corpus)} reviews, {tokens} tokens, {len(batches)} batches; buckets {args.buckets}")
    print(f"intra-op threads {args.threads}; numpy float64 reference extrapolated from a sample")
    streams = f"warm x{args.streams}"
    print(f"{'model':7} {'dtype':8} {'cold s':>7} {'warm s':>7} {streams:>8} {'tokens/s':>9} {'vs ref':>7}")
    references = {
        kind: reference_seconds_per_token(*model, corpus, args.reference_sample) * tokens
        for kind, model in models.items()
    }
    for dtype in ("float32", "float64"):
        explainers = {kind: LSTMExplainer(*model, dtype=dtype) for kind, model in models.items()}
        cold = {kind: time_pass(explainer, batches) for kind, explainer in explainers.items()}
        warm = {kind: [] for kind in models}
        parallel = {kind: [] for kind in models}
        cpu = {kind: [] for kind in models}  # process CPU seconds of the parallel passes
        for _ in range(args.repeats):  # the models take turns, so that a change of load hits both
            for kind, explainer in explainers.items():
                warm[kind].append(time_pass(explainer, batches))
                started = time.process_time()
                parallel[kind].append(time_pass(explainer, batches, args.streams))
                cpu[kind].append(time.process_time() - started)
        for kind in models:
            one, best = min(warm[kind]), min(parallel[kind])
            print(
                f"{kind:7} {dtype:8} {cold[kind]:7.3f} {one:7.3f} {best:8.3f} {tokens / best:9.0f} "
                f"{references[kind] / best:6.0f}x"
            )
        ratios = [min(times["gru"]) / min(times["lstm"]) for times in (warm, parallel, cpu)]
        print(
            f"GRU / LSTM cost per token, {dtype}: {ratios[0]:.2f} (1 stream), {ratios[1]:.2f} "
            f"(x{args.streams}), {ratios[2]:.2f} (CPU seconds, x{args.streams})"
        )
    length_scaling(*models["lstm"], rng)
    cost_ratios(*models["lstm"], batches, args.repeats)


if __name__ == "__main__":
    main()
