"""The same corpus on the DirectRunner (in-process, the default), the DirectRunner's multi_processing mode,
the PortableRunner (embedded job server) with EXTERNAL workers from a worker pool started here and the
DaskRunner (a local Dask cluster): identical rows.

Floats are compared to 1e-6: which reviews share a batch depends on the runner's bundles, and float32 matmuls
of different batch shapes may round differently in the last bit.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from pipeline.run import run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: pathlib.Path, timeout: float = 120.0) -> None:
    """Return once localhost:port accepts connections; fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the worker pool exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            s.settimeout(1.0)
            if s.connect_ex(("localhost", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(
        f"the worker pool did not listen on port {port} within {timeout} s:\n{log.read_text()[-3000:]}"
    )


@pytest.fixture(scope="module")
def worker_env():
    """PYTHONPATH with the repository (workers import lrp, transforms and pipeline) and this interpreter's
    directory first on PATH (the pool starts workers as `python`)."""
    repo = str(pathlib.Path(__file__).resolve().parents[2])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p))
        patch.setenv("PATH", os.pathsep.join((os.path.dirname(sys.executable), os.environ["PATH"])))
        yield dict(os.environ)


@pytest.fixture(scope="module")
def worker_pool(worker_env, tmp_path_factory):
    """`python -m apache_beam.runners.worker.worker_pool_main` on a free port: (port, log file)."""
    port = free_port()
    log = tmp_path_factory.mktemp("pool") / "worker_pool.log"
    with log.open("w") as log_file:
        pool = subprocess.Popen(
            [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={port}"],
            env=worker_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers it starts go down with it
        )
    try:
        wait_for_port(port, pool, log)
        yield port, log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pool.pid, signal.SIGTERM)
        try:
            pool.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pool.pid, signal.SIGKILL)
            pool.wait()


def comparable(output, name: str) -> pd.DataFrame:
    """A dataset's rows sorted by review id, target class (method, position), with logits as columns."""
    table = output.sorted(name)
    if name == "reviews":
        logits = np.stack(table.pop("logits").to_numpy())
        for n in range(logits.shape[1]):
            table[f"logit_{n}"] = logits[:, n]
    return table


def assert_same_rows(output, reference) -> None:
    for name in ("tokens", "reviews", "dead_letter"):
        pd.testing.assert_frame_equal(
            comparable(output, name), comparable(reference, name), check_exact=False, rtol=1e-6, atol=1e-6
        )
    keys = ("input_records", "explained", "dead_lettered", "dead_lettered_by_reason", "tokens")
    for key in (*keys, "conservation_violations"):
        assert output.summary[key] == reference.summary[key], key
    assert output.summary["accounting_ok"] is (True if output.summary["counted_from"] == "metrics" else None)


def run_on(corpus, tiny_model, directory, *beam_flags: str):
    run([*corpus.flags(), *tiny_model.flags(), "--output", str(directory), *beam_flags])


def test_direct_runner_is_the_default(direct_run, corpus):
    assert direct_run.summary["runner"] == "DirectRunner"
    assert sorted(direct_run.tables["reviews"]["review_id"]) == sorted(corpus.explained)


def test_multi_processing(direct_run, corpus, tiny_model, worker_env, tmp_path, read_output):
    run_on(
        corpus,
        tiny_model,
        tmp_path / "out",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    )
    assert_same_rows(read_output(tmp_path / "out"), direct_run)


def test_portable_runner_with_external_workers(
    direct_run, corpus, tiny_model, worker_pool, tmp_path, read_output
):
    port, log = worker_pool
    flags = ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=EXTERNAL"]
    run_on(corpus, tiny_model, tmp_path / "out", *flags, f"--environment_config=localhost:{port}")
    output = read_output(tmp_path / "out")
    assert output.summary["runner"] == "PortableRunner"
    assert_same_rows(output, direct_run)
    assert "Starting worker" in log.read_text(), "the pool started no worker: the job ran elsewhere"


def test_portable_runner_with_loopback_workers(direct_run, corpus, tiny_model, tmp_path, read_output):
    flags = ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=LOOPBACK"]
    run_on(corpus, tiny_model, tmp_path / "out", *flags)
    assert_same_rows(read_output(tmp_path / "out"), direct_run)


def test_dask_runner(corpus, tiny_model, tmp_path, read_output):
    """`lstm-lrp run --runner DaskRunner` (no other flag): the rows of the DirectRunner reading the same
    splits (files whole, as the DaskRunner must: the same batches, so the same bits either side of the
    tolerance), dead letters of every stage included (--target label refuses the review without a label,
    the tolerance refuses some books), and a summary counted from the written files, saying so, with null
    for what they cannot tell."""
    pytest.importorskip("dask.distributed", reason="the DaskRunner needs dask[distributed] (the test extra)")
    from pipeline.cli import main

    flags = [*corpus.flags(), *tiny_model.flags(), "--target", "label", "--conservation-tolerance", "1e-7"]
    assert main(["run", *flags, "--split-bytes", "0", "--output", str(tmp_path / "direct")]) == 0
    assert main(["run", *flags, "--output", str(tmp_path / "dask"), "--runner", "DaskRunner"]) == 0
    reference, output = read_output(tmp_path / "direct"), read_output(tmp_path / "dask")
    stages = set(reference.tables["dead_letter"]["stage"])
    assert {"read", "tokenize", "embed", "explain", "conservation"} <= stages, stages
    assert_same_rows(output, reference)
    assert output.summary["runner"] == "apache_beam.runners.dask.dask_runner.DaskRunner"
    assert output.summary["settings"]["split_bytes"] == 0  # corpus.flags() has 64: no splittable DoFns
    assert output.summary["input_records"] == reference.summary["input_records"] == corpus.input_records
    assert output.summary["counted_from"] == "written_files"
    unknown = ("skipped_blank_lines", "oov_tokens", "padding_waste")
    assert [output.summary[key] for key in unknown] == [None] * 3
    assert set(output.summary["work_units"].values()) == {None}
