"""lstm-lrp pipeline: CLI, config and assembly."""

__version__ = "0.1.0"
"""The tool's version: the one place it is written (setup.py and `lstm-lrp --version` read it here)."""
