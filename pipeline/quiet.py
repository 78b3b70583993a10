"""Keep the terminal to the tool's own lines: TensorFlow, absl, oneDNN, CUDA, Beam and Python warnings are
silenced unless the user asks for them (--verbose or --debug). Must run before TensorFlow is imported."""

from __future__ import annotations

import logging
import os
import sys
import warnings

QUIET_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow's C++ log once absl's logging is initialised
    "GRPC_VERBOSITY": "ERROR",  # Beam's portable runners
}
LIBRARY_LOGGERS = ("absl", "tensorflow", "keras", "h5py", "apache_beam")


def silence_libraries() -> None:
    """Raise the log thresholds of the libraries the tool runs on (an explicit environment setting wins),
    drop Python warnings and what native code writes to the process's stderr. The tool's own loggers
    have their own handler (pipeline.cli.show_progress)."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore")
    root = logging.getLogger()
    if not root.handlers:  # without one, Python's last-resort handler prints library warnings
        root.addHandler(logging.NullHandler())
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    silence_native_stderr()


def silence_native_stderr() -> None:
    """Point file descriptor 2 at /dev/null and sys.stderr at a copy of the real one: Python's own output
    (our log lines, errors, progress) still reaches the terminal, while TensorFlow's and absl's C++ lines,
    written before any log level applies, do not. Only when sys.stderr is the process's own stderr (not
    under a test's capture or redirect_stderr)."""
    if sys.stderr is not sys.__stderr__ or sys.stderr is None:
        return
    try:
        if sys.stderr.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):
        return
    sys.stderr.flush()
    copy = os.dup(2)
    sys.stderr = os.fdopen(
        copy, "w", buffering=1, encoding=sys.__stderr__.encoding, errors="backslashreplace"
    )
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
