"""Correctness of the LRP engine (lrp.LSTMExplainer) against the float64 numpy reference in lrp.reference.

The reference itself is checked first: against Keras's forward pass, by conservation, and on cases worked
out by hand.
"""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace

import keras
import numpy as np
import pytest

from lrp.reference import random_model, reference_forward, reference_ledger
from lrp.weights import DenseWeights, GRUWeights, LSTMLayer, LSTMWeights, UnsupportedModelError

# ---------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------


def make_explainer(layers: list[LSTMLayer], dense: DenseWeights, dtype: str = "float64"):
    """The engine under test (imported late so the reference tests run without it)."""
    from lrp import LSTMExplainer

    return LSTMExplainer(layers, dense, dtype=dtype)


def from_keras(model: keras.Model, dtype: str):
    from lrp import LSTMExplainer

    return LSTMExplainer.from_keras(model, dtype=dtype)


def random_lengths(rng: np.random.Generator, batch: int, steps: int) -> np.ndarray:
    """(B,) lengths in [1, steps]; the first is `steps`, the last (if B > 2) is 1."""
    lengths = rng.integers(1, steps + 1, size=batch)
    lengths[0] = steps
    if batch > 2:
        lengths[-1] = 1
    return lengths


def padded_batch(
    rng: np.random.Generator, lengths: np.ndarray, steps: int, features: int, pad: str = "garbage"
) -> np.ndarray:
    """(B, T, E) right-padded inputs: N(0, 1) tokens; padding is large random garbage or zeros."""
    x = rng.normal(size=(len(lengths), steps, features))
    for b, length in enumerate(lengths):
        padding = rng.uniform(-5.0, 5.0, size=(steps - length, features)) if pad == "garbage" else 0.0
        x[b, length:] = padding
    return x


def mask(lengths: np.ndarray, steps: int) -> np.ndarray:
    """(B, T, 1) ones on real tokens, zeros on padding."""
    return (np.arange(steps)[None, :] < np.asarray(lengths)[:, None])[:, :, None].astype(np.float64)


