"""lstm-lrp pipeline: CLI, config and assembly."""

from pipeline.caches import redirect_caches

__version__ = "0.1.0"
"""The tool's version: the one place it is written (setup.py and `lstm-lrp --version` read it here)."""

redirect_caches()  # before anything here imports Keras or matplotlib
