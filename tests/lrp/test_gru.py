"""GRU layers: the numpy reference against Keras and hand-worked cases, then the engine (lrp.gru through
LSTMExplainer) against the reference, alone and in stacks mixed with LSTM layers."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_engine import (
    RULES,
    assert_matches_reference,
    keras_activation,
    make_explainer,
    mask,
    padded_batch,
    random_lengths,
)

from lrp import gru
from lrp.recurrent import to_processing_order
from lrp.reference import (
    layer_lrp,
    random_model,
    reference_forward,
    reference_ledger,
    run_layer,
)
from lrp.weights import DenseWeights, GRUWeights, LSTMLayer

sig = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731


def build_keras(layers: list[LSTMLayer], dense: DenseWeights, steps: int, masking: bool = False):
    """A Keras 3 model with the given weights: [Masking] -> (Bidirectional) GRU / LSTM ... -> Dense."""
    stack: list = [keras.Input(shape=(steps, layers[0].forward.input_dim))]
    if masking:
        stack.append(keras.layers.Masking(mask_value=0.0))
    weights = []
    for n, layer in enumerate(layers):
        w = layer.forward
        options = dict(
            recurrent_activation=keras_activation(w.recurrent_activation),
            return_sequences=n < len(layers) - 1,
        )
        if layer.kind == "gru":
            cell = keras.layers.GRU(w.units, reset_after=w.reset_after, **options)
        else:
            cell = keras.layers.LSTM(w.units, **options)
        stack.append(cell if layer.backward is None else keras.layers.Bidirectional(cell))
        for d in layer.directions:
            weights += [d.kernel, d.recurrent_kernel]
            weights.append(
                np.stack([d.bias, d.recurrent_bias]) if layer.kind == "gru" and w.reset_after else d.bias
            )
    stack.append(keras.layers.Dense(dense.classes, use_bias=dense.bias is not None))
    weights += [dense.kernel] + ([] if dense.bias is None else [dense.bias])
    model = keras.Sequential(stack)
    model.set_weights([np.asarray(w, np.float32) for w in weights])
    return model


def rounded(layers: list[LSTMLayer], dense: DenseWeights) -> tuple[list[LSTMLayer], DenseWeights]:
    """The same model with every weight rounded to float32 (kept as float64 arrays)."""
    from dataclasses import fields, replace

    def r(a):
        return a if not isinstance(a, np.ndarray) else np.asarray(a, np.float32).astype(np.float64)

    def direction(w):
        return None if w is None else replace(w, **{f.name: r(getattr(w, f.name)) for f in fields(w)})

    return (
        [LSTMLayer(direction(layer.forward), direction(layer.backward)) for layer in layers],
        DenseWeights(r(dense.kernel), r(dense.bias)),
    )


# ---------------------------------------------------------------------------------------------------------
# 1. The reference
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("activation", ["sigmoid", "hard_sigmoid", "hard_sigmoid_keras2"])
def test_reference_forward_matches_keras(reset_after, activation):
    """GRU, LSTM, GRU layers (unidirectional with Keras 2's hard_sigmoid: Keras cannot copy its lambda)."""
    rng = np.random.default_rng(11)
    bidirectional = (False,) * 3 if activation == "hard_sigmoid_keras2" else (True, False, True)
    kinds = ("gru", "lstm", "gru")
    layers, dense = rounded(
        *random_model(rng, 4, 3, 3, bidirectional, 3, True, activation, 1.5, kinds, reset_after)
    )
    model = build_keras(layers, dense, 9)
    x = rng.normal(size=(4, 9, 4)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    got = np.stack([reference_forward(layers, dense, x[b].astype(np.float64)) for b in range(4)])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("bidirectional, n_layers", [(False, 1), (True, 1), (False, 3), (True, 2)])
def test_reference_conserves_with_full_bias(bidirectional, n_layers, reset_after):
    rng = np.random.default_rng(12)
    layers, dense = random_model(
        rng, 3, 5, n_layers, bidirectional, 4, True, kinds="gru", reset_after=reset_after
    )
    for length in (1, 6, 25):
        x = rng.normal(size=(length, 3))
        target = int(rng.integers(4))
        rel, logits, rest, _ = reference_ledger(layers, dense, x, target, 0.0, 1.0)
        assert abs(logits[target] - rel.sum() - rest) <= 1e-9 * max(1.0, abs(logits[target]))
        rel0, _, rest0, _ = reference_ledger(layers, dense, x, target, 0.0, 0.0)
        assert rest0 == 0.0
        assert abs(logits[target] - rel0.sum()) > 1e-6  # the check above is not vacuous


@pytest.mark.parametrize("eps, bias_factor", [*RULES, (0.5, 0.25)])
def test_reference_ledger_accounts_for_every_share(eps, bias_factor):
    """sum(relevance) + rest + absorbed = the logit, for any rule, in a stack mixing GRU and LSTM layers."""
    rng = np.random.default_rng(13)
    for reset_after in (True, False):
        layers, dense = random_model(
            rng, 3, 4, 3, (True, False, True), 3, True, kinds=("gru", "lstm", "gru"), reset_after=reset_after
        )
        x = rng.normal(size=(7, 3))
        rel, logits, rest, absorbed = reference_ledger(layers, dense, x, 1, eps, bias_factor)
        assert abs(logits[1] - rel.sum() - rest - absorbed) <= 1e-10 * max(1.0, abs(logits[1]))
        if bias_factor < 1:
            assert abs(absorbed) > 1e-6


@pytest.mark.parametrize("reset_after", [True, False])
def test_reference_hand_worked_two_steps(reset_after):
    """E = H = 1, T = 2, eps = bias_factor = 0. R(h_1) must come from z_2 h_1 (not z_2 n_2), and step 1
    must start from h_0 = 0 (not from the last step's state)."""
    kernel, recurrent = [0.4, -0.3, 0.8], [0.6, 0.2, -0.7]  # gates z, r, n
    bias, recurrent_bias = [0.1, 0.5, 0.2], [-0.2, 0.3, 0.4]
    w = GRUWeights(
        np.array([kernel]),
        np.array([recurrent]),
        np.array(bias),
        np.array(recurrent_bias) if reset_after else None,
        reset_after,
    )
    rb = recurrent_bias if reset_after else [0.0, 0.0, 0.0]
    dense = DenseWeights(kernel=np.array([[1.5]]))
    x1, x2 = 1.2, -0.7

    def step(x, h):
        z = sig(x * kernel[0] + bias[0] + h * recurrent[0] + rb[0])
        r = sig(x * kernel[1] + bias[1] + h * recurrent[1] + rb[1])
        u_n = r * recurrent[2]  # the weight of h in a, r held fixed (the same product in both modes)
        b_a = bias[2] + r * rb[2]
        a = x * kernel[2] + h * u_n + b_a
        return z, a, u_n, z * h + (1 - z) * math.tanh(a)

    z1, a1, _, h1 = step(x1, 0.0)
    z2, a2, u2, h2 = step(x2, h1)
    logit = 1.5 * h2
    # Backward: all of the logit reaches h_2; h_2 = z_2 h_1 + (1 - z_2) n_2.
    r_kept = z2 * h1 / h2 * logit
    r_a2 = (1 - z2) * math.tanh(a2) / h2 * logit
    r_x2 = x2 * kernel[2] / a2 * r_a2
    r_h1 = r_kept + h1 * u2 / a2 * r_a2
    # h_1 = z_1 h_0 + (1 - z_1) n_1 with h_0 = 0: all of R(h_1) goes to n_1.
    r_x1 = x1 * kernel[2] / a1 * r_h1

    rel, logits, rest, _ = reference_ledger([LSTMLayer(w)], dense, np.array([[x1], [x2]]), 0, 0.0, 0.0)
    np.testing.assert_allclose(logits, [logit], rtol=1e-14)
    np.testing.assert_allclose(rel, [[r_x1], [r_x2]], rtol=1e-12)
    assert rest == 0.0
    assert z1 != 0.5  # the two steps differ


# ---------------------------------------------------------------------------------------------------------
# 2. The engine against the reference
# ---------------------------------------------------------------------------------------------------------

GRU_MODELS = [  # kinds, bidirectional, activation, reset_after, E, H, T, dense bias; always H != E
    pytest.param("gru", (False,), "sigmoid", True, 3, 5, 1, True, id="1uni-sigmoid-after-T1"),
    pytest.param("gru", (True,), "sigmoid", False, 4, 3, 1, False, id="1bi-sigmoid-before-T1"),
    pytest.param("gru", (True,), "hard_sigmoid", True, 6, 4, 2, False, id="1bi-hard-after-T2"),
    pytest.param("gru", (False,), "hard_sigmoid_keras2", False, 2, 3, 37, False, id="1uni-hard2-before-T37"),
    pytest.param("gru", (False, False), "sigmoid", False, 5, 2, 9, True, id="2uni-sigmoid-before-T9"),
    pytest.param("gru", (True, True), "sigmoid", True, 3, 5, 23, False, id="2bi-sigmoid-after-T23"),
    pytest.param(
        "gru", (True, False, True), "hard_sigmoid", False, 6, 4, 60, True, id="3mix-hard-before-T60"
    ),
    pytest.param("gru", (True, True, True), "hard_sigmoid", True, 5, 2, 60, False, id="3bi-hard-after-T60"),
    pytest.param(
        "gru", (False, False, False), "hard_sigmoid_keras2", True, 4, 3, 4, True, id="3uni-hard2-after-T4"
    ),
    pytest.param(("gru", "lstm"), (True, False), "sigmoid", True, 4, 3, 17, True, id="gru-lstm-T17"),
    pytest.param(
        ("lstm", "gru", "lstm"),
        (False, True, True),
        "sigmoid",
        False,
        2,
        3,
        11,
        False,
        id="lstm-gru-lstm-T11",
    ),
]


@pytest.mark.parametrize(
    "kinds, bidirectional, activation, reset_after, features, units, steps, dense_bias", GRU_MODELS
)
def test_engine_matches_reference(
    kinds, bidirectional, activation, reset_after, features, units, steps, dense_bias
):
    """Every rule of RULES (eps = 0 only with the sigmoid: clipped gates can make h_t exactly 0), given
    and predicted targets in turn."""
    rng = np.random.default_rng(steps * 10 + len(bidirectional))
    classes = 2 + steps % 3
    layers, dense = random_model(
        rng,
        features,
        units,
        len(bidirectional),
        bidirectional,
        classes,
        dense_bias,
        activation,
        kinds=kinds,
        reset_after=reset_after,
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
        expected_target = expected_logits.argmax(axis=1) if target is None else target
        np.testing.assert_array_equal(result.target, expected_target)
        assert_matches_reference(result, layers, dense, x, lengths, eps, bias_factor)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("eps, bias_factor", [(0.0, 0.0), (1e-3, 0.5), (0.1, 1.0), (0.01, 0.0)])
def test_layer_relevance_and_ledger_match_the_reference(reset_after, eps, bias_factor):
    """lrp.gru.layer_relevance with relevance arriving on every h_t (as from a layer above): relevance of the
    inputs, rest and absorbed relevance equal the reference layer's, review by review."""
    rng = np.random.default_rng(14)
    (layer,), _ = random_model(rng, 3, 4, 1, True, 2, kinds="gru", reset_after=reset_after)
    lengths = np.array([8, 3, 1, 6])
    x = padded_batch(rng, lengths, 8, 3)
    r_out = rng.normal(size=(4, 8, 8)) * mask(lengths, 8)
    w = gru.LayerTensors.from_layer(layer, tf.float64)
    on_mask = tf.sequence_mask(lengths, 8)
    _, _, trace = gru.layer_forward(w, tf.constant(x), on_mask, keep_trace=True)
    injected = to_processing_order(tf.constant(r_out), 2, split=True)
    r_x, rest, absorbed = (t.numpy() for t in gru.layer_relevance(w, trace, injected, eps, bias_factor))
    for b, length in enumerate(lengths):
        _, traces = run_layer(layer, x[b, :length])
        expected, expected_rest, expected_absorbed = layer_lrp(
            layer, traces, r_out[b, :length], eps, bias_factor
        )
        np.testing.assert_allclose(r_x[b, :length], expected, rtol=0, atol=1e-10)
        assert np.all(r_x[b, length:] == 0.0)
        assert abs(rest[b] - expected_rest) <= 1e-10 and abs(absorbed[b] - expected_absorbed) <= 1e-10
        total = r_out[b].sum()
        assert abs(total - r_x[b].sum() - rest[b] - absorbed[b]) <= 1e-10 * max(1.0, abs(total))


@pytest.mark.parametrize(
    "kinds, bidirectional, lengths, steps, reset_after",
    [
        ("gru", (False, False), [12, 1, 7, 3, 12], 12, True),
        ("gru", (True, True), [12, 5, 1, 9], 12, False),
        ("gru", (True, True), [10, 4, 1], 10, True),
        (("gru", "lstm"), (True, False), [5, 1, 3], 8, False),
        (("lstm", "gru"), (True, True), [9, 2, 6], 9, True),
    ],
)
def test_batch_equals_reviews_alone(kinds, bidirectional, lengths, steps, reset_after):
    rng = np.random.default_rng(15)
    layers, dense = random_model(rng, 4, 3, 2, bidirectional, 3, True, kinds=kinds, reset_after=reset_after)
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
    np.testing.assert_allclose(zero_padded.relevance, batch.relevance, rtol=0, atol=1e-12)
    np.testing.assert_allclose(explainer.predict(x, lengths), batch.logits, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "kinds, bidirectional, activation, reset_after",
    [
        ("gru", (False,), "sigmoid", True),
        ("gru", (True,), "sigmoid", False),
        ("gru", (True, True), "sigmoid", True),
        (("gru", "lstm", "gru"), (False, True, False), "sigmoid", False),
        ("gru", (True,), "hard_sigmoid", True),
    ],
)
def test_engine_conserves_with_full_bias(kinds, bidirectional, activation, reset_after):
    rng = np.random.default_rng(16)
    layers, dense = random_model(
        rng,
        5,
        4,
        len(bidirectional),
        bidirectional,
        3,
        True,
        activation,
        kinds=kinds,
        reset_after=reset_after,
    )
    lengths = random_lengths(rng, 6, 30)
    x = padded_batch(rng, lengths, 30, 5)
    explainer = make_explainer(layers, dense)
    for eps in [0.0, 1e-3] if activation == "sigmoid" else [1e-3]:
        result = explainer.explain(x, lengths, eps=eps, bias_factor=1.0)
        assert np.all(np.abs(result.residual) <= 1e-9 * np.maximum(1.0, np.abs(result.target_score))), eps
        partial = explainer.explain(x, lengths, eps=eps, bias_factor=0.0)  # the ledger books what it absorbs
        assert np.all(np.abs(partial.residual) <= 1e-9 * np.maximum(1.0, np.abs(partial.target_score))), eps
        assert np.all(np.abs(partial.absorbed) > 1e-6)


# ---------------------------------------------------------------------------------------------------------
# 3. Keras models
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kinds, bidirectional, activation, reset_after, masking",
    [
        ("gru", (False,), "sigmoid", True, False),
        ("gru", (True, True), "sigmoid", True, True),
        ("gru", (False, False), "hard_sigmoid", False, True),
        ("gru", (True,), "hard_sigmoid", True, True),
        (("gru", "lstm"), (True, False), "sigmoid", False, True),
        (("lstm", "gru", "gru"), (True, False, True), "sigmoid", True, True),
    ],
)
def test_from_keras_predict_and_explain(kinds, bidirectional, activation, reset_after, masking):
    from lrp import LSTMExplainer

    rng = np.random.default_rng(17)
    steps, features = 10, 4
    layers, dense = rounded(
        *random_model(
            rng,
            features,
            3,
            len(bidirectional),
            bidirectional,
            3,
            True,
            activation,
            kinds=kinds,
            reset_after=reset_after,
        )
    )
    model = build_keras(layers, dense, steps, masking=masking)
    lengths = random_lengths(rng, 5, steps) if masking else np.full(5, steps)
    x = padded_batch(rng, lengths, steps, features, pad="zeros").astype(np.float32)
    expected = model.predict(x, verbose=0)
    for dtype in ("float32", "float64"):
        explainer = LSTMExplainer.from_keras(model, dtype=dtype)
        np.testing.assert_allclose(explainer.predict(x, lengths=lengths), expected, rtol=0, atol=1e-5)
    result = explainer.explain(x.astype(np.float64), lengths=lengths, eps=1e-3, bias_factor=0.5)
    assert_matches_reference(result, layers, dense, x.astype(np.float64), lengths, 1e-3, 0.5)
