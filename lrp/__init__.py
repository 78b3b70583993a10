"""Pure TensorFlow/numpy LRP for LSTM and GRU text classifiers (Arras et al. 2017); no apache_beam.

The names below are imported on first use, so that `lrp.choices`, `lrp.weights` or `lrp.importers.paths`
can be imported without starting TensorFlow.
"""

import importlib

_HOMES = {
    "DenseWeights": "lrp.weights",
    "Explanation": "lrp.explainer",
    "GRUWeights": "lrp.weights",
    "LSTMExplainer": "lrp.explainer",
    "LSTMLayer": "lrp.weights",
    "LSTMWeights": "lrp.weights",
    "ModelParts": "lrp.weights",
    "UnsupportedModelError": "lrp.weights",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'lrp' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
