"""Pure TensorFlow/numpy LRP for LSTM text classifiers (Arras et al. 2017). Never imports apache_beam.

The names below are imported on first use, so that `lrp.importers` and other TensorFlow-free modules load
without TensorFlow.
"""

import importlib

EXPORTS = {
    "DenseWeights": "lrp.weights",
    "Explanation": "lrp.explainer",
    "GRUWeights": "lrp.weights",
    "LSTMExplainer": "lrp.explainer",
    "LSTMLayer": "lrp.weights",
    "LSTMWeights": "lrp.weights",
    "ModelParts": "lrp.weights",
    "UnsupportedModelError": "lrp.weights",
}
__all__ = sorted(EXPORTS)


def __getattr__(name: str):
    if name not in EXPORTS:
        raise AttributeError(f"module 'lrp' has no attribute {name!r}")
    return getattr(importlib.import_module(EXPORTS[name]), name)
