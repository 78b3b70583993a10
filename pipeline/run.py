"""`run(argv=None, test_pipeline=None)`: the main job, from flags to a published output directory."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import io
import logging
import pickle
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.runners.runner import create_runner

from lrp.files import unreadable
from pipeline import output
from pipeline.config import ConfigError, RunConfig, build_config, load_config_file
from pipeline.flags import FlagParser, add_run_flags
from pipeline.progress import progress_line
from pipeline.provenance import build_provenance, parquet_metadata
from pipeline.runners import close_client, on_dask, runner_path
from pipeline.summary import absorbed_share, build_summary, counters, dead_letter_reasons, written_totals
from transforms.read import expand_inputs

if TYPE_CHECKING:
    from transforms.model import LoadedModel, SharedModel

log = logging.getLogger("lstm_lrp")


class RunError(ValueError):
    """A model, vocabulary or embedding file that cannot be used; the message names it."""


def parse_run_args(argv: list[str] | None) -> tuple[RunConfig, list[str]]:
    """Flags -> validated RunConfig and the remaining (Beam pipeline) arguments."""
    parser = FlagParser(prog="lstm-lrp run", argument_default=argparse.SUPPRESS)
    add_run_flags(parser)
    args, beam_args = parser.parse_known_args(argv)
    flags = {k: v for k, v in vars(args).items() if k not in ("debug", "verbose")}
    file_settings = load_config_file(args.config) if "config" in args else {}
    use_demo = not file_settings and "input" not in flags and "model" not in flags
    beam_args = runner_path(beam_args)
    check_beam_args(beam_args, parser.flags)
    config = build_config(file_settings, flags, use_demo)
    if on_dask(PipelineOptions(beam_args)) and config.split_bytes:
        log.info("The DaskRunner has no splittable DoFns: every file is read whole (--split-bytes 0).")
        config = dataclasses.replace(config, split_bytes=0)
    return config, beam_args


def beam_options(options: PipelineOptions, retain_unknown_options: bool) -> dict:
    """options.get_all_options(...): option name -> value. An impossible value of a Beam option
    (--direct_num_workers=abc) is a ConfigError: Beam's parser prints its usage and exits, as argparse
    does."""
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):
            return options.get_all_options(retain_unknown_options=retain_unknown_options)
    except SystemExit:
        message = usage.getvalue().strip().splitlines()[-1].partition("error: ")[2]
        raise ConfigError(f"Beam pipeline option {message}.") from None


def check_beam_args(beam_args: list[str], ours: list[str]) -> None:
    """Refuse an unknown runner, a flag that is neither one of `ours` nor a pipeline option of Beam or of the
    runner's module (a typo such as --ouput must not be dropped by Beam with only a warning) and a Beam
    option's impossible value.

    Beam keeps unknown flags only when asked to (retain_unknown_options), under their names with "-" as
    "_": the options that differ between the two readings are those an unknown flag set."""
    options = PipelineOptions(beam_args)
    runner = options.view_as(StandardOptions).runner
    if runner is not None:
        try:
            create_runner(runner)  # imports the runner's module, which may register options (DaskOptions)
        except ValueError as e:
            detail = str(e).split(". ")[0].removesuffix(".")
            raise ConfigError(f"--runner {runner}: {detail}; see Beam's list of runners.") from None
        except ImportError as e:
            raise ConfigError(
                f"--runner {runner} cannot be loaded ({e}); install what it needs (the DaskRunner: "
                'pip install "lstm-lrp[dask]").'
            ) from None
    beam = beam_options(options, retain_unknown_options=False)
    every = beam_options(options, retain_unknown_options=True)
    unknown = {name for name, value in every.items() if name not in beam or beam[name] != value}
    for arg in beam_args:
        flag = arg.split("=", 1)[0]
        name = flag.removeprefix("--")
        if flag.startswith("--") and name not in beam and name.replace("-", "_") in unknown:
            guess = difflib.get_close_matches(flag, ours + [f"--{option}" for option in sorted(beam)], n=1)
            hint = f"; did you mean {guess[0]}?" if guess else "; see lstm-lrp run --help."
            raise ConfigError(f"Unknown flag {flag}{hint}")


def load_model(config: RunConfig, here: bool) -> tuple[SharedModel, LoadedModel | None, int]:
    """Check the model files on the driver so bad files fail before any work; RunError names the file.
    Returns the model's handle, the loaded model when `here` (else None) and its number of classes.

    here: the stages run in this process (the DirectRunner's), so the model is loaded through the shared
    handle: while the caller holds the LoadedModel, those stages use it instead of loading their own.
    Elsewhere the driver reads the files with numpy only and never imports TensorFlow. The engine is
    imported only after every setting has been checked and a .keras file's layers have been read from its
    config.
    """
    from lrp.importers.models import check_model_file

    with model_errors(config):
        check_model_file(config.model)
    from transforms.model import ModelSpec, SharedModel

    model = SharedModel(ModelSpec(config.model, config.embeddings, config.vocab, config.dtype))
    with model_errors(config):
        loaded = model.get() if here else None
        classes = loaded.explainer.classes if here else model.spec.parts()[0].dense.classes
    if isinstance(config.target_value, int) and config.target_value >= classes:
        raise ConfigError(f"--target {config.target_value} is not a class of the model (0..{classes - 1}).")
    if config.class_names and len(config.class_names) != classes:
        raise ConfigError(
            f"--class-names names {len(config.class_names)} classes but the model has {classes}; "
            f"give {classes} comma-separated names."
        )
    return model, loaded, classes


def run_provenance(config: RunConfig, classes: int, run_id: str | None = None) -> dict:
    """The provenance record of a run or evaluation with this config and a model of `classes` classes
    (class names: those given, else "class 0", "class 1", ...)."""
    names = config.class_names or tuple(f"class {c}" for c in range(classes))
    return build_provenance(dataclasses.asdict(config), names, run_id)


@contextlib.contextmanager
def model_errors(config: RunConfig) -> Iterator[None]:
    """Whatever reading the model, vocabulary or embedding files raises, as a RunError naming the file."""
    try:
        yield
    except OSError as e:
        raise RunError(unreadable(e.filename or config.model, e)) from None
    except (ValueError, pickle.UnpicklingError) as e:  # UnsafePickleError: a pickle that would run code
        raise RunError(" ".join(str(e).split())) from None
    except Exception as e:  # whatever a malformed file makes an importer raise, it is the file's fault
        files = ", ".join(repr(p) for p in (config.model, config.vocab, config.embeddings) if p)
        detail = " ".join(f"{type(e).__name__}: {e}".split())
        raise RunError(
            f"Cannot load the model from {files} ({detail}); pass files saved by a supported Keras or "
            "PyTorch version or the reference implementation."
        ) from e


def in_process(options: PipelineOptions) -> bool:
    """Whether the pipeline's stages run in this process (the DirectRunner's default mode), where the
    progress line hears them."""
    runner = options.view_as(StandardOptions).runner
    mode = options.view_as(DirectOptions).direct_running_mode
    return runner in (None, "DirectRunner", "direct") and mode in (None, "in_memory")


def direct_runner(options: PipelineOptions):
    """The FnApiRunner for the DirectRunner (the default), else None (the runner the options name): for a
    pipeline without user state the DirectRunner would first try the PrismRunner, which downloads a binary
    into ~/.apache_beam and, offline, fails before falling back to the FnApiRunner."""
    if options.view_as(StandardOptions).runner not in (None, "DirectRunner", "direct"):
        return None
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return FnApiRunner()


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None) -> dict:
    """Explain every review of the configured corpus; returns the summary written to summary.json."""
    config, beam_args = parse_run_args(argv)
    output.check_output(config.output)
    files = expand_inputs(config.input, exclude=config.output)
    output.check_untouched(config.output, protected(config, files))
    options = test_pipeline.options if test_pipeline else PipelineOptions(beam_args)
    model, loaded, classes = load_model(config, in_process(options))
    with output.locked(config.output), output.write_errors(config.output):
        provenance = run_provenance(config, classes)
        staging = output.prepare(config.output, config.overwrite, provenance["run_id"])
        try:
            summary = explain(config, options, model, classes, files, staging, provenance, test_pipeline)
            del loaded  # held until here: the stages in this process use it
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
    options: PipelineOptions,
    model: SharedModel,
    classes: int,
    files: list[str],
    staging: str,
    provenance: dict,
    test_pipeline: beam.Pipeline | None,
) -> dict:
    """Run the pipeline over the input `files` into `staging`, every file carrying the provenance record;
    returns the summary."""
    from pipeline.assemble import build

    pipeline = test_pipeline or beam.Pipeline(runner=direct_runner(options), options=options)
    build(pipeline, config, model, staging, parquet_metadata(provenance))
    log.info(
        "Explaining %s with %s (%d classes) into %s",
        ", ".join(config.input),
        config.model,
        classes,
        config.output,
    )
    runner = pipeline.options.view_as(StandardOptions).runner or "DirectRunner"  # portable runners clear it
    started = time.perf_counter()
    with progress_line(files, in_process(pipeline.options)):
        result = pipeline.run()
        try:
            result.wait_until_finish()
        finally:
            close_client(result)
    seconds = time.perf_counter() - started
    totals = counters(result)
    return build_summary(
        provenance,
        totals or written_totals(staging),
        dead_letter_reasons(staging),
        absorbed_share(staging),
        str(runner),
        seconds,
        measured=totals is not None,
    )
