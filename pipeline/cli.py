"""The `lstm-lrp` command: `run` explains a corpus; `report` and `evaluate` read a run's output."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from pipeline.config import ConfigError
from pipeline.evaluate import EvaluateError, add_evaluate_flags, evaluate
from pipeline.output import OutputError, WriteError
from pipeline.report import ReportError, add_report_flags, report
from pipeline.run import RunError, add_run_flags, run
from transforms.read import InputError

USER_ERRORS = (ConfigError, InputError, OutputError, RunError, ReportError, EvaluateError)


def describe(summary: dict, output: str) -> str:
    """A few lines for the terminal: where the results are and what happened."""
    lines = [
        f"Explained {summary['explained']} of {summary['input_records']} reviews "
        f"({summary['tokens']} tokens, {summary['tokens_per_second']} tokens/s); "
        f"{summary['dead_lettered']} dead-lettered.",
        f"Conservation: {summary['conservation_violations']} reviews over the tolerance"
        + ("." if summary["settings"]["bias_factor"] == 1 else " (expected: only bias_factor 1 conserves)."),
        f"Results: {output}/tokens/, {output}/reviews/, {output}/dead_letter/, {output}/summary.json",
    ]
    lines += [f"  dead letters - {reason}: {n}" for reason, n in summary["dead_lettered_by_reason"].items()]
    return "\n".join(lines)


def run_command(argv: list[str]) -> str:
    summary = run(argv)
    return describe(summary, summary["settings"]["output"])


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[list[str]], str]]] = {
    "run": ("explain every review of a corpus", add_run_flags, run_command),
    "report": ("write a self-contained HTML report of a run's output", add_report_flags, report),
    "evaluate": (
        "word-deletion test of LRP against baselines (Arras et al. 2017)",
        add_evaluate_flags,
        evaluate,
    ),
}
"""name -> (help, adds the flags for --help, runs on the remaining arguments and returns what to print)."""


PROGRESS_HANDLER = "lstm-lrp-progress"


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="lstm-lrp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_flags, _) in COMMANDS.items():
        add_flags(commands.add_parser(name, help=help_text, add_help=False))
    command = argv[0] if argv else None
    if command not in COMMANDS:
        parser.parse_args(argv)
        return 2
    show_progress()
    try:
        message = COMMANDS[command][2](argv[1:])
    except (*USER_ERRORS, WriteError) as e:
        if "--debug" in argv:
            raise
        print(f"lstm-lrp: error: {' '.join(str(e).split())}", file=sys.stderr)  # one line, whatever e says
        return 1 if isinstance(e, WriteError) else 2
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
