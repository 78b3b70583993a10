"""`run(argv=None, test_pipeline=None)`: the main job, from flags to a published output directory."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import pickle
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import apache_beam as beam
from apache_beam.options import pipeline_options
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import create_runner

from pipeline import output
from pipeline.config import ConfigError, RunConfig, build_config, load_config_file
from pipeline.summary import build_summary, counters, dead_letter_reasons
from transforms.read import expand_inputs

if TYPE_CHECKING:
    from transforms.model import LoadedModel, SharedModel

log = logging.getLogger("lstm_lrp")


class RunError(ValueError):
    """A model, vocabulary or embedding file that cannot be used; the message names it."""


class FlagParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors (an unknown choice, --batch-size abc) are ConfigErrors: one line on
    the terminal, exit code 2, like every other refusal."""

    def error(self, message: str):
        raise ConfigError(f"{message[0].upper()}{message[1:]}; see {self.prog} --help.")


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
    add("--debug", action="store_true", help="show tracebacks")


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
    add("--engine-streams", type=int, help="concurrent engine calls per batch (default 2: one per core)")
    add(
        "--split-bytes",
        type=int,
        help="bytes per read split of text/JSONL files (default 1 MiB; 0: whole files)",
    )
    add("--conservation-tolerance", type=float, help="|residual| allowed per unit logit (default 1e-4)")
    add("--overwrite", action="store_true", help="replace the results in a non-empty output directory")


def parse_run_args(argv: list[str] | None) -> tuple[RunConfig, list[str]]:
    """Flags -> validated RunConfig and the remaining (Beam pipeline) arguments."""
    parser = FlagParser(prog="lstm-lrp run", argument_default=argparse.SUPPRESS)
    add_run_flags(parser)
    args, beam_args = parser.parse_known_args(argv)
    flags = {k: v for k, v in vars(args).items() if k != "debug"}
    file_settings = load_config_file(args.config) if "config" in args else {}
    use_demo = not file_settings and "input" not in flags and "model" not in flags
    check_beam_args(beam_args, parser)
    return build_config(file_settings, flags, use_demo), beam_args


class BeamFlagParser(pipeline_options._BeamArgumentParser):
    """Beam's own parser of pipeline options, whose errors (--direct_num_workers=abc) are ConfigErrors."""

    def error(self, message: str):
        raise ConfigError(f"Beam pipeline option {message[0].lower()}{message[1:]}.")


def beam_parser() -> BeamFlagParser:
    """A parser of every Beam pipeline option registered in this process."""
    parser = BeamFlagParser(add_help=False)
    pending = list(PipelineOptions.__subclasses__())
    while pending:
        options = pending.pop()
        pending += options.__subclasses__()
        options._add_argparse_args(parser)
    return parser


def check_beam_args(beam_args: list[str], parser: argparse.ArgumentParser) -> None:
    """Refuse a flag that is neither ours nor a Beam pipeline option (a typo such as --ouput must not be
    dropped by Beam with only a warning), a Beam option's impossible value and an unknown runner."""
    beam = beam_parser()
    known = {flag for action in beam._actions for flag in action.option_strings}
    ours = [flag for action in parser._actions for flag in action.option_strings]
    for arg in beam_args:
        name = arg.split("=", 1)[0]
        if name.startswith("--") and name not in known:
            guess = difflib.get_close_matches(name, ours + sorted(known), n=1)
            hint = f"; did you mean {guess[0]}?" if guess else "; see lstm-lrp run --help."
            raise ConfigError(f"Unknown flag {name}{hint}")
    runner = beam.parse_known_args(beam_args)[0].runner
    if runner is not None:
        try:
            create_runner(runner)
        except (ValueError, ImportError) as e:
            detail = str(e).split(". ")[0].removesuffix(".")
            raise ConfigError(f"--runner {runner}: {detail}; see Beam's list of runners.") from None


