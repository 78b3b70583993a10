"""What the run needs to know of Beam's DaskRunner, which Beam names only by its class path and which has
no splittable DoFns (files are read whole: --split-bytes 0), drops what DoFns emit in finish_bundle (each
bundle writes its own files: see transforms.write) and reports no metrics (see pipeline.summary)."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineResult

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
DASK_NAMES = ("daskrunner", "dask", DASK_RUNNER.lower())


def on_dask(options: PipelineOptions) -> bool:
    """Whether the options name Beam's DaskRunner (by its class path, "DaskRunner" or "dask")."""
    return (options.view_as(StandardOptions).runner or "").lower() in DASK_NAMES


def runner_path(beam_args: list[str]) -> list[str]:
    """beam_args with --runner DaskRunner (or dask) spelled as the runner's class path."""
    spelled, value_next = [], False
    for arg in beam_args:
        if value_next and arg.lower() in DASK_NAMES:
            arg = DASK_RUNNER
        elif arg.startswith("--runner=") and arg.split("=", 1)[1].lower() in DASK_NAMES:
            arg = f"--runner={DASK_RUNNER}"
        value_next = arg == "--runner"
        spelled.append(arg)
    return spelled


def close_client(result: PipelineResult) -> None:
    """Close the Dask client a DaskRunner's result holds, and with it the local cluster it started (whose
    worker processes would otherwise live as long as this process); nothing for other runners."""
    client = getattr(result, "client", None)
    if client is not None:
        client.close()
