"""`lstm-lrp evaluate`: the word-deletion test of Arras et al. (2017), Sec. 5.2, on a labelled corpus.

Reviews are read, tokenised and embedded by the record functions that the pipeline's stages wrap (called
directly, without Beam), so they are exactly what `lstm-lrp run` explains. For each of LRP, Gradient ×
Input, Sensitivity Analysis and random order, the k = 0..max_k tokens most relevant for the true class are
deleted (vectors set to zero) from correctly classified reviews, the least relevant from misclassified
ones, and accuracy recorded. Writes DIR/deletion.parquet (method, k, accuracy, n_reviews, setting) and
DIR/deletion.png.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import TYPE_CHECKING

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import output
from pipeline.config import ConfigError, RunConfig, build_config, load_config_file
from pipeline.flags import FlagParser, add_evaluate_flags
from pipeline.output import DELETION_FILE, SUMMARY
from pipeline.plots import deletion_figure, method_label, save_png
from pipeline.provenance import KEY, differences, read_provenance, with_provenance
from pipeline.run import load_model, protected, run_provenance
from transforms import Fields, SharedModel, TokenizerSpec
from transforms.embed import embed
from transforms.model import LoadedModel
from transforms.read import expand_inputs, read_file
from transforms.records import Review, is_dead_letter
from transforms.tokenize import tokenize

if TYPE_CHECKING:
    from lrp.deletion import DeletionCounts

log = logging.getLogger("lstm_lrp")

PLOT_FILE = "deletion.png"
DELETION_SCHEMA = pa.schema(
    [
        ("method", pa.string()),
        ("k", pa.int32()),
        ("accuracy", pa.float64()),
        ("n_reviews", pa.int64()),
        ("setting", pa.string()),
    ]
)


class EvaluateError(ValueError):
    """A corpus that cannot be evaluated, or an output that would be overwritten; the message says why."""


def parse_evaluate_args(argv: list[str]) -> tuple[RunConfig, int, int]:
    """Flags -> validated RunConfig (the demo's corpus and model when none are named), max_k and seed."""
    parser = FlagParser(prog="lstm-lrp evaluate", argument_default=argparse.SUPPRESS)
    add_evaluate_flags(parser)
    args = vars(parser.parse_args(argv))
    max_k, seed = args.pop("max_k"), args.pop("seed")
    if max_k < 0:
        raise ConfigError(f"--max-k must be >= 0, got {max_k}.")
    file_settings = load_config_file(args["config"]) if "config" in args else {}
    flags = {k: v for k, v in args.items() if k not in ("debug", "verbose")}
    use_demo = not file_settings and "input" not in flags and "model" not in flags
    return build_config(file_settings, flags, use_demo), max_k, seed


def embedded_reviews(config: RunConfig, model: SharedModel, files: list[str]) -> list[Review]:
    """The corpus `files` read, tokenised and embedded exactly as `lstm-lrp run` does; dead letters are
    dropped."""
    fields = Fields(config.id_field, config.text_field, config.label_field)
    tokenizer = TokenizerSpec(config.tokenizer, config.lowercase, config.max_length, config.over_length)
    split, rule = tokenizer.splitter(), model.get().rule(config.oov)
    reviews = []
    for path in files:
        for row in read_file(path, config.format, fields):
            if row is not None and not is_dead_letter(row):
                row = tokenize(row, tokenizer, split)
            if row is not None and not is_dead_letter(row):
                row, _ = embed(row, rule)
            if row is not None and not is_dead_letter(row):
                reviews.append(row)
    return reviews


def labelled(records: list[dict], classes: int) -> list[dict]:
    """The records whose label is a class of the model; EvaluateError if there are none."""
    kept = [r for r in records if r["label"] is not None and 0 <= r["label"] < classes]
    if not kept:
        raise EvaluateError(
            f"None of the {len(records)} usable reviews has a label in 0..{classes - 1}; word deletion needs "
            "labels (see --label-field)."
        )
    if len(kept) < len(records):
        log.info("Leaving out %d reviews without a label of the model's classes.", len(records) - len(kept))
    return kept


def deletion_test(
    loaded: LoadedModel, records: list[dict], config: RunConfig, max_k: int, seed: int
) -> DeletionCounts:
    """Tally word deletion over length-sorted batches of records, every method of DELETION_METHODS."""
    from lrp.deletion import DELETION_METHODS, deletion_counts, token_scores
    from transforms.explain import chunks, padded_ids  # the engine, and TensorFlow, only once needed

    rng = np.random.default_rng(seed)
    total = None
    for batch in chunks(records, config.max_batch_tokens):
        ids, lengths = padded_ids(batch, loaded.zero_id)
        x, labels = loaded.table[ids], np.array([r["label"] for r in batch])
        scores = token_scores(
            loaded.explainer, x, lengths, labels, DELETION_METHODS, rng, config.eps, config.bias_factor
        )
        counts = deletion_counts(loaded.explainer, x, lengths, labels, scores, max_k)
        total = counts if total is None else total + counts
    return total


def deletion_provenance(config: RunConfig, classes: int, fs: fsspec.AbstractFileSystem, root: str) -> dict:
    """The provenance of deletion.parquet. Its run id is that of the run whose output is --output when that
    run explained the same reviews with the same model (so the run's report shows these curves), else a
    fresh one."""
    provenance = run_provenance(config, classes)
    try:
        with fs.open(f"{root}/{SUMMARY}", "r") as f:
            run = json.load(f)
    except (OSError, ValueError):
        return provenance
    different = differences(run, provenance) if run.get("run_id") else ["no run id"]
    if different:
        log.info(
            "%s is not the output of this evaluation's run (%s differ).", config.output, ", ".join(different)
        )
    else:
        provenance["run_id"] = run["run_id"]
    return provenance


def check_evaluate_output(config: RunConfig, files: list[str]) -> None:
    """Before any work: the output can be written and its files touch no input, model or config;
    EvaluateError if it holds results and not overwrite."""
    output.check_output(config.output)
    output.check_untouched(config.output, protected(config, files), names=(DELETION_FILE, PLOT_FILE))
    fs, root = output.filesystem(config.output)
    existing = [name for name in (DELETION_FILE, PLOT_FILE) if fs.exists(f"{root}/{name}")]
    if existing and not written_by_evaluate(fs, root):
        raise EvaluateError(
            f"{config.output!r} holds {' and '.join(existing)} that lstm-lrp evaluate did not write (no "
            f"{KEY!r} provenance in {DELETION_FILE}); move them: --overwrite replaces only its own files."
        )
    if existing and not config.overwrite:
        raise EvaluateError(
            f"{config.output!r} already holds {DELETION_FILE}; pass --overwrite to replace it."
        )


def written_by_evaluate(fs: fsspec.AbstractFileSystem, root: str) -> bool:
    """Whether OUTPUT/deletion.parquet exists and carries this tool's provenance record."""
    try:
        with fs.open(f"{root}/{DELETION_FILE}", "rb") as f:
            return read_provenance(pq.read_schema(f)) is not None
    except (OSError, ValueError, pa.ArrowException):
        return False


def write_results(rows: list[dict], provenance: dict, output_dir: str) -> None:
    """OUTPUT/deletion.parquet (carrying the provenance record) and OUTPUT/deletion.png (OUTPUT created if
    needed), each written beside its place and then renamed into it, so that neither is ever half written."""
    fs, root = output.filesystem(output_dir)
    fs.makedirs(root, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=with_provenance(DELETION_SCHEMA, provenance))
    staged = f"{root}/_incomplete-{provenance['run_id']}-"
    try:
        with fs.open(staged + PLOT_FILE, "wb") as f:
            save_png(deletion_figure(table.to_pandas()), f)
        with fs.open(staged + DELETION_FILE, "wb") as f:
            pq.write_table(table, f)
        fs.mv(staged + PLOT_FILE, f"{root}/{PLOT_FILE}")  # the plot first: deletion.parquet marks it ours
        fs.mv(staged + DELETION_FILE, f"{root}/{DELETION_FILE}")
    except BaseException:
        for name in (PLOT_FILE, DELETION_FILE):
            if fs.exists(staged + name):
                fs.rm(staged + name)
        raise


def describe(rows: list[dict], output: str) -> str:
    """Accuracy at a few k and the area under each curve (mean accuracy over k), for the terminal."""
    from lrp.deletion import DELETION_METHODS, SETTINGS

    max_k = max(r["k"] for r in rows)
    shown = sorted({k for k in (0, 1, 2, 3, 5, max_k) if k <= max_k})
    lines = [f"Word deletion (Arras et al. 2017) -> {output}/{DELETION_FILE}, {output}/{PLOT_FILE}"]
    for setting in SETTINGS:
        curves = [r for r in rows if r["setting"] == setting]
        if not curves:
            continue
        better = "lower" if setting == "correct" else "higher"
        lines.append(f"{setting} ({curves[0]['n_reviews']} reviews; accuracy, {better} is better):")
        lines.append(f"  {'method':<22}" + "".join(f"{'k=' + str(k):>7}" for k in shown) + f"{'mean':>8}")
        for method in DELETION_METHODS:
            accuracy = {r["k"]: r["accuracy"] for r in curves if r["method"] == method}
            cells = "".join(f"{accuracy[k]:>7.3f}" for k in shown)
            lines.append(f"  {method_label(method):<22}{cells}{np.mean(list(accuracy.values())):>8.3f}")
    return "\n".join(lines)


def evaluate(argv: list[str]) -> str:
    """Run the word-deletion test as the flags say; returns what to print."""
    config, max_k, seed = parse_evaluate_args(argv)
    files = expand_inputs(config.input, exclude=config.output)
    check_evaluate_output(config, files)
    model, loaded, _ = load_model(config, here=True)
    fs, root = output.filesystem(config.output)
    provenance = deletion_provenance(config, loaded.explainer.classes, fs, root)
    records = labelled(embedded_reviews(config, model, files), loaded.explainer.classes)
    log.info("Word deletion on %d reviews, k = 0..%d", len(records), max_k)
    rows = deletion_test(loaded, records, config, max_k, seed).rows()
    write_results(rows, provenance, config.output)
    return describe(rows, config.output)
