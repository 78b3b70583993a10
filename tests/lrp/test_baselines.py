"""Gradient × Input and Sensitivity Analysis (lrp.baselines via LSTMExplainer.attribute) against central
finite differences of the float64 numpy reference forward pass (lrp.reference)."""

from __future__ import annotations

import numpy as np
import pytest

from lrp import LSTMExplainer
from lrp.reference import random_model, reference_forward

STEP = 1e-6


def numeric_gradient(layers, dense, review: np.ndarray, target: int) -> np.ndarray:
    """d logit_target / d review (L, E) by central differences of the reference forward."""
    gradient = np.zeros_like(review)
    for index in np.ndindex(review.shape):
        up, down = review.copy(), review.copy()
        up[index] += STEP
        down[index] -= STEP
        delta = reference_forward(layers, dense, up)[target] - reference_forward(layers, dense, down)[target]
        gradient[index] = delta / (2 * STEP)
    return gradient


def padded(rng: np.random.Generator, lengths: list[int], steps: int, features: int) -> np.ndarray:
    """(B, T, E) N(0, 1) tokens, right-padded with large random garbage."""
    x = rng.normal(size=(len(lengths), steps, features))
    for b, length in enumerate(lengths):
        x[b, length:] = rng.uniform(-5.0, 5.0, size=(steps - length, features))
    return x


@pytest.fixture(scope="module")
def models() -> dict[str, tuple]:
    """Small float64 models, each with its explainer (built once: tracing the gradient graph is slow)."""
    rng = np.random.default_rng(7)
    built = {}
    for name, n_layers, bidirectional, kinds, reset_after in (
        ("lstm", 1, False, "lstm", True),
        ("bilstm-2", 2, True, "lstm", True),
        ("gru", 1, False, "gru", True),
        ("bigru-bilstm", 2, True, ("gru", "lstm"), False),
    ):
        layers, dense = random_model(
            rng, 3, 4, n_layers, bidirectional, 3, kinds=kinds, reset_after=reset_after
        )
        built[name] = (layers, dense, LSTMExplainer(layers, dense, dtype="float64"))
    return built


@pytest.mark.parametrize("name", ["lstm", "bilstm-2", "gru", "bigru-bilstm"])
def test_gradient_methods_match_finite_differences(models, name):
    layers, dense, explainer = models[name]
    rng = np.random.default_rng(1)
    lengths, targets = [5, 3, 1], np.array([2, 0, 1])
    x = padded(rng, lengths, 5, 3)
    gi = explainer.attribute(x, lengths, targets, method="gi")
    sa = explainer.attribute(x, lengths, targets, method="sa")
    for b, length in enumerate(lengths):
        gradient = numeric_gradient(layers, dense, x[b, :length], int(targets[b]))
        np.testing.assert_allclose(gi[b, :length], x[b, :length] * gradient, rtol=0, atol=1e-8)
        np.testing.assert_allclose(sa[b, :length], gradient**2, rtol=0, atol=1e-8)
        np.testing.assert_allclose(
            sa[b, :length].sum(axis=1), np.linalg.norm(gradient, axis=1) ** 2, atol=1e-8
        )
        assert np.all(gi[b, length:] == 0.0) and np.all(sa[b, length:] == 0.0)


@pytest.mark.parametrize("name", ["bilstm-2", "bigru-bilstm"])
def test_padding_changes_nothing(models, name):
    """A padded batch gives each review the relevance it gets alone, unpadded."""
    explainer = models[name][2]
    rng = np.random.default_rng(2)
    lengths = [6, 2, 4]
    x = padded(rng, lengths, 6, 3)
    for method in ("gi", "sa"):
        batch = explainer.attribute(x, lengths, method=method)
        for b, length in enumerate(lengths):
            alone = explainer.attribute(x[b : b + 1, :length], method=method)
            np.testing.assert_allclose(batch[b, :length], alone[0], rtol=0, atol=1e-12)


def test_default_target_is_the_predicted_class(models):
    explainer = models["bilstm-2"][2]
    rng = np.random.default_rng(3)
    lengths = [4, 3, 2, 1]
    x = padded(rng, lengths, 4, 3)
    predicted = explainer.predict(x, lengths).argmax(axis=1)
    np.testing.assert_array_equal(
        explainer.attribute(x, lengths, method="gi"), explainer.attribute(x, lengths, predicted, "gi")
    )


def test_float32_close_to_float64(models):
    layers, dense, exact = models["lstm"]
    rng = np.random.default_rng(4)
    x, lengths = padded(rng, [5, 2], 5, 3), [5, 2]
    rounded = LSTMExplainer(layers, dense, dtype="float32").attribute(x, lengths, 0, "gi")
    assert rounded.dtype == np.float32
    np.testing.assert_allclose(rounded, exact.attribute(x, lengths, 0, "gi"), rtol=0, atol=1e-5)


def test_unknown_method_and_bad_target_raise(models):
    explainer = models["lstm"][2]
    x = np.zeros((1, 2, 3))
    with pytest.raises(ValueError, match="Unknown attribution method 'lrp'"):
        explainer.attribute(x, method="lrp")
    with pytest.raises(ValueError, match="target must be a class"):
        explainer.attribute(x, target=3)