def as_float32(layers: list[LSTMLayer], dense: DenseWeights) -> tuple[list[LSTMLayer], DenseWeights]:
    """The same model with every weight rounded to float32 (kept as float64 arrays)."""

    def rounded(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.asarray(a, np.float32).astype(np.float64)

    def direction(w: LSTMWeights | None) -> LSTMWeights | None:
        if w is None:
            return None
        return replace(
            w, kernel=rounded(w.kernel), recurrent_kernel=rounded(w.recurrent_kernel), bias=rounded(w.bias)
        )

    new_layers = [LSTMLayer(direction(layer.forward), direction(layer.backward)) for layer in layers]
    return new_layers, DenseWeights(rounded(dense.kernel), rounded(dense.bias))


def keras_activation(name: str):
    """Keras's recurrent_activation argument for one of our activation names."""
    if name == "hard_sigmoid_keras2":
        return lambda z: keras.ops.clip(0.2 * z + 0.5, 0.0, 1.0)
    return name


def build_keras(
    layers: list[LSTMLayer], dense: DenseWeights, steps: int, masking: bool = False
) -> keras.Sequential:
    """A Keras 3 model with the given weights: [Masking] -> LSTM / Bidirectional(LSTM) ... -> Dense."""
    stack: list = [keras.Input(shape=(steps, layers[0].forward.input_dim))]
    if masking:
        stack.append(keras.layers.Masking(mask_value=0.0))
    weights = []
    for n, layer in enumerate(layers):
        w = layer.forward
        lstm = keras.layers.LSTM(
            w.units,
            recurrent_activation=keras_activation(w.recurrent_activation),
            return_sequences=n < len(layers) - 1,
        )
        stack.append(lstm if layer.backward is None else keras.layers.Bidirectional(lstm))
        for d in layer.directions:
            weights += [d.kernel, d.recurrent_kernel, d.bias]
    stack.append(keras.layers.Dense(dense.classes, use_bias=dense.bias is not None))
    weights += [dense.kernel] + ([] if dense.bias is None else [dense.bias])
    model = keras.Sequential(stack)
    model.set_weights([np.asarray(w, np.float32) for w in weights])
    return model


def assert_matches_reference(
    result, layers, dense, x, lengths, eps: float, bias_factor: float, tol: float = 1e-10
) -> None:
    """Every review of `result` equals the reference (relative to max(1, max |relevance|)), its rest and
    absorbed relevance included, and its books balance to rounding: |residual| <= 1e-9 max(1, |target
    score|, sum |relevance|) (with eps = 0 a near-zero denominator can blow relevances up far beyond the
    score, and their sum is only exact to rounding of their size)."""
    for b, length in enumerate(lengths):
        target = int(result.target[b])
        rel, logits, rest, absorbed = reference_ledger(layers, dense, x[b, :length], target, eps, bias_factor)
        scale = max(1.0, float(np.abs(rel).max()), abs(rest), abs(absorbed))
        np.testing.assert_allclose(result.logits[b], logits, rtol=0, atol=tol)
        np.testing.assert_allclose(result.relevance[b, :length], rel, rtol=0, atol=tol * scale)
        assert np.all(result.relevance[b, length:] == 0.0), "relevance on padding must be exactly 0"
        assert abs(result.rest[b] - rest) <= tol * scale and abs(result.absorbed[b] - absorbed) <= tol * scale
        size = max(1.0, abs(logits[target]), float(np.abs(rel).sum()))
        assert abs(logits[target] - rel.sum() - rest - absorbed) <= 1e-9 * size
        assert abs(result.residual[b]) <= 1e-9 * size, result.residual[b]


# ---------------------------------------------------------------------------------------------------------
# 1. The reference itself
# ---------------------------------------------------------------------------------------------------------


def test_the_reference_imports_nothing_of_the_engine():
    """lrp.reference stays an independent check: numpy and the weight dataclasses, no TensorFlow."""
    loaded = "sorted(m for m in sys.modules if m.startswith(('lrp', 'tensorflow')))"
    code = f"import sys, lrp.reference; print(*{loaded})"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert found.split() == ["lrp", "lrp.lazy", "lrp.reference", "lrp.weights"]


@pytest.mark.parametrize(
    "bidirectional, n_layers, activation",
    [
        (False, 1, "sigmoid"),
        (True, 1, "hard_sigmoid"),
        (False, 2, "hard_sigmoid_keras2"),
        (True, 2, "sigmoid"),
        ((True, False), 2, "sigmoid"),
    ],
)
def test_reference_forward_equals_keras(bidirectional, n_layers, activation):
    rng = np.random.default_rng(1)
    steps, features = 7, 3
    layers, dense = as_float32(*random_model(rng, features, 4, n_layers, bidirectional, 3, True, activation))
    model = build_keras(layers, dense, steps)
    x = rng.normal(size=(4, steps, features)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    got = np.stack([reference_forward(layers, dense, review) for review in x])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("eps", [0.0, 1e-3])
@pytest.mark.parametrize("bidirectional, n_layers", [(False, 1), (True, 1), (False, 3), (True, 2)])
def test_reference_conserves_with_full_bias(bidirectional, n_layers, eps):
    rng = np.random.default_rng(2)
    activation = "sigmoid" if eps == 0.0 else "hard_sigmoid"
    layers, dense = random_model(rng, 3, 5, n_layers, bidirectional, 4, True, activation)
    for length in (1, 6, 25):
        x = rng.normal(size=(length, 3))
        target = int(rng.integers(4))
        rel, logits, rest, absorbed = reference_ledger(layers, dense, x, target, eps, 1.0)
        assert abs(logits[target] - rel.sum() - rest) <= 1e-9 * max(1.0, abs(logits[target]))
        assert absorbed == 0.0
        # Without the bias share, relevance is absorbed, and exactly that much is missing.
        rel0, _, rest0, absorbed0 = reference_ledger(layers, dense, x, target, eps, 0.0)
        assert rest0 == 0.0
        assert abs(logits[target] - rel0.sum()) > 1e-6
        assert abs(logits[target] - rel0.sum() - absorbed0) <= 1e-9 * max(1.0, abs(logits[target]))


def test_reference_hand_worked_single_step():
    """E = H = 1, T = 1, two classes; every number below follows the LRP equations on paper."""
    eps, bf = 0.01, 0.5
    w = LSTMWeights(
        kernel=np.array([[0.0, 0.3, -0.5, 0.0]]),  # gates i, f, g, o
        recurrent_kernel=np.array([[0.7, -0.2, 0.9, 0.4]]),
        bias=np.array([0.0, 0.1, 0.25, 0.0]),
    )
    dense = DenseWeights(kernel=np.array([[-2.0, 1.0]]), bias=np.array([0.1, 0.3]))
    x = 2.0
    # Forward: h_0 = c_0 = 0, so i = o = sigmoid(0) = 1/2, z_g = 2 * -0.5 + 0.25 = -0.75.
    z_g = -0.75
    c = 0.5 * math.tanh(z_g)  # < 0
    h = 0.5 * math.tanh(c)
    logit = -2.0 * h + 0.1  # > 0, larger than h + 0.3: the predicted class 0
    # Dense (one input unit, N = 1): R(h) = (h w + bf (b + eps)) / (z + eps) * logit.
    r_h = (-2.0 * h + bf * (0.1 + eps)) / (logit + eps) * logit
    # Cell (c < 0, sign -1; rows f c_0 = 0 and i g = c; N = 2).
    r_c0 = (bf * -eps / 2) / (c - eps) * r_h
    r_g = (c + bf * -eps / 2) / (c - eps) * r_h
    # Candidate (z_g < 0, sign -1; rows x and h_0 = 0; N = E + H = 2).
    r_x = (x * -0.5 + bf * (0.25 - eps) / 2) / (z_g - eps) * r_g
    r_h0 = (bf * (0.25 - eps) / 2) / (z_g - eps) * r_g

    # Absorbed: A = (1 - bf)(b + eps sign z) / (z + eps sign z) R at the Dense, the cell and the candidate.
    absorbed = (1 - bf) * ((0.1 + eps) / (logit + eps) * logit - eps / (c - eps) * r_h)
    absorbed += (1 - bf) * (0.25 - eps) / (z_g - eps) * r_g

    rel, logits, rest, got_absorbed = reference_ledger([LSTMLayer(w)], dense, np.array([[x]]), 0, eps, bf)
    np.testing.assert_allclose(logits, [logit, h + 0.3], rtol=1e-14)
    np.testing.assert_allclose(rel, [[r_x]], rtol=1e-12)
    assert rest == pytest.approx(r_c0 + r_h0, rel=1e-12)
    assert got_absorbed == pytest.approx(absorbed, rel=1e-12)
    assert logit == pytest.approx(r_x + rest + absorbed, rel=1e-12)


def test_reference_hand_worked_two_steps():
    """E = H = 1, T = 2, eps = bias_factor = 0: the relevance of x_1 flows through h_1 and c_1."""
    sig = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731
    kernel, recurrent, bias = [0.4, -0.3, 0.8, 0.5], [0.6, 0.2, -0.7, 0.3], [0.1, 0.5, 0.2, -0.1]
    w = LSTMWeights(np.array([kernel]), np.array([recurrent]), np.array(bias))
    dense = DenseWeights(kernel=np.array([[1.5]]))
    x1, x2 = 1.2, -0.7
    z1 = [x1 * kernel[k] + bias[k] for k in range(4)]
    i1, g1, o1 = sig(z1[0]), math.tanh(z1[2]), sig(z1[3])
    c1 = i1 * g1
    h1 = o1 * math.tanh(c1)
    z2 = [x2 * kernel[k] + h1 * recurrent[k] + bias[k] for k in range(4)]
    i2, f2, g2, o2 = sig(z2[0]), sig(z2[1]), math.tanh(z2[2]), sig(z2[3])
    c2 = f2 * c1 + i2 * g2
    logit = 1.5 * o2 * math.tanh(c2)
    # Backward pass: all of the logit reaches h_2 and c_2.
    r_c1 = f2 * c1 / c2 * logit
    r_g2 = i2 * g2 / c2 * logit
    r_x2 = x2 * kernel[2] / z2[2] * r_g2
    r_h1 = h1 * recurrent[2] / z2[2] * r_g2
    r_x1 = x1 * kernel[2] / z1[2] * (r_c1 + r_h1)  # c_0 = 0: all of R(c_1) goes to g_1

    # eps = 0 and no Dense bias: only the candidate's bias b_g absorbs, b_g / z_g of R(g_t) at each step.
    absorbed = bias[2] / z2[2] * r_g2 + bias[2] / z1[2] * (r_c1 + r_h1)

    rel, logits, rest, got_absorbed = reference_ledger(
        [LSTMLayer(w)], dense, np.array([[x1], [x2]]), 0, 0.0, 0.0
    )
    np.testing.assert_allclose(logits, [logit], rtol=1e-14)
    np.testing.assert_allclose(rel, [[r_x1], [r_x2]], rtol=1e-12)
    assert rest == 0.0
    assert got_absorbed == pytest.approx(absorbed, rel=1e-12)


def test_reference_backward_direction_is_the_reversed_forward():
    """A Bidirectional layer whose forward half the Dense ignores explains like an LSTM on reversed text."""
    rng = np.random.default_rng(3)
    (uni,), dense = random_model(rng, 3, 4, 1, False, 2, False)
    (bi,), _ = random_model(rng, 3, 4, 1, True, 2, False)
    bi = LSTMLayer(forward=bi.forward, backward=uni.forward)
    bi_dense = DenseWeights(kernel=np.concatenate([np.zeros_like(dense.kernel), dense.kernel]))
    x = rng.normal(size=(9, 3))
    rel, logits, rest, absorbed = reference_ledger([uni], dense, x[::-1], 1, 1e-3, 0.0)
    rel_bi, logits_bi, rest_bi, absorbed_bi = reference_ledger([bi], bi_dense, x, 1, 1e-3, 0.0)
    np.testing.assert_allclose(logits_bi, logits, rtol=1e-13)
    np.testing.assert_allclose(rel_bi, rel[::-1], rtol=1e-12, atol=1e-15)
    assert rest_bi == rest == 0.0
    # The ignored forward half receives no relevance and absorbs none.
    assert absorbed_bi == pytest.approx(absorbed, rel=1e-12, abs=1e-15)


# ---------------------------------------------------------------------------------------------------------
# 2. Engine vs reference
# ---------------------------------------------------------------------------------------------------------

RULES = [(0.0, 0.0), (1e-3, 0.5), (0.1, 1.0), (1e-3, 0.0), (0.0, 1.0)]  # (eps, bias_factor)

ENGINE_MODELS = [  # n_layers, bidirectional, activation, E, H, T, dense bias; always H != E
    pytest.param(1, False, "sigmoid", 3, 5, 1, True, id="1uni-sigmoid-T1"),
    pytest.param(1, True, "hard_sigmoid", 6, 4, 2, False, id="1bi-hard-T2"),
    pytest.param(1, False, "hard_sigmoid_keras2", 2, 3, 37, False, id="1uni-hard2-T37"),
    pytest.param(2, False, "hard_sigmoid_keras2", 5, 2, 9, True, id="2uni-hard2-T9"),
    pytest.param(2, True, "sigmoid", 3, 5, 23, False, id="2bi-sigmoid-T23"),
    pytest.param(3, False, "hard_sigmoid", 6, 4, 60, True, id="3uni-hard-T60"),
    pytest.param(3, True, "hard_sigmoid_keras2", 5, 2, 60, False, id="3bi-hard2-T60"),
    pytest.param(3, True, "sigmoid", 4, 3, 4, True, id="3bi-sigmoid-T4"),
    pytest.param(2, (True, False), "sigmoid", 4, 3, 17, True, id="bi-uni-sigmoid-T17"),
    pytest.param(3, (False, True, False), "hard_sigmoid", 2, 3, 11, False, id="uni-bi-uni-hard-T11"),
]


@pytest.mark.parametrize(
    "n_layers, bidirectional, activation, features, units, steps, dense_bias", ENGINE_MODELS
)
def test_engine_matches_reference(n_layers, bidirectional, activation, features, units, steps, dense_bias):
    """Every rule of RULES (eps = 0 only with the sigmoid: clipped gates can make c_t exactly 0), given
    and predicted targets in turn."""
    rng = np.random.default_rng(steps * 10 + n_layers)
    classes = 2 + steps % 3
    layers, dense = random_model(
        rng, features, units, n_layers, bidirectional, classes, dense_bias, activation
    )
    lengths = random_lengths(rng, 3, steps)
    x = padded_batch(rng, lengths, steps, features)
    explainer = make_explainer(layers, dense, "float64")
    expected_logits = np.stack([reference_forward(layers, dense, x[b, :n]) for b, n in enumerate(lengths)])
    np.testing.assert_allclose(explainer.predict(x, lengths=lengths), expected_logits, rtol=0, atol=1e-10)
    rules = [rule for rule in RULES if rule[0] > 0.0 or activation == "sigmoid"]
    for k, (eps, bias_factor) in enumerate(rules):
        target = rng.integers(classes, size=3) if k % 2 == 0 else None
        result = explainer.explain(x, lengths=lengths, target=target, eps=eps, bias_factor=bias_factor)
        assert result.relevance.shape == (3, steps, features)
        expected_target = expected_logits.argmax(axis=1) if target is None else target
        np.testing.assert_array_equal(result.target, expected_target)
        assert_matches_reference(result, layers, dense, x, lengths, eps, bias_factor)


# ---------------------------------------------------------------------------------------------------------
# 3. Batching and padding
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bidirectional, lengths, steps",
    [(False, [12, 1, 7, 3, 12], 12), (True, [12, 5, 1, 9], 12), ((True, False), [5, 1, 3], 8)],
)
def test_batch_equals_reviews_alone(bidirectional, lengths, steps):
    rng = np.random.default_rng(4)
    layers, dense = random_model(rng, 4, 3, 2, bidirectional, 3, True, "sigmoid")
    lengths = np.array(lengths)
    x = padded_batch(rng, lengths, steps, 4)
    explainer = make_explainer(layers, dense, "float64")
    batch = explainer.explain(x, lengths=lengths, eps=1e-3, bias_factor=0.5)
    zero_padded = explainer.explain(x * mask(lengths, steps), lengths, eps=1e-3, bias_factor=0.5)
    for b, length in enumerate(lengths):
        alone = explainer.explain(x[b : b + 1, :length], eps=1e-3, bias_factor=0.5)
        scale = max(1.0, float(np.abs(alone.relevance).max()))
        assert np.all(batch.relevance[b, length:] == 0.0)
        np.testing.assert_allclose(
            batch.relevance[b, :length], alone.relevance[0], rtol=0, atol=1e-12 * scale
        )
        np.testing.assert_allclose(batch.logits[b], alone.logits[0], rtol=0, atol=1e-12)
        assert abs(batch.rest[b] - alone.rest[0]) <= 1e-12 * scale
        assert batch.target[b] == alone.target[0]
    # The values on the padding do not matter at all.
    np.testing.assert_allclose(zero_padded.relevance, batch.relevance, rtol=0, atol=1e-12)
    np.testing.assert_allclose(zero_padded.logits, batch.logits, rtol=0, atol=1e-12)
    np.testing.assert_allclose(explainer.predict(x, lengths), batch.logits, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# 4. The ledger: target score = sum of relevance + rest + absorbed, at every setting
# ---------------------------------------------------------------------------------------------------------

LEDGER_RULES = [(eps, bias_factor) for eps in (0.0, 1e-3, 0.1) for bias_factor in (0.0, 0.5, 1.0)]
LEDGER_TOLERANCE = {"float64": 1e-9, "float32": 1e-4}


@pytest.mark.parametrize(
    "n_layers, bidirectional, steps, batch",
    [
        pytest.param(1, False, 1, 3, id="uni-T1"),
        pytest.param(1, True, 23, 5, id="bi-T23"),
        pytest.param(3, (True, False, True), 60, 4, id="stacked-T60"),
    ],
)
def test_ledger_balances_at_every_setting(n_layers, bidirectional, steps, batch):
    """Masked batches (garbage padding, lengths from 1 to T), every eps in {0, 1e-3, 0.1} and bias_factor
    in {0, 0.5, 1}, float64 and float32: |residual| <= tol max(1, |score|); float64's absorbed relevance
    equals the reference's; bias_factor 1 absorbs nothing (eps > 0), bias_factor < 1 visibly absorbs."""
    rng = np.random.default_rng(40 + steps)
    layers, dense = random_model(rng, 4, 3, n_layers, bidirectional, 3, True, "sigmoid")
    lengths = random_lengths(rng, batch, steps)
    x = padded_batch(rng, lengths, steps, 4)
    for dtype, tolerance in LEDGER_TOLERANCE.items():
        explainer = make_explainer(layers, dense, dtype)
        for eps, bias_factor in LEDGER_RULES:
            result = explainer.explain(x, lengths, eps=eps, bias_factor=bias_factor)
            score = np.abs(result.target_score.astype(np.float64))
            assert np.all(np.abs(result.residual) <= tolerance * np.maximum(1.0, score)), (
                dtype,
                eps,
                bias_factor,
            )
            if bias_factor == 1.0 and eps > 0:
                assert np.all(result.absorbed == 0.0)
            if bias_factor < 1.0:
                assert np.all(np.abs(result.absorbed) > 1e-6)
            if dtype == "float64":
                for b, length in enumerate(lengths):
                    reference = reference_ledger(
                        layers, dense, x[b, :length], int(result.target[b]), eps, bias_factor
                    )
                    assert abs(result.absorbed[b] - reference[3]) <= 1e-10 * max(1.0, abs(reference[3]))


def zero_denominator_model(case: str) -> tuple[list[LSTMLayer], DenseWeights, np.ndarray]:
    """E = H = 1 and eps = 0 with a denominator that is exactly 0 and receives relevance:
    "cell": c_1 = 0 (hard-sigmoid input gate shut, c_0 = 0), reached by the Dense bias share;
    "candidate": z_g = 0 at step 2 (x_2 = 0, U_g = 0, b_g = 0), reached by the cell's bias share;
    "gru-state": a GRU's h_1 = 0 (hard-sigmoid update gate open, h_0 = 0), reached by the Dense bias share.
    (A GRU's a_t = 0 makes n_t = 0: with eps = 0 it receives nothing.)"""
    if case == "gru-state":
        w = GRUWeights(np.array([[10.0, 0.3, 0.8]]), np.array([[0.1, 0.2, 0.3]]), np.zeros(3), np.zeros(3))
        w = replace(w, recurrent_activation="hard_sigmoid")
        return [LSTMLayer(w)], DenseWeights(np.array([[1.5]]), np.array([0.4])), np.array([[1.0]])
    if case == "cell":
        w = LSTMWeights(
            np.array([[-10.0, 0.3, 0.8, 0.5]]), np.array([[0.1, 0.2, 0.3, 0.4]]), np.zeros(4), "hard_sigmoid"
        )
        return [LSTMLayer(w)], DenseWeights(np.array([[1.5]]), np.array([0.4])), np.array([[1.0]])
    w = LSTMWeights(
        np.array([[0.4, -0.3, 0.8, 0.5]]), np.array([[0.6, 0.2, 0.0, 0.3]]), np.array([0.1, 0.5, 0.0, -0.1])
    )
    return [LSTMLayer(w)], DenseWeights(np.array([[1.5]]), np.array([0.2])), np.array([[1.2], [0.0]])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", ["cell", "candidate", "gru-state"])
def test_zero_denominator_absorbs_all_it_receives(case, dtype):
    """A unit whose denominator is 0 passes nothing down and books all of its relevance as absorbed."""
    layers, dense, x = zero_denominator_model(case)
    bias_factor = 0.5
    rel, logits, rest, absorbed = reference_ledger(layers, dense, x, 0, 0.0, bias_factor)
    if case in ("cell", "gru-state"):  # the Dense absorbs (1 - bf) of the logit, the empty state the rest
        assert rel.sum() == 0.0 and rest == 0.0 and absorbed == pytest.approx(logits[0], rel=1e-14)
    assert abs(logits[0] - rel.sum() - rest - absorbed) <= 1e-12
    result = make_explainer(layers, dense, dtype).explain(x[None], target=0, eps=0.0, bias_factor=bias_factor)
    tolerance = LEDGER_TOLERANCE[dtype]
    np.testing.assert_allclose(result.relevance[0], rel, rtol=0, atol=tolerance)
    assert abs(result.rest[0] - rest) <= tolerance and abs(result.absorbed[0] - absorbed) <= tolerance
    assert abs(result.residual[0]) <= tolerance * max(1.0, abs(logits[0]))


# ---------------------------------------------------------------------------------------------------------
# 5. Keras models
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bidirectional, n_layers, activation, masking, dense_bias",
    [
        (False, 1, "sigmoid", False, True),
        (True, 2, "sigmoid", True, True),
        (False, 2, "hard_sigmoid", True, False),
        (True, 1, "hard_sigmoid", True, False),
        ((True, False), 2, "sigmoid", True, True),
    ],
)
def test_from_keras_predict_and_explain(bidirectional, n_layers, activation, masking, dense_bias):
    rng = np.random.default_rng(6)
    steps, features = 10, 4
    layers, dense = as_float32(
        *random_model(rng, features, 3, n_layers, bidirectional, 3, dense_bias, activation)
    )
    model = build_keras(layers, dense, steps, masking=masking)
    lengths = random_lengths(rng, 5, steps) if masking else np.full(5, steps)
    x = padded_batch(rng, lengths, steps, features, pad="zeros").astype(np.float32)
    expected = model.predict(x, verbose=0)

    explainer32 = from_keras(model, "float32")
    np.testing.assert_allclose(explainer32.predict(x, lengths=lengths), expected, rtol=0, atol=1e-5)
    explainer64 = from_keras(model, "float64")
    np.testing.assert_allclose(explainer64.predict(x, lengths=lengths), expected, rtol=0, atol=1e-5)
    result = explainer64.explain(x.astype(np.float64), lengths=lengths, eps=1e-3, bias_factor=0.5)
    assert_matches_reference(result, layers, dense, x.astype(np.float64), lengths, 1e-3, 0.5)


# ---------------------------------------------------------------------------------------------------------
# 6. float32
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True])
def test_float32_close_to_float64(bidirectional):
    rng = np.random.default_rng(7)
    layers, dense = random_model(rng, 6, 5, 2, bidirectional, 3, True, "sigmoid")
    lengths = random_lengths(rng, 4, 40)
    x = padded_batch(rng, lengths, 40, 6)
    explainer64 = make_explainer(layers, dense, "float64")
    explainer32 = make_explainer(layers, dense, "float32")
    for bias_factor in (0.0, 1.0):
        r64 = explainer64.explain(x, lengths, eps=1e-3, bias_factor=bias_factor)
        r32 = explainer32.explain(x, lengths, eps=1e-3, bias_factor=bias_factor)
        np.testing.assert_array_equal(r32.target, r64.target)
        np.testing.assert_allclose(r32.logits, r64.logits, rtol=0, atol=1e-4)
        for b in range(len(lengths)):
            scale = float(np.abs(r64.relevance[b]).max())
            error = np.abs(np.asarray(r32.relevance[b], np.float64) - r64.relevance[b]).max()
            assert error <= 1e-3 * scale, (bias_factor, b, error / scale)
            assert abs(float(r32.rest[b]) - r64.rest[b]) <= 1e-3 * scale


