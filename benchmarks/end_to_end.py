"""End-to-end benchmark: `lstm-lrp run` on the SST test sentences repeated x1, x10, x24 (~1 M tokens).

    python benchmarks/end_to_end.py [--sst PATH] [--copies 1,10,24] [--profile] [-- extra run flags]

Builds a 60-d Embedding -> Bidirectional(LSTM(60)) -> Dense(5) Keras model with random weights over the SST
vocabulary, writes the corpus copies with unique review ids, and runs the CLI in a fresh process per size
(start-up included). Prints wall seconds, tokens/s, peak RSS and the per-token cost with start-up subtracted.
With --profile, the x1 run is also profiled in-process (DirectRunner, in-memory) and the time spent in each
stage's DoFns is printed.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pathlib
import pstats
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
STAGES = {
    "read+tokenize+embed+batch": ("transforms/read.py",),
    "explain": ("transforms/explain.py",),
    "check": ("transforms/check.py",),
    "write": ("apache_beam/io/iobase.py",),
}


def write_model(sentences: list[list[str]], directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A random-weight 60-unit bidirectional model over the corpus vocabulary, and its vocab.txt."""
    import keras

    tokens = ["<pad>", "<unk>", *sorted({t for s in sentences for t in s})]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(len(tokens), 60, mask_zero=True),
            keras.layers.Bidirectional(keras.layers.LSTM(60)),
            keras.layers.Dense(5),
        ]
    )
    model_path, vocab_path = directory / "model.keras", directory / "vocab.txt"
    model.save(model_path)
    vocab_path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return model_path, vocab_path


def write_corpus(records: list[dict], copies: int, path: pathlib.Path) -> int:
    """The records `copies` times with unique ids; returns the token count."""
    with path.open("w", encoding="utf-8") as f:
        for copy in range(copies):
            for r in records:
                f.write(json.dumps({**r, "id": f"{r['id']}-{copy}"}) + "\n")
    return copies * sum(len(r["text"].split()) for r in records)


def run_cli(flags: list[str]) -> tuple[float, float, dict]:
    """Run `python -m pipeline run` in a fresh process: wall seconds, peak RSS (GB), summary."""
    started = time.perf_counter()
    command = [sys.executable, "-c", RSS_WRAPPER, *flags]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"run failed:\n{done.stderr[-3000:]}")
    rss_kb = int(done.stdout.strip().splitlines()[-1])
    output = pathlib.Path(flags[flags.index("--output") + 1])
    return seconds, rss_kb / 1e6, json.loads((output / "summary.json").read_text())


RSS_WRAPPER = """
import resource, sys
from pipeline.cli import main
code = main(["run", *sys.argv[1:]])
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(max(own, children))
sys.exit(code)
"""


def profile_stages(flags: list[str]) -> dict[str, float]:
    """Seconds spent in each stage's code (cumulative over the stage's modules) in an in-process run."""
    from pipeline.run import run

    profiler = cProfile.Profile()
    profiler.runcall(run, flags)
    stats = pstats.Stats(profiler).stats
    shares = {}
    for stage, files in STAGES.items():
        entries = [v for (file, _, name), v in stats.items() if file.endswith(files) and name == "process"]
        shares[stage] = sum(v[3] for v in entries)
    return shares


HEADER = f"{'copies':>6} {'reviews':>8} {'tokens':>9} {'wall s':>8} {'tokens/s':>9} {'peak GB':>8}"


def report_scaling(rows: list[tuple[int, int, float]], startup: float) -> None:
    """Per-token cost of each size with the start-up (a run on 10 reviews) subtracted."""
    print(f"start-up (10 reviews): {startup:.1f} s")
    costs = [(seconds - startup) / tokens for _, tokens, seconds in rows]
    for (copies, _, _), cost in zip(rows, costs):
        print(f"  x{copies}: {cost * 1e6:.1f} us/token after start-up")
    print(f"largest / smallest per-token cost: {max(costs) / min(costs):.2f}")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--sst", type=pathlib.Path, default=ROOT.parent / "shared/data/sst_test.jsonl")
    parser.add_argument("--copies", default="1,10,24")
    parser.add_argument("--profile", action="store_true")
    args, extra = parser.parse_known_args()
    records = [json.loads(line) for line in args.sst.open(encoding="utf-8")]
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        model, vocab_path = write_model([r["text"].split() for r in records], work)
        model_flags = ["--model", str(model), "--vocab", str(vocab_path), *extra]
        (work / "startup.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:10]))
        startup, _, _ = run_cli(
            ["--input", str(work / "startup.jsonl"), "--output", str(work / "s"), *model_flags]
        )
        print(HEADER)
        rows = []
        for copies in (int(c) for c in args.copies.split(",")):
            corpus = work / f"sst_x{copies}.jsonl"
            tokens = write_corpus(records, copies, corpus)
            flags = ["--input", str(corpus), "--output", str(work / f"out_x{copies}"), *model_flags]
            seconds, rss, summary = run_cli(flags)
            assert summary["explained"] == copies * len(records), summary
            rows.append((copies, tokens, seconds))
            rate = tokens / seconds
            print(f"{copies:6d} {copies * len(records):8d} {tokens:9d} {seconds:8.1f} {rate:9.0f} {rss:8.2f}")
        report_scaling(rows, startup)
        if args.profile:
            corpus = work / f"sst_x{rows[0][0]}.jsonl"
            shares = profile_stages(
                ["--input", str(corpus), "--output", str(work / "profiled"), *model_flags]
            )
            total = sum(shares.values())
            print("time per stage (in-process profile of the first size):")
            for stage, seconds in shares.items():
                print(f"  {stage:26} {seconds:7.2f} s {100 * seconds / total:5.1f}%")


if __name__ == "__main__":
    main()
