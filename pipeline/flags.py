"""The flags of every `lstm-lrp` command, defined without importing Beam or TensorFlow, so that `--help`,
`--version` and flag errors answer at once."""

from __future__ import annotations

import argparse


class FlagError(ValueError):
    """A flag that does not parse (an unknown choice, --batch-size abc); the message names it."""


class FlagParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are FlagErrors: one line on the terminal, exit code 2, like every
    other refusal."""

    def error(self, message: str):
        raise FlagError(f"{message[0].upper()}{message[1:]}; see {self.prog} --help.")


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    """--verbose and --debug, which every command takes."""
    add = parser.add_argument
    add("--verbose", action="store_true", help="show the messages of TensorFlow, Beam and other libraries")
    add("--debug", action="store_true", help="show tracebacks (implies --verbose)")


def add_corpus_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that say what to read and explain with, shared by `run` and `evaluate`; every one overrides the
    config file (YAML key = flag without dashes, with underscores)."""
    add = parser.add_argument
    add("--config", help="YAML file of settings (keys as the flags, with underscores)")
    add("--input", nargs="+", action="extend", help="files, globs or fsspec URLs of reviews")
    add("--format", help="auto|text|jsonl|csv|parquet (auto: by extension)")
    add("--id-field", help="field holding the review id (default id; else file:line)")
    add("--text-field", help="field holding the review text (default text)")
    add("--label-field", help="field holding an integer label (default label; '' for none)")
    add(
        "--model",
        help="model file or directory: .keras, Keras 2 .h5, PyTorch .safetensors/.pt/.pth (or a .yaml/.json "
        "model spec), or an ArrasL directory",
    )
    add("--embeddings", help="token -> vector table for models without an Embedding layer")
    add("--vocab", help="vocabulary file (one token a line, line number = id)")
    add("--eps", type=float, help="LRP-epsilon stabiliser (default 1e-3)")
    add("--bias-factor", type=float, help="share of bias relevance redistributed (default 0; 1 conserves)")
    add("--dtype", help="float32|float64")
    add("--lowercase", action=argparse.BooleanOptionalAction, help="lowercase before tokenising (default on)")
    add("--tokenizer", help="whitespace|regex:PATTERN")
    add("--oov", help="zero|skip|dead-letter: what unknown tokens become")
    add("--max-length", type=int, help="longest review in tokens (default no limit)")
    add("--max-batch-tokens", type=int, help="padded tokens per engine call (default 65536)")
    add("--class-names", help="comma-separated names of the model's classes, e.g. negative,positive")
    add_output_flags(parser)


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of `lstm-lrp run`: the corpus flags and how to batch, check and write."""
    add_corpus_flags(parser)
    add = parser.add_argument
    add("--output", help="output directory or URL (default ./lrp-output)")
    add("--target", help="predicted|label|all|INT: the class explained")
    add("--method", help="lrp,gi,sa: relevance methods written to tokens/ (default lrp)")
    add("--over-length", help="truncate|dead-letter: what happens to longer reviews (default truncate)")
    add("--buckets", help="length bucket boundaries (default 8,16,24,32,48,64,96,128,192,256)")
    add("--batch-size", type=int, help="reviews per batch (default 256)")
    add(
        "--engine-streams",
        type=int,
        help="engine calls in flight per worker process, each on a whole batch, while the next reviews are "
        "read (default 2: one per core; with N worker processes per machine, cores / N)",
    )
    add(
        "--split-bytes",
        type=int,
        help="bytes per read split of text/JSONL files (default 1 MiB; 0: whole files)",
    )
    add("--conservation-tolerance", type=float, help="|residual| allowed per unit logit (default 1e-4)")
    add("--overwrite", action="store_true", help="replace the results in a non-empty output directory")


def add_evaluate_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of `lstm-lrp evaluate`: the corpus and model settings of `run`, and the deletion range."""
    add_corpus_flags(parser)
    add = parser.add_argument
    add("--output", required=True, help="directory for deletion.parquet and deletion.png")
    add("--overwrite", action="store_true", help="replace an earlier deletion.parquet in --output")
    add("--max-k", type=int, default=10, help="delete up to this many tokens (default 10)")
    add("--seed", type=int, default=0, help="seed of the random deletion order (default 0)")


REPORT_FILE = "report.html"


def add_report_flags(parser: argparse.ArgumentParser) -> None:
    """The arguments of `lstm-lrp report`."""
    add = parser.add_argument
    add("output_dir", help="a run's --output directory (or URL)")
    add("--html", help=f"the page to write (default OUTPUT_DIR/{REPORT_FILE})")
    add("--examples", type=int, default=20, help="reviews in each list of examples (default 20)")
    add("--min-count", type=int, default=5, help="occurrences for a token's mean to rank (default 5)")
    add("--top", type=int, default=15, help="tokens per table (default 15)")
    add("--class-names", help="comma-separated names of the classes (default: those given to run)")
    add("--seed", type=int, default=0, help="seed of the random sample (default 0)")
    add_output_flags(parser)
