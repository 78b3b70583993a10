"""Sweep of length-bucket boundaries and batch sizes for the engine: tokens/s and padding waste.

    python benchmarks/sweep.py [--sst PATH] [--copies 2]

Batches are formed as the pipeline forms them (reviews of one bucket, at most batch-size each, padded to the
longest review of the batch). Padding waste = padded tokens / real tokens - 1. Warm float32 timings.
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np
from engine import ROOT, C, E, H, buckets, load_corpus, random_model, time_pass

from lrp import LSTMExplainer

BUCKET_SETS = ("8,16,32,64,128,256", "8,16,24,32,48,64,128,256", "16,32,64,128,256", "64,128,256")
BATCH_SIZES = (64, 256, 1024)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sst", type=pathlib.Path, default=ROOT.parent / "shared/data/sst_test.jsonl")
    parser.add_argument("--copies", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    corpus = load_corpus(args.sst, rng) * args.copies
    rng.shuffle(corpus)
    tokens = sum(len(x) for x in corpus)
    layers, dense = random_model(rng, E, H, 1, True, C)
    explainer = LSTMExplainer(layers, dense, dtype="float32")
    print(f"{len(corpus)} reviews, {tokens} tokens")
    print(f"{'buckets':28} {'batch':>6} {'calls':>6} {'waste':>7} {'warm s':>7} {'tokens/s':>9}")
    for bounds in BUCKET_SETS:
        for batch in BATCH_SIZES:
            batches = buckets(corpus, [int(b) for b in bounds.split(",")], batch)
            padded = sum(x.shape[0] * x.shape[1] for x, _ in batches)
            time_pass(explainer, batches)
            warm = min(time_pass(explainer, batches) for _ in range(2))
            print(
                f"{bounds:28} {batch:6d} {len(batches):6d} {padded / tokens - 1:7.1%} {warm:7.3f} "
                f"{tokens / warm:9.0f}"
            )


if __name__ == "__main__":
    main()
