"""One timestep of each cell alone: the engine's forward_step and relevance_step (lrp.lstm, lrp.gru) against
the reference's step functions (lrp.reference), for both directions of a small batch from arbitrary nonzero
states, and a masked step, which passes the states and the relevance through unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from lrp import gru, lstm
from lrp.recurrent import input_projection
from lrp.reference import gru_step, gru_step_lrp, lstm_step, lstm_step_lrp, random_direction
from lrp.weights import LSTMLayer

D, H, B = 4, 3, 3
MASKED = B - 1
"""The batch row whose step is masked (padding)."""
RULES = [(1e-3, 0.0), (1e-2, 1.0), (0.0, 0.0), (0.1, 0.5)]
"""(eps, bias_factor) pairs."""


def random_step(rng: np.random.Generator, kind: str, reset_after: bool, activation: str):
    """A bidirectional layer of `kind`, inputs x (B, D) shared by both directions, states h and c (K, B, H),
    relevance r_h and r_c arriving on the new states (K, B, H), and the mask (K, B, 1), False on MASKED."""
    directions = [random_direction(rng, D, H, activation, 1.5, kind, reset_after) for _ in range(2)]
    layer = LSTMLayer(*directions)
    x = rng.normal(size=(B, D))
    h, c, r_h, r_c = np.tanh(rng.normal(size=(2, B, H))), *rng.normal(size=(3, 2, B, H))
    mask = np.ones((2, B, 1), bool)
    mask[:, MASKED] = False
    return layer, x, h, c, r_h, r_c, mask


def projected(kernel: tf.Tensor, bias: tf.Tensor, x: np.ndarray) -> tf.Tensor:
    """x W + b of one step, (K, B, G)."""
    return input_projection(kernel, bias, tf.constant(x[:, None]))[:, 0]


def assert_rows(engine: tf.Tensor, expected, passed: np.ndarray) -> None:
    """engine (K, B, H) equals expected(k, b) on every unmasked row and `passed` on the masked one."""
    got = engine.numpy()
    for k in range(2):
        for b in range(B):
            want = passed[k, b] if b == MASKED else expected(k, b)
            np.testing.assert_allclose(got[k, b], want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["sigmoid", "hard_sigmoid"])
@pytest.mark.parametrize(("eps", "bias_factor"), RULES)
def test_one_lstm_step_matches_the_reference_step(activation, eps, bias_factor):
    rng = np.random.default_rng(11)
    layer, x, h, c, r_h, r_c, mask = random_step(rng, "lstm", True, activation)
    w = lstm.LayerTensors.from_layer(layer, tf.float64)
    step = lstm.forward_step(
        w, projected(w.kernel, w.bias, x), tf.constant(mask), tf.constant(h), tf.constant(c)
    )
    ref = [[lstm_step(d, x[b], h[k, b], c[k, b]) for b in range(B)] for k, d in enumerate(layer.directions)]
    assert_rows(step.hidden, lambda k, b: ref[k][b].h, h)
    assert_rows(step.cell, lambda k, b: ref[k][b].c, c)

    one_step = [step.forget_cell, step.input_candidate, step.candidate_pre, tf.constant(h)]
    trace = lstm.ForwardTrace(None, None, tf.constant(mask[None]), *(t[None] for t in one_step))
    coefficients = lstm.step_coefficients(w, trace, eps, bias_factor).at(0)
    relevance = lstm.relevance_step(w, coefficients, tf.constant(r_h + r_c))
    expected = [
        [
            lstm_step_lrp(d, x[b], h[k, b], c[k, b], ref[k][b], r_h[k, b], r_c[k, b], eps, bias_factor)
            for b in range(B)
        ]
        for k, d in enumerate(layer.directions)
    ]
    assert_rows(relevance.hidden, lambda k, b: expected[k][b][1], np.zeros_like(h))
    assert_rows(relevance.cell, lambda k, b: expected[k][b][2], r_h + r_c)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("activation", ["sigmoid", "hard_sigmoid_keras2"])
@pytest.mark.parametrize(("eps", "bias_factor"), RULES)
def test_one_gru_step_matches_the_reference_step(reset_after, activation, eps, bias_factor):
    rng = np.random.default_rng(12)
    layer, x, h, _, r_h, _, mask = random_step(rng, "gru", reset_after, activation)
    w = gru.LayerTensors.from_layer(layer, tf.float64)
    gates, candidate = (
        projected(w.kernel_gates, w.bias_gates, x),
        projected(w.kernel_candidate, w.bias_candidate, x),
    )
    step = gru.forward_step(w, gates, candidate, tf.constant(mask), tf.constant(h))
    ref = [[gru_step(d, x[b], h[k, b]) for b in range(B)] for k, d in enumerate(layer.directions)]
    assert_rows(step.hidden, lambda k, b: ref[k][b].h, h)

    one_step = [step.kept, step.renewed, step.candidate_pre, step.reset, tf.constant(h)]
    trace = gru.ForwardTrace(None, None, tf.constant(mask[None]), *(t[None] for t in one_step))
    coefficients = gru.StepCoefficients.of(w, trace, eps, bias_factor).at(0)
    relevance = gru.relevance_step(w, coefficients, tf.constant(r_h), bias_factor)
    expected = [
        [gru_step_lrp(d, x[b], h[k, b], ref[k][b], r_h[k, b], eps, bias_factor)[1] for b in range(B)]
        for k, d in enumerate(layer.directions)
    ]
    assert_rows(relevance, lambda k, b: expected[k][b], r_h)
