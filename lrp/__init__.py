"""Pure TensorFlow/numpy LRP for LSTM and GRU text classifiers (Arras et al. 2017); no apache_beam.

The names below are imported on first use, so that `lrp.choices`, `lrp.weights` or `lrp.files`
can be imported without starting TensorFlow.
"""

from lrp.lazy import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
