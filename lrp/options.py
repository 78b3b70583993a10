"""Names the engine accepts, importable without TensorFlow (configuration checks them before any model
loads)."""

DTYPES = ("float32", "float64")
"""Floating-point types the engine computes in."""

GRADIENT_METHODS = ("gi", "sa")
"""The gradient baselines of lrp.baselines: Gradient × Input and Sensitivity Analysis."""
