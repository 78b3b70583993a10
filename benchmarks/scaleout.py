"""Scale-out benchmark: work units per stage, in-process against two workers, padding, row groups, and a
simulation of 100 workers on a 1 B-token corpus.

    python benchmarks/scaleout.py [--sst PATH] [--copies 48] [--repeat 2] [-- extra run flags]

SST repeated `copies` times (unique ids) in one JSONL file and in 8 files, explained by a random-weight
60-unit bidirectional LSTM (as benchmarks/end_to_end.py) with `lstm-lrp run` in a fresh process, in-process
(the DirectRunner's default) and with `--direct_running_mode=multi_processing --direct_num_workers=2
--engine-streams 1` (one engine call per worker and core),
alternating so that a busy machine slows both alike. Prints per run: wall seconds, CPU use (CPU seconds of
the run's processes over wall seconds x cores: how much of the machine it kept busy), read splits and explain
batches (independent work units), padding waste, row groups of tokens/; whether the two modes give identical
rows (review_id, position, token, relevance); the end-to-end cost per token against the engine's own on the
same batches; a 10-review run against `python -c "import tensorflow, apache_beam"`.

Then a SIMULATION (a model fed with the per-unit costs measured here, not a measurement) of wall time and
worker utilisation for 100 workers on 1 B tokens in one file and in 1,000 files: the design before issue
#11 (one reader per file; batching keyed by 10 buckets x 4 shards, so at most 40 explaining workers, each
key's reviews explained serially) against the current one (1 MiB read splits, batches formed and explained
where they are read).
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import end_to_end as bench

ROOT = pathlib.Path(__file__).resolve().parents[1]

TWO_WORKERS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2", "--engine-streams", "1"]
"""Two worker processes with one engine call each: one per core of this 2-core machine."""
FILES = 8
CORES = os.cpu_count() or 1
SPLIT_BYTES = 1 << 20
OLD_KEYS = 10 * 4
"""Explain parallelism of the design before #11: 10 length buckets x 4 shards."""


def timed_run(flags: list[str]) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of the run's processes, its worker processes included, summary) of one
    `lstm-lrp run` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, _, summary = bench.run_cli(flags)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, summary


def write_files(records: list[dict], copies: int, paths: list[pathlib.Path]) -> int:
    """The records `copies` times with unique ids, dealt round-robin over `paths`; returns the token count."""
    handles = [p.open("w", encoding="utf-8") for p in paths]
    n = 0
    for copy in range(copies):
        for r in records:
            handles[n % len(handles)].write(json.dumps({**r, "id": f"{r['id']}-{copy}"}) + "\n")
            n += 1
    for h in handles:
        h.close()
    return copies * sum(len(r["text"].split()) for r in records)


def row_groups(directory: pathlib.Path) -> list[int]:
    import pyarrow.parquet as pq

    return [
        pq.ParquetFile(p).metadata.row_group(g).num_rows
        for p in sorted(directory.glob("tokens/*.parquet"))
        for g in range(pq.ParquetFile(p).metadata.num_row_groups)
    ]


def token_rows(directory: pathlib.Path):
    """tokens/ as a table of (review_id, position, token, relevance) sorted by review id and position."""
    import pyarrow.dataset as ds

    table = ds.dataset(directory / "tokens").to_table(columns=["review_id", "position", "token", "relevance"])
    return table.sort_by([("review_id", "ascending"), ("position", "ascending")])


def compare_rows(a: pathlib.Path, b: pathlib.Path) -> str:
    import numpy as np

    x, y = token_rows(a), token_rows(b)
    if x.num_rows != y.num_rows:
        return f"DIFFERENT: {x.num_rows} vs {y.num_rows} rows"
    same = all(x.column(c).equals(y.column(c)) for c in ("review_id", "position", "token"))
    gap = float(np.max(np.abs(x.column("relevance").to_numpy() - y.column("relevance").to_numpy())))
    exact = x.column("relevance").equals(y.column("relevance"))
    return (
        f"{'identical' if same and exact else 'DIFFERENT'} ({x.num_rows} rows, max |Δ relevance| {gap:.2g})"
    )


