"""Pure TensorFlow/numpy LRP for LSTM and GRU text classifiers (Arras et al. 2017); no apache_beam."""

from lrp.explainer import Explanation, LSTMExplainer
from lrp.weights import (
    DenseWeights,
    GRUWeights,
    LSTMLayer,
    LSTMWeights,
    ModelParts,
    UnsupportedModelError,
)

__all__ = [
    "DenseWeights",
    "Explanation",
    "GRUWeights",
    "LSTMExplainer",
    "LSTMLayer",
    "LSTMWeights",
    "ModelParts",
    "UnsupportedModelError",
]