# ---------------------------------------------------------------------------------------------------------
# 7. API
# ---------------------------------------------------------------------------------------------------------


def test_targets_and_token_relevance():
    rng = np.random.default_rng(8)
    layers, dense = random_model(rng, 3, 4, 1, True, 4)
    lengths = np.array([6, 2, 4])
    x = padded_batch(rng, lengths, 6, 3)
    explainer = make_explainer(layers, dense)

    default = explainer.explain(x, lengths)
    np.testing.assert_array_equal(default.target, default.logits.argmax(axis=1))
    np.testing.assert_allclose(default.token_relevance, default.relevance.sum(-1), rtol=0, atol=1e-13)
    assert default.token_relevance.shape == (3, 6)
    assert default.rest.shape == default.residual.shape == (3,)

    as_int = explainer.explain(x, lengths, target=2)
    np.testing.assert_array_equal(as_int.target, [2, 2, 2])
    assert_matches_reference(as_int, layers, dense, x, lengths, 1e-3, 0.0)

    targets = np.array([3, 0, 1])
    as_array = explainer.explain(x, lengths, target=targets)
    np.testing.assert_array_equal(as_array.target, targets)
    assert_matches_reference(as_array, layers, dense, x, lengths, 1e-3, 0.0)


def test_all_targets_from_one_forward_pass_equal_single_class_runs():
    """explain_targets explains every class (and a per-review target array) from one forward pass, as one
    explain() per class would; its gradient is attribute()'s, for the same classes."""
    rng = np.random.default_rng(11)
    layers, dense = random_model(rng, 3, 4, 2, True, 4)
    lengths = random_lengths(rng, 5, 7)
    x = padded_batch(rng, lengths, 7, 3)
    explainer = make_explainer(layers, dense)
    per_review = rng.integers(4, size=5)
    targets = [0, 1, 2, 3, per_review, None]
    for streams in (1, 2):
        together = explainer.explain_targets(x, lengths, targets, 1e-2, 0.5, streams, gradient=True)
        assert len(together) == len(targets)
        for target, result in zip(targets, together):
            alone = explainer.explain(x, lengths, target, eps=1e-2, bias_factor=0.5)
            for field in ("relevance", "logits", "target", "rest", "absorbed"):
                np.testing.assert_allclose(getattr(result, field), getattr(alone, field), rtol=0, atol=1e-12)
            gradient_x = explainer.attribute(x, lengths, result.target, "gi")
            np.testing.assert_allclose(x * result.gradient, gradient_x, rtol=0, atol=1e-12)
            assert np.all(result.gradient[mask(lengths, 7)[..., 0] == 0] == 0.0)
    assert explainer.explain(x, lengths).gradient is None


