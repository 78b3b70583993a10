"""Names of the engine's options, importable without TensorFlow: flag and config validation use them."""

from __future__ import annotations

from collections.abc import Sequence

DTYPES = ("float32", "float64")
GRADIENT_METHODS = ("gi", "sa")
"""Gradient × Input and Sensitivity Analysis (lrp.baselines)."""
METHODS = ("lrp", *GRADIENT_METHODS)


def check_methods(methods: Sequence[str]) -> None:
    """ValueError unless methods are one or more distinct names among METHODS."""
    if not methods or not set(methods) <= set(METHODS) or len(set(methods)) < len(methods):
        raise ValueError(
            f"Relevance methods must be distinct names among {', '.join(METHODS)} (like --method lrp,gi); "
            f"got {','.join(methods)!r}."
        )