def engine_cost(
    records: list[dict], splits: int, model: pathlib.Path, vocab_path: pathlib.Path, streams: int
) -> tuple[float, float]:
    """(µs per real token, padding waste) of the engine alone on the pipeline's own batches of the corpus
    `records`: cut into `splits` consecutive parts (its read splits), each batched as ReadBatches does
    (buckets, batches of 256, --max-batch-tokens chunks); warm, the faster of `streams` whole batches at
    once (as ExplainBatches runs them) and each batch split over `streams` threads."""
    from pipeline.config import RunConfig
    from pipeline.run import load_model
    from transforms.bucket import DEFAULT_BUCKETS, Batcher
    from transforms.embed import embed
    from transforms.explain import chunks, padded_ids
    from transforms.records import is_dead_letter
    from transforms.tokenize import TokenizerSpec, tokenize

    _, loaded, _ = load_model(RunConfig(input=("x",), model=str(model), vocab=str(vocab_path)), here=True)
    spec = TokenizerSpec()
    split = spec.splitter()
    reviews = []
    for n, r in enumerate(records):
        row = {"review_id": str(n), "source": str(n), "text": r["text"], "label": None}
        row = tokenize(row, spec, split)
        if not is_dead_letter(row):
            reviews.append(embed(row, loaded.rule("zero"))[0])
    per_split = -(-len(reviews) // splits)
    batches = []
    for start in range(0, len(reviews), per_split):
        batcher = Batcher(DEFAULT_BUCKETS, 256)
        batches += [b for r in reviews[start : start + per_split] for b in batcher.add(r)]
        batches += [b for _, b in batcher.flush()]
    calls = [c for b in batches for c in chunks(b, 65_536)]

    inputs = [padded_ids(chunk, loaded.zero_id) for chunk in calls]

    def explain(ids_lengths: tuple, split: int) -> None:
        ids, lengths = ids_lengths
        loaded.explainer.explain(loaded.table[ids], lengths, None, 1e-3, 0.0, split)

    def explain_all(concurrent: bool) -> float:
        """Seconds for every call: `streams` calls at once, or one at a time split `streams` ways."""
        started = time.perf_counter()
        if concurrent:
            with ThreadPoolExecutor(streams) as pool:
                list(pool.map(explain, inputs, [1] * len(inputs)))
        else:
            for ids_lengths in inputs:
                explain(ids_lengths, streams)
        return time.perf_counter() - started

    explain_all(False)  # tracing
    seconds = min(explain_all(concurrent) for concurrent in (False, True, False, True))
    padded = sum(ids.size for ids, _ in inputs)
    tokens = sum(len(r["ids"]) for r in reviews)
    return 1e6 * seconds / tokens, padded / tokens - 1


def prepare_cost(path: pathlib.Path, model: pathlib.Path, vocab_path: pathlib.Path) -> float:
    """µs per token to read, tokenise and embed (the work fused before explaining), one thread."""
    from pipeline.config import RunConfig
    from pipeline.run import load_model
    from transforms.embed import embed
    from transforms.read import Fields, read_file
    from transforms.tokenize import TokenizerSpec, tokenize

    _, loaded, _ = load_model(RunConfig(input=("x",), model=str(model), vocab=str(vocab_path)), here=True)
    spec = TokenizerSpec()
    split = spec.splitter()
    started, tokens = time.perf_counter(), 0
    rule = loaded.rule("zero")
    for row in read_file(str(path), "auto", Fields()):
        row, _ = embed(tokenize(row, spec, split), rule)
        tokens += len(row.get("ids", ()))
    return 1e6 * (time.perf_counter() - started) / tokens


def simulate(tokens: float, files: int, workers: int, costs: dict) -> dict[str, tuple[float, float]]:
    """SIMULATION: design -> (wall seconds, worker utilisation = work / (workers x wall)) from per-unit costs
    (µs per token: prepare = read + tokenise + embed, explain; bytes per token; a worker's start-up seconds;
    the share of the tokens in the largest length bucket). Workers are this VM's 2-core kind; shuffles, IO
    latency and stragglers are left out, which flatters both designs alike."""
    prepare, explain = costs["prepare_us"] * 1e-6, costs["explain_us"] * 1e-6
    work = tokens * (prepare + explain)
    # Before: each file read by one worker thread, then a shuffle to 40 keys explained serially per key.
    readers = min(files, workers)
    read = tokens * prepare / readers * (math.ceil(files / readers) * readers / files)
    busiest_key = tokens * costs["largest_bucket_share"] / 4  # a bucket's tokens over its 4 shards
    old_explain = max(busiest_key, tokens / min(OLD_KEYS, workers)) * explain
    old_wall = costs["startup_s"] + read + old_explain
    # Now: ~1 MiB splits of every file, each read, batched and explained where it is read.
    splits = max(files, math.ceil(tokens * costs["bytes_per_token"] / SPLIT_BYTES))
    per_split = tokens / splits * (prepare + explain)
    new_wall = costs["startup_s"] + math.ceil(splits / workers) * per_split
    return {
        name: (wall, work / (workers * wall)) for name, wall in (("before #11", old_wall), ("now", new_wall))
    }


def batching_options(lengths: list[int], splits: int, batch_size: int = 256) -> dict[str, tuple[int, float]]:
    """Option -> (batches, padding waste) for the corpus' review lengths in file order, read in `splits`
    equal parts: the Batcher per split (now: length buckets, sorted SORT_BATCHES batches at a time), keyed
    buckets over the whole corpus in arrival order (before #11, any shard count), the same per split,
    sorting each split by length and cutting every batch_size (SortAndBatchElements-like), and batches of
    consecutive reviews (BatchElements without bucket boundaries)."""
    from transforms.bucket import DEFAULT_BUCKETS, Batcher, bucket_of

    def waste(batches: list[list[int]]) -> tuple[int, float]:
        padded = sum(len(b) * max(b) for b in batches)
        return len(batches), padded / sum(map(sum, batches)) - 1

    def arrival(part: list[int]) -> list[list[int]]:
        buckets: dict = collections.defaultdict(list)
        for n in part:
            buckets[bucket_of(n, DEFAULT_BUCKETS)].append(n)
        return [b[i : i + batch_size] for b in buckets.values() for i in range(0, len(b), batch_size)]

    def batcher(part: list[int]) -> list[list[int]]:
        cut = Batcher(DEFAULT_BUCKETS, batch_size)
        batches = [b for n in part for b in cut.add({"ids": range(n)})] + [b for _, b in cut.flush()]
        return [[len(r["ids"]) for r in b] for b in batches]

    size = -(-len(lengths) // splits)
    parts = [lengths[i : i + size] for i in range(0, len(lengths), size)]
    sort_cut = [sorted(p)[i : i + batch_size] for p in parts for i in range(0, len(p), batch_size)]
    return {
        "Batcher per split (now)": waste([b for p in parts for b in batcher(p)]),
        "buckets over the corpus (before)": waste(arrival(lengths)),
        "buckets per split, arrival order": waste([b for p in parts for b in arrival(p)]),
        "sort per split, cut": waste(sort_cut),
        "consecutive reviews": waste(
            [lengths[i : i + batch_size] for i in range(0, len(lengths), batch_size)]
        ),
    }


def import_seconds() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tensorflow, apache_beam"], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--sst", type=pathlib.Path, default=ROOT.parent / "shared/data/sst_test.jsonl")
    parser.add_argument("--copies", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=2)
    args, extra = parser.parse_known_args()
    records = [json.loads(line) for line in args.sst.open(encoding="utf-8")]
    from lrp.explainer import set_engine_threads

    # before this process first runs TensorFlow (writing the model): the engine alone then runs as the
    # pipeline's workers run it, one intra-op thread per engine call
    assert set_engine_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        model, vocab_path = bench.write_model([r["text"].split() for r in records], work)
        flags = ["--model", str(model), "--vocab", str(vocab_path), *extra]
        one = work / "one" / "sst.jsonl"
        one.parent.mkdir()
        tokens = write_files(records, args.copies, [one])
        (work / "eight").mkdir()
        write_files(records, args.copies, [work / "eight" / f"part{k}.jsonl" for k in range(FILES)])
        layouts = {"1 file": [str(one)], f"{FILES} files": [str(work / "eight" / "*.jsonl")]}
        print(
            f"SST x{args.copies}: {args.copies * len(records)} reviews, {tokens} tokens, "
            f"{one.stat().st_size} bytes"
        )
        print(
            f"{'layout':8} {'mode':10} {'wall s':>7} {'CPU use':>8} {'splits':>7} {'batches':>8} "
            f"{'padding':>8} {'row groups (tokens/)':>30}"
        )
        walls: dict = {}
        outputs: dict = {}
        for attempt in range(args.repeat):
            for layout, inputs in layouts.items():
                for mode, mode_flags in (("in-process", []), ("2 workers", TWO_WORKERS)):
                    out = work / f"out-{len(walls)}-{attempt}-{layout[0]}-{mode[0]}"
                    run_flags = ["--input", *inputs, "--output", str(out), *flags, *mode_flags]
                    seconds, cpu, summary = timed_run(run_flags)
                    assert summary["accounting_ok"] and summary["tokens"] == tokens, summary
                    walls.setdefault((layout, mode), []).append(seconds)
                    outputs[(layout, mode)] = out
                    groups = row_groups(out)
                    units = summary["work_units"]
                    shown = f"{len(groups)} of {min(groups)}..{max(groups)} rows"
                    print(
                        f"{layout:8} {mode:10} {seconds:7.1f} {cpu / seconds / CORES:8.0%} "
                        f"{units['read_splits']:7d} {units['explain_batches']:8d} "
                        f"{summary['padding_waste']:8.1%} {shown:>30}"
                    )
        for layout in layouts:
            inproc, two = walls[(layout, "in-process")], walls[(layout, "2 workers")]
            ratios = [a / b for a, b in zip(inproc, two)]
            print(
                f"{layout}: in-process {statistics.median(inproc):.1f} s, "
                f"2 workers {statistics.median(two):.1f} s; "
                f"speed-up per pair {', '.join(f'{r:.2f}x' for r in ratios)}; rows: "
                f"{compare_rows(outputs[(layout, 'in-process')], outputs[(layout, '2 workers')])}"
            )
        small = work / "ten.jsonl"
        small.write_text("".join(json.dumps(r) + "\n" for r in records[:10]), encoding="utf-8")
        startups = [
            bench.run_cli(["--input", str(small), "--output", str(work / f"ten{k}"), *flags])[0]
            for k in range(2)
        ]
        imports = [import_seconds() for _ in range(2)]
        startup = min(startups)
        print(
            f"10-review run: {startup:.1f} s; "
            f"python -c 'import tensorflow, apache_beam': {min(imports):.1f} s "
            f"(difference {startup - min(imports):.1f} s)"
        )
        splits = -(-one.stat().st_size // SPLIT_BYTES)
        engine_us, waste = engine_cost(records * args.copies, splits, model, vocab_path, streams=2)
        end_to_end = 1e6 * (statistics.median(walls[("1 file", "in-process")]) - startup) / tokens
        print(
            f"per token after start-up, in-process: {end_to_end:.2f} µs; "
            f"engine alone on the same batches (best of 2 streams, "
            f"padding {waste:.1%}): {engine_us:.2f} µs; ratio {end_to_end / engine_us:.2f}"
        )
        prepare_us = prepare_cost(one, model, vocab_path)
        print(f"read + tokenise + embed, one thread: {prepare_us:.2f} µs per token")
        from transforms.bucket import DEFAULT_BUCKETS, bucket_of

        per_bucket: collections.Counter = collections.Counter()
        for r in records:
            n = len(r["text"].split())
            per_bucket[bucket_of(max(n, 1), DEFAULT_BUCKETS)] += n
        costs = {
            "prepare_us": prepare_us,
            "explain_us": engine_us,
            "bytes_per_token": one.stat().st_size / tokens,
            "startup_s": startup,
            "largest_bucket_share": max(per_bucket.values()) / sum(per_bucket.values()),
        }
        lengths = [max(1, len(r["text"].split())) for r in records] * args.copies
        print(
            f"batching options on SST x{args.copies} in {splits} splits (computed from the review lengths):"
        )
        for option, (batches, waste_share) in batching_options(lengths, splits).items():
            print(f"  {option:34} {batches:6d} batches  padding {waste_share:6.1%}")
        print("SIMULATION (a model from the costs above, not a measurement): 100 workers, 1 B tokens")
        print(f"  costs: {json.dumps({k: round(v, 3) for k, v in costs.items()})}")
        print(f"  {'corpus':12} {'design':11} {'wall':>10} {'utilisation':>12}")
        for files in (1, 1000):
            for design, (wall, use) in simulate(1e9, files, 100, costs).items():
                print(f"  {f'{files} file(s)':12} {design:11} {wall / 3600:8.2f} h {use:12.1%}")


if __name__ == "__main__":
    main()