def load_model(config: RunConfig) -> tuple[SharedModel, LoadedModel]:
    """Load the model on the driver so bad files fail before any work; RunError names the file.

    Loaded through the shared handle: while the caller holds the LoadedModel, workers in this process
    (the DirectRunner's) use it instead of loading their own. The engine (and TensorFlow) is imported
    only after every setting has been checked and a .keras file's layers have been read from its config.
    """
    from lrp.importers.models import check_model_file

    with model_errors(config):
        check_model_file(config.model)
    from transforms.model import ModelSpec, SharedModel

    model = SharedModel(ModelSpec(config.model, config.embeddings, config.vocab, config.dtype))
    with model_errors(config):
        loaded = model.get()
    classes = loaded.explainer.classes
    if isinstance(config.target_value, int) and config.target_value >= classes:
        raise ConfigError(f"--target {config.target_value} is not a class of the model (0..{classes - 1}).")
    return model, loaded


@contextlib.contextmanager
def model_errors(config: RunConfig) -> Iterator[None]:
    """Whatever reading the model, vocabulary or embedding files raises, as a RunError naming the file."""
    try:
        yield
    except OSError as e:
        raise RunError(f"Cannot read {e.filename or config.model!r}: {e.strerror or e}.") from None
    except (ValueError, pickle.UnpicklingError) as e:  # UnsafePickleError: a pickle that would run code
        raise RunError(" ".join(str(e).split())) from None
    except Exception as e:  # whatever a malformed file makes an importer raise, it is the file's fault
        files = ", ".join(repr(p) for p in (config.model, config.vocab, config.embeddings) if p)
        detail = " ".join(f"{type(e).__name__}: {e}".split())
        raise RunError(
            f"Cannot load the model from {files} ({detail}); pass files saved by a supported Keras or "
            "PyTorch version or the reference implementation."
        ) from e


def direct_runner(options: PipelineOptions):
    """The FnApiRunner for the DirectRunner (the default), else None (the runner the options name): for a
    pipeline without user state the DirectRunner would first try the PrismRunner, which downloads a binary
    into ~/.apache_beam and, offline, fails before falling back to the FnApiRunner."""
    if options.view_as(StandardOptions).runner not in (None, "DirectRunner"):
        return None
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return FnApiRunner()


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None) -> dict:
    """Explain every review of the configured corpus; returns the summary written to summary.json."""
    config, beam_args = parse_run_args(argv)
    output.check_output(config.output)
    files = expand_inputs(config.input, exclude=config.output)
    output.check_untouched(config.output, protected(config, files))
    model, loaded = load_model(config)
    with output.locked(config.output), output.write_errors(config.output):
        staging = output.prepare(config.output, config.overwrite)
        try:
            summary = explain(config, beam_args, model, loaded, staging, test_pipeline)
        except BaseException:
            output.discard(staging)
            raise
        output.publish(config.output, staging, summary)
    return summary


def protected(config: RunConfig, files: list[str]) -> dict[str, str | None]:
    """What a run must never overwrite: its input files, model, vocabulary, embeddings and config file."""
    paths = {f"--input file {n + 1}": path for n, path in enumerate(files)}
    return (
        paths
        | {"--model": config.model, "--vocab": config.vocab, "--embeddings": config.embeddings}
        | {"--config file": config.config}
    )


def explain(
    config: RunConfig,
    beam_args: list[str],
    model: SharedModel,
    loaded: LoadedModel,
    staging: str,
    test_pipeline: beam.Pipeline | None,
) -> dict:
    """Run the pipeline into `staging`; returns the summary."""
    from pipeline.assemble import build

    options = PipelineOptions(beam_args)
    pipeline = test_pipeline or beam.Pipeline(runner=direct_runner(options), options=options)
    build(pipeline, config, model, staging)
    log.info(
        "Explaining %s with %s (%d classes) into %s",
        ", ".join(config.input),
        config.model,
        loaded.explainer.classes,
        config.output,
    )
    runner = pipeline.options.view_as(StandardOptions).runner or "DirectRunner"  # portable runners clear it
    started = time.perf_counter()
    result = pipeline.run()
    result.wait_until_finish()
    seconds = time.perf_counter() - started
    return build_summary(config, counters(result), dead_letter_reasons(staging), str(runner), seconds)
