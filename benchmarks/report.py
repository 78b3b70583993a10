"""Report benchmark: `lstm-lrp report` on a synthetic run output of many tokens; prints wall seconds and
peak RSS of the report process (the goal: < 500 MB for 4 M tokens, without TensorFlow).

    python benchmarks/report.py [--tokens 4000000] [--review-length 20] [--methods lrp]

Writes tokens/ and reviews/ Parquet files in the pipeline's schemas (random relevances over a Zipf-like
vocabulary of 20,000 words, 1 in 10 texts repeated), then runs the CLI in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = 8
VOCAB = 20_000


def write_output(directory: pathlib.Path, tokens: int, length: int, methods: list[str]) -> None:
    """A run output of `tokens` tokens: reviews of `length` tokens, each explained for its predicted class
    by every method."""
    from transforms.schemas import REVIEWS_DIR, REVIEWS_SCHEMA, SUMMARY, TOKENS_DIR, TOKENS_SCHEMA

    rng = np.random.default_rng(0)
    words = np.array([f"w{n}" for n in range(VOCAB)])
    reviews = tokens // length // len(methods)
    per_file = -(-reviews // FILES)
    for name in (TOKENS_DIR, REVIEWS_DIR):
        (directory / name).mkdir(parents=True)
    for part in range(FILES):
        ids = np.arange(part * per_file, min(reviews, (part + 1) * per_file))
        n = len(ids)
        texts = np.minimum(rng.zipf(1.3, size=(n, length)), VOCAB) - 1
        texts[::10] = texts[0]  # repeated texts
        logits = rng.normal(size=(n, 2)).astype(np.float32)
        predicted = logits.argmax(axis=1).astype(np.int32)
        review_id = np.char.add("r", ids.astype(str))
        source = np.char.add("corpus.jsonl:", ids.astype(str))
        rows = n * length
        token_columns = {
            "review_id": np.repeat(review_id, length),
            "source": pa.array(np.repeat(source, length)).dictionary_encode(),
            "position": np.tile(np.arange(length, dtype=np.int32), n),
            "token": words[texts.ravel()],
            "target_class": np.repeat(predicted, length),
        }
        tables = [
            pa.table(
                {**token_columns, "relevance": rng.normal(size=rows).astype(np.float32), "method": [m] * rows}
            ).select(TOKENS_SCHEMA.names)
            for m in methods
        ]
        pq.write_table(
            pa.concat_tables(tables).cast(TOKENS_SCHEMA), directory / TOKENS_DIR / f"part-{part}.parquet"
        )
        score = logits[np.arange(n), predicted].astype(np.float64)
        review_table = pa.table(
            {
                "review_id": review_id,
                "source": source,
                "n_tokens": np.full(n, length, np.int32),
                "truncated": np.zeros(n, bool),
                "label": rng.integers(0, 2, n).astype(np.int32),
                "predicted_class": predicted,
                "target_class": predicted,
                "target_score": score,
                "logits": list(logits),
                "relevance_sum": score,
                "rest": np.zeros(n),
                "absorbed": np.zeros(n),
                "conservation_residual": rng.normal(scale=1e-3, size=n),
            }
        )
        pq.write_table(review_table.cast(REVIEWS_SCHEMA), directory / REVIEWS_DIR / f"part-{part}.parquet")
    summary = {
        "run_id": "benchmark",
        "class_names": ["negative", "positive"],
        "settings": {"input": ["synthetic"]},
    }
    (directory / SUMMARY).write_text(json.dumps(summary), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=4_000_000)
    parser.add_argument("--review-length", type=int, default=20)
    parser.add_argument("--methods", default="lrp")
    parser.add_argument("--write", help=argparse.SUPPRESS)  # internal: only write the output there
    args = parser.parse_args()
    if args.write:
        write_output(pathlib.Path(args.write), args.tokens, args.review_length, args.methods.split(","))
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "out"
        # written by another process: a child forked from a process holding the data would count it
        sizes = [
            "--tokens",
            str(args.tokens),
            "--review-length",
            str(args.review_length),
            "--methods",
            args.methods,
        ]
        subprocess.run(
            [sys.executable, __file__, "--write", str(out), *sizes], check=True, capture_output=True
        )
        size = sum(p.stat().st_size for p in out.rglob("*.parquet")) / 1e6
        started = time.perf_counter()
        command = [sys.executable, "-m", "pipeline", "report", str(out)]  # the page: OUTPUT/REPORT_FILE
        with open(out.parent / "stderr", "wb") as stderr:
            child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
            _, status, usage = os.wait4(child.pid, 0)  # the report process's own peak, not the writer's
        seconds = time.perf_counter() - started
        if status:
            sys.exit(f"the report failed: {(out.parent / 'stderr').read_text()[-3000:]}")
        peak = usage.ru_maxrss / 1024
        print(
            f"report on {args.tokens:,} tokens ({size:.0f} MB of Parquet): {seconds:.1f} s, "
            f"peak RSS {peak:.0f} MB"
        )


if __name__ == "__main__":
    main()
