"""The `lstm-lrp` command: `run` explains a corpus; `report` and `evaluate` read a run's output.

Only the command that runs imports what it needs: `--help`, `--version`, `report` and flag errors never
load TensorFlow or Beam.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator

from pipeline import __version__
from pipeline.flags import FlagError, add_evaluate_flags, add_report_flags, add_run_flags
from pipeline.quiet import silence_libraries

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], str]] = {
    "run": ("explain every review of a corpus", add_run_flags, "pipeline.cli:run_command"),
    "report": (
        "write a self-contained HTML report of a run's output",
        add_report_flags,
        "pipeline.report:report",
    ),
    "evaluate": (
        "word-deletion test of LRP against baselines (Arras et al. 2017)",
        add_evaluate_flags,
        "pipeline.evaluate:evaluate",
    ),
}
"""name -> (help, adds the flags for --help, "module:function" that runs on the remaining arguments and
returns what to print)."""

USER_ERRORS = {
    "pipeline.config": "ConfigError",
    "pipeline.evaluate": "EvaluateError",
    "pipeline.output": "OutputError",
    "pipeline.report": "ReportError",
    "pipeline.run": "RunError",
    "transforms.read": "InputError",
}
"""Errors a user can hit (module -> class): one line and exit code 2. Looked up among the modules the
command imported, so a command never imports a module just to name its error."""

INTERRUPTED = "interrupted: nothing was published"
PROGRESS_HANDLER = "lstm-lrp-progress"


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt for SIGINT."""


WRITE_ERROR = ("pipeline.output", "WriteError")
"""Writing the results failed (a full disk): one line and exit code 1."""


def loaded_errors(*names: tuple[str, str]) -> tuple[type[BaseException], ...]:
    """The error classes (module, class name) whose modules the command has imported."""
    return tuple(getattr(sys.modules[m], name) for m, name in names if m in sys.modules)


def user_errors() -> tuple[type[BaseException], ...]:
    """FlagError and the user errors of the modules imported so far, the write error among them."""
    return (FlagError, *loaded_errors(*USER_ERRORS.items(), WRITE_ERROR))


def show_progress() -> None:
    """Progress of our own stages at INFO on stderr; other libraries keep their own settings."""
    handler = logging.StreamHandler(sys.stderr)  # today's stderr, replacing one from an earlier call
    handler.set_name(PROGRESS_HANDLER)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    for name in ("lstm_lrp", "transforms", "pipeline"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.handlers = [h for h in logger.handlers if h.get_name() != PROGRESS_HANDLER] + [handler]
        logger.propagate = False


def describe(summary: dict, output: str) -> str:
    """A few lines for the terminal: what happened, where the results are and how to see them."""
    from transforms.schemas import RESULT_DIRS, SUMMARY  # here, so that --help imports no pyarrow

    share = summary["absorbed_share"]
    absorbed = (
        ""
        if share["p50"] is None
        else (
            f"; absorbed by biases and stabilisers: median {share['p50']:.1%} of the target score "
            f"(p95 {share['p95']:.1%})"
        )
    )
    lines = [
        f"Explained {summary['explained']} of {summary['input_records']} reviews "
        f"({summary['tokens']} tokens, {summary['tokens_per_second']} tokens/s); "
        f"{summary['dead_lettered']} dead-lettered.",
        f"Conservation: {summary['conservation_violations']} reviews over the tolerance (dead-lettered)"
        f"{absorbed}.",
        f"Results: {', '.join(f'{output}/{name}/' for name in RESULT_DIRS)}, {output}/{SUMMARY}",
    ]
    lines += [f"  dead letters - {reason}: {n}" for reason, n in summary["dead_lettered_by_reason"].items()]
    lines.append(f"Report: lstm-lrp report {output}")
    return "\n".join(lines)


def run_command(argv: list[str]) -> str:
    from pipeline.run import run

    summary = run(argv)
    return describe(summary, summary["settings"]["output"])


def command_function(target: str) -> Callable[[list[str]], str]:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def parser() -> argparse.ArgumentParser:
    """The top-level parser, for --help, --version and unknown commands."""
    top = argparse.ArgumentParser(prog="lstm-lrp", description=__doc__.split("\n\n")[0])
    top.add_argument("--version", action="version", version=f"lstm-lrp {__version__}")
    commands = top.add_subparsers(dest="command", required=True)
    for name, (help_text, add_flags, _) in COMMANDS.items():
        add_flags(commands.add_parser(name, help=help_text, description=help_text))
    return top


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """While inside, SIGINT raises KeyboardInterrupt and SIGTERM Terminated in the main thread (elsewhere
    signals stay as they are). Both carry a message, so that Beam, which re-raises an exception from a
    stage as the same type with the step's name added to its first argument, keeps their type."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt("interrupted")

    def terminate(signum, frame):
        raise Terminated("terminated")

    try:
        previous = {signal.SIGINT: signal.signal(signal.SIGINT, interrupt)}
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave signals to whoever owns them
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def interrupted(code: int) -> int:
    """One line for an interrupted run, then exit at once: Beam's worker threads would keep the process
    alive, and what the run staged is removed by the next run into the same output."""
    print(INTERRUPTED, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else None
    if command not in COMMANDS or {"-h", "--help"} & set(argv):
        top = parser()
        top.parse_args(argv)  # prints the help, the version or the error (--verbose run), and exits
        # unless it reads `-- run` as run, as argparse does since CPython gh-53780 (3.11's refuses "--")
        top.error(f"the command comes first: lstm-lrp {{{','.join(COMMANDS)}}} ...")
    if "--verbose" not in argv and "--debug" not in argv:
        silence_libraries()
    show_progress()
    try:
        with signals_raise():
            message = command_function(COMMANDS[command][2])(argv[1:])
    except KeyboardInterrupt:
        return interrupted(128 + signal.SIGINT)
    except Terminated:
        return interrupted(128 + signal.SIGTERM)
    except user_errors() as e:
        if "--debug" in argv:
            raise
        print(f"lstm-lrp: error: {' '.join(str(e).split())}", file=sys.stderr)  # one line, whatever e says
        return 1 if isinstance(e, loaded_errors(WRITE_ERROR)) else 2
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