def broken_models() -> list:
    rng = np.random.default_rng(9)
    layers, dense = random_model(rng, 3, 4, 2, True, 2)
    (other,), _ = random_model(rng, 3, 5, 1, True, 2)
    wrong_input = LSTMLayer(
        replace(layers[1].forward, kernel=layers[1].forward.kernel[:4]), layers[1].backward
    )
    wrong_bias = LSTMLayer(replace(layers[0].forward, bias=layers[0].forward.bias[:-1]), layers[0].backward)
    relu = LSTMLayer(
        replace(layers[0].forward, recurrent_activation="relu"),
        replace(layers[0].backward, recurrent_activation="relu"),
    )
    return [
        pytest.param([layers[0], wrong_input], dense, id="layer-input-dim"),
        pytest.param([wrong_bias, layers[1]], dense, id="bias-shape"),
        pytest.param(
            [LSTMLayer(layers[0].forward, other.backward), layers[1]], dense, id="directions-differ"
        ),
        pytest.param([relu, layers[1]], dense, id="activation"),
        pytest.param(layers, DenseWeights(dense.kernel[:5]), id="dense-kernel"),
        pytest.param(layers, DenseWeights(dense.kernel, np.zeros(3)), id="dense-bias"),
        pytest.param([], dense, id="no-layer"),
    ]


@pytest.mark.parametrize("layers, dense", broken_models())
def test_unsupported_weights_raise(layers, dense):
    with pytest.raises(UnsupportedModelError):
        make_explainer(layers, dense)


@pytest.mark.parametrize(
    "layer",
    [
        pytest.param(lambda: keras.layers.SimpleRNN(3), id="simple-rnn"),
        pytest.param(lambda: keras.layers.GRU(3, activation="relu"), id="gru-relu"),
        pytest.param(lambda: keras.layers.LSTM(3, activation="relu"), id="lstm-relu"),
    ],
)
def test_unsupported_keras_model_raises(layer):
    model = keras.Sequential([keras.Input(shape=(5, 2)), layer(), keras.layers.Dense(2)])
    with pytest.raises(UnsupportedModelError):
        from_keras(model, "float64")


@pytest.mark.parametrize("streams", [2, 3])
def test_concurrent_streams_give_the_same_explanation(streams):
    """explain(streams=k) splits the batch over k threads: every field equals the one-stream result."""
    rng = np.random.default_rng(7)
    layers, dense = random_model(rng, 5, 4, 2, True, 3)
    explainer = make_explainer(layers, dense)
    x = rng.normal(size=(7, 9, 5))
    lengths = random_lengths(rng, 7, 9)
    single = explainer.explain(x, lengths, eps=1e-2, bias_factor=0.5)
    split = explainer.explain(x, lengths, eps=1e-2, bias_factor=0.5, streams=streams)
    for field in ("relevance", "logits", "target", "rest", "absorbed", "lengths"):
        np.testing.assert_allclose(getattr(split, field), getattr(single, field), rtol=0, atol=1e-13)
