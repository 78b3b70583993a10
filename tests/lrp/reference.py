"""Slow, obvious float64 numpy reference of LRP for stacked (bi-)LSTM and GRU classifiers (Arras et al. 2017).

One review at a time: x has shape (L, E) and holds only the L real tokens. Explicit Python loops over time;
every step follows the equations in the engine's specification literally, so the engine can be checked
against it. Weights are the dataclasses of `lrp.weights`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lrp.weights import CellWeights, DenseWeights, GRUWeights, LSTMLayer, LSTMWeights


def recurrent_activation(name: str, z: np.ndarray) -> np.ndarray:
    """The gate nonlinearity `name` applied elementwise to z."""
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "hard_sigmoid":
        return np.clip(z / 6.0 + 0.5, 0.0, 1.0)
    if name == "hard_sigmoid_keras2":
        return np.clip(0.2 * z + 0.5, 0.0, 1.0)
    raise ValueError(f"unknown recurrent activation {name!r}")


def lrp_linear(
    hin: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    hout: np.ndarray,
    rout: np.ndarray,
    n_units: int,
    eps: float,
    bias_factor: float,
) -> np.ndarray:
    """LRP-epsilon through hout = hin w + b, written as the full (D, M) message matrix.

    hin: (D,), w: (D, M), b: (M,), hout: (M,), rout: (M,) -> relevance of hin, (D,).
    """
    sign = np.where(hout >= 0.0, 1.0, -1.0)  # sign(0) = +1
    numer = w * hin[:, None] + bias_factor * (b[None, :] + eps * sign[None, :]) / n_units  # (D, M)
    denom = hout[None, :] + eps * sign[None, :]  # (1, M)
    message = numer / denom * rout[None, :]  # (D, M)
    return message.sum(axis=1)


def absorbed_relevance(
    b: np.ndarray, hout: np.ndarray, rout: np.ndarray, eps: float, bias_factor: float
) -> float:
    """What one epsilon split through hout = hin w + b keeps back, the relevance no lower unit receives:
    (1 - bias_factor) * sum_j (b_j + eps sign hout_j) / (hout_j + eps sign hout_j) * rout_j."""
    sign = np.where(hout >= 0.0, 1.0, -1.0)
    return float((1.0 - bias_factor) * np.sum((b + eps * sign) / (hout + eps * sign) * rout))


@dataclass
class DirectionTrace:
    """The forward pass of one LSTM direction, in its own processing order.

    x: (L, D); h, c: (L + 1, H) with h[0] = c[0] = 0 the initial state, h[t + 1] the state after step t;
    i, f, g, o, zg: (L, H) the gates and the cell candidate's pre-activation at step t.
    """

    x: np.ndarray
    h: np.ndarray
    c: np.ndarray
    i: np.ndarray
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    zg: np.ndarray


def run_lstm_direction(w: LSTMWeights, x: np.ndarray) -> DirectionTrace:
    """Run one LSTM direction over x (L, D), already in processing order."""
    kernel = np.asarray(w.kernel, np.float64)
    recurrent = np.asarray(w.recurrent_kernel, np.float64)
    bias = np.asarray(w.bias, np.float64)
    length, units = x.shape[0], recurrent.shape[0]
    h = np.zeros((length + 1, units))
    c = np.zeros((length + 1, units))
    gates = {name: np.zeros((length, units)) for name in ("i", "f", "g", "o", "zg")}
    for t in range(length):
        z = x[t] @ kernel + h[t] @ recurrent + bias  # (4H,)
        z_i, z_f, z_g, z_o = (z[k * units : (k + 1) * units] for k in range(4))
        gates["i"][t] = recurrent_activation(w.recurrent_activation, z_i)
        gates["f"][t] = recurrent_activation(w.recurrent_activation, z_f)
        gates["g"][t] = np.tanh(z_g)
        gates["o"][t] = recurrent_activation(w.recurrent_activation, z_o)
        gates["zg"][t] = z_g
        c[t + 1] = gates["f"][t] * c[t] + gates["i"][t] * gates["g"][t]
        h[t + 1] = gates["o"][t] * np.tanh(c[t + 1])
    return DirectionTrace(x=x, h=h, c=c, **gates)


def lstm_direction_lrp(
    w: LSTMWeights, trace: DirectionTrace, r_h: np.ndarray, eps: float, bias_factor: float
) -> tuple[np.ndarray, float, float]:
    """Relevance of one LSTM direction's inputs, given the relevance r_h (L, H) of its outputs h_1..h_L.

    Everything in processing order. Returns (relevance of x, (L, D); relevance left on h_0 and c_0;
    relevance absorbed by biases and stabilisers).
    """
    length, units = r_h.shape
    n_inputs = trace.x.shape[1]
    kernel_g = np.asarray(w.kernel, np.float64)[:, 2 * units : 3 * units]  # (D, H)
    recurrent_g = np.asarray(w.recurrent_kernel, np.float64)[:, 2 * units : 3 * units]  # (H, H)
    bias_g = np.asarray(w.bias, np.float64)[2 * units : 3 * units]  # (H,)
    identity, no_bias = np.eye(units), np.zeros(units)
    r_x = np.zeros((length, n_inputs))
    r_h_from_next = np.zeros(units)  # relevance that step t + 1 sends to h_t
    r_c_from_next = np.zeros(units)  # relevance that step t + 1 sends to c_t
    absorbed = 0.0
    for t in reversed(range(length)):
        c_t = trace.c[t + 1]
        r_c = r_c_from_next + r_h[t] + r_h_from_next  # R(h_t) goes to c_t
        r_c_from_next = lrp_linear(
            trace.f[t] * trace.c[t], identity, no_bias, c_t, r_c, 2 * units, eps, bias_factor
        )
        r_g = lrp_linear(trace.i[t] * trace.g[t], identity, no_bias, c_t, r_c, 2 * units, eps, bias_factor)
        absorbed += absorbed_relevance(no_bias, c_t, r_c, eps, bias_factor)
        absorbed += absorbed_relevance(bias_g, trace.zg[t], r_g, eps, bias_factor)
        n_g = n_inputs + units
        r_x[t] = lrp_linear(trace.x[t], kernel_g, bias_g, trace.zg[t], r_g, n_g, eps, bias_factor)
        r_h_from_next = lrp_linear(trace.h[t], recurrent_g, bias_g, trace.zg[t], r_g, n_g, eps, bias_factor)
    rest = float(r_h_from_next.sum() + r_c_from_next.sum())
    return r_x, rest, absorbed


@dataclass
class GRUTrace:
    """The forward pass of one GRU direction, in its own processing order.

    x: (L, D); h: (L + 1, H) with h[0] = 0 the initial state, h[t + 1] the state after step t;
    z, r, n, a: (L, H) the update and reset gates, the candidate and its pre-activation at step t.
    """

    x: np.ndarray
    h: np.ndarray
    z: np.ndarray
    r: np.ndarray
    n: np.ndarray
    a: np.ndarray


def run_gru_direction(w: GRUWeights, x: np.ndarray) -> GRUTrace:
    """Run one GRU direction over x (L, D), already in processing order (Keras's equations, gates z, r, n)."""
    kernel = np.asarray(w.kernel, np.float64)
    recurrent = np.asarray(w.recurrent_kernel, np.float64)
    bias = np.asarray(w.bias, np.float64)
    length, units = x.shape[0], recurrent.shape[0]
    recurrent_n = recurrent[:, 2 * units :]
    h = np.zeros((length + 1, units))
    gates = {name: np.zeros((length, units)) for name in ("z", "r", "n", "a")}
    for t in range(length):
        xw = x[t] @ kernel + bias  # (3H,)
        hu = h[t] @ recurrent  # (3H,)
        if w.reset_after:
            hu = hu + np.asarray(w.recurrent_bias, np.float64)
        z = recurrent_activation(w.recurrent_activation, xw[:units] + hu[:units])
        r = recurrent_activation(w.recurrent_activation, xw[units : 2 * units] + hu[units : 2 * units])
        recurrent_part = r * hu[2 * units :] if w.reset_after else (r * h[t]) @ recurrent_n
        a = xw[2 * units :] + recurrent_part
        n = np.tanh(a)
        h[t + 1] = z * h[t] + (1.0 - z) * n
        for name, value in (("z", z), ("r", r), ("n", n), ("a", a)):
            gates[name][t] = value
    return GRUTrace(x=x, h=h, **gates)


def gru_direction_lrp(
    w: GRUWeights, trace: GRUTrace, r_h: np.ndarray, eps: float, bias_factor: float
) -> tuple[np.ndarray, float, float]:
    """Relevance of one GRU direction's inputs, given the relevance r_h (L, H) of its outputs h_1..h_L.

    h_t = z h_{t-1} + (1 - z) n_t splits by the epsilon rule (N = 2H): all of R(z h_{t-1}) goes to h_{t-1},
    all of R((1 - z) n_t) to n_t and a_t. a_t = x W_n + h_{t-1} W_h + b_a splits by the epsilon rule
    (N = D + H) with r_t fixed: W_h = U_n diag(r_t), b_a = b_n + r_t b'_n (reset_after) or
    W_h = diag(r_t) U_n, b_a = b_n. Returns (relevance of x, (L, D); relevance left on h_0; absorbed).
    """
    length, units = r_h.shape
    n_inputs = trace.x.shape[1]
    kernel_n = np.asarray(w.kernel, np.float64)[:, 2 * units :]  # (D, H)
    recurrent_n = np.asarray(w.recurrent_kernel, np.float64)[:, 2 * units :]  # (H, H)
    bias_n = np.asarray(w.bias, np.float64)[2 * units :]  # (H,)
    identity, no_bias = np.eye(units), np.zeros(units)
    r_x = np.zeros((length, n_inputs))
    r_h_from_next = np.zeros(units)  # relevance that step t + 1 sends to h_t
    absorbed = 0.0
    for t in reversed(range(length)):
        h_prev, h_t, z, r = trace.h[t], trace.h[t + 1], trace.z[t], trace.r[t]
        r_total = r_h[t] + r_h_from_next
        n_h = 2 * units
        r_kept = lrp_linear(z * h_prev, identity, no_bias, h_t, r_total, n_h, eps, bias_factor)
        r_n = lrp_linear((1.0 - z) * trace.n[t], identity, no_bias, h_t, r_total, n_h, eps, bias_factor)
        absorbed += absorbed_relevance(no_bias, h_t, r_total, eps, bias_factor)
        if w.reset_after:
            w_h = recurrent_n * r[None, :]
            b_a = bias_n + r * np.asarray(w.recurrent_bias, np.float64)[2 * units :]
        else:
            w_h, b_a = r[:, None] * recurrent_n, bias_n
        n_a = n_inputs + units
        r_x[t] = lrp_linear(trace.x[t], kernel_n, b_a, trace.a[t], r_n, n_a, eps, bias_factor)
        r_h_from_next = r_kept + lrp_linear(h_prev, w_h, b_a, trace.a[t], r_n, n_a, eps, bias_factor)
        absorbed += absorbed_relevance(b_a, trace.a[t], r_n, eps, bias_factor)
    return r_x, float(r_h_from_next.sum()), absorbed


def run_direction(w: CellWeights, x: np.ndarray) -> DirectionTrace | GRUTrace:
    """Run one direction of either kind over x (L, D), in processing order."""
    return run_gru_direction(w, x) if isinstance(w, GRUWeights) else run_lstm_direction(w, x)


def direction_lrp(
    w: CellWeights, trace: DirectionTrace | GRUTrace, r_h: np.ndarray, eps: float, bias_factor: float
) -> tuple[np.ndarray, float, float]:
    """lstm_direction_lrp or gru_direction_lrp, by the kind of w."""
    explain = gru_direction_lrp if isinstance(w, GRUWeights) else lstm_direction_lrp
    return explain(w, trace, r_h, eps, bias_factor)


def run_layer(layer: LSTMLayer, x: np.ndarray) -> tuple[np.ndarray, list]:
    """Run a layer over x (L, D) -> (output sequence (L, H * directions) at original positions, traces)."""
    forward = run_direction(layer.forward, x)
    if layer.backward is None:
        return forward.h[1:], [forward]
    backward = run_direction(layer.backward, x[::-1])
    return np.concatenate([forward.h[1:], backward.h[1:][::-1]], axis=1), [forward, backward]


def final_state(layer: LSTMLayer, traces: list) -> np.ndarray:
    """The last layer's final state: forward after the last token, backward after token 0. (H * dirs,)."""
    return np.concatenate([trace.h[-1] for trace in traces])


def layer_lrp(
    layer: LSTMLayer, traces: list, r_out: np.ndarray, eps: float, bias_factor: float
) -> tuple[np.ndarray, float, float]:
    """Relevance of a layer's input (L, D) given r_out (L, H * dirs) at original positions; plus its rest
    and absorbed relevance."""
    units = layer.forward.units
    r_in, rest, absorbed = direction_lrp(layer.forward, traces[0], r_out[:, :units], eps, bias_factor)
    if layer.backward is not None:
        r_back, rest_back, absorbed_back = direction_lrp(
            layer.backward, traces[1], r_out[::-1, units:], eps, bias_factor
        )
        r_in = r_in + r_back[::-1]
        rest += rest_back
        absorbed += absorbed_back
    return r_in, rest, absorbed


def dense_arrays(dense: DenseWeights) -> tuple[np.ndarray, np.ndarray]:
    """The Dense kernel (D, C) and bias (C,) in float64; a zero bias when there is none."""
    kernel = np.asarray(dense.kernel, np.float64)
    bias = np.zeros(kernel.shape[1]) if dense.bias is None else np.asarray(dense.bias, np.float64)
    return kernel, bias


def forward_all(layers: Sequence[LSTMLayer], x: np.ndarray) -> tuple[list[list], np.ndarray]:
    """Run the stack over x (L, E) -> (traces per layer, the last layer's final state (D,))."""
    all_traces = []
    sequence = np.asarray(x, np.float64)
    for layer in layers:
        sequence, traces = run_layer(layer, sequence)
        all_traces.append(traces)
    return all_traces, final_state(layers[-1], all_traces[-1])


def reference_forward(layers: Sequence[LSTMLayer], dense: DenseWeights, x: np.ndarray) -> np.ndarray:
    """Logits (C,) of one review x (L, E)."""
    _, state = forward_all(layers, x)
    kernel, bias = dense_arrays(dense)
    return state @ kernel + bias


def reference_lrp(
    layers: Sequence[LSTMLayer],
    dense: DenseWeights,
    x: np.ndarray,
    target: int,
    eps: float,
    bias_factor: float,
) -> tuple[np.ndarray, np.ndarray, float]:
    """LRP of logit `target` for one review x (L, E) -> (relevance (L, E), logits (C,), rest)."""
    return reference_ledger(layers, dense, x, target, eps, bias_factor)[:3]


def reference_ledger(
    layers: Sequence[LSTMLayer],
    dense: DenseWeights,
    x: np.ndarray,
    target: int,
    eps: float,
    bias_factor: float,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """reference_lrp and the relevance absorbed by all biases and stabilisers, the Dense layer's included:
    (relevance (L, E), logits (C,), rest, absorbed); sum(relevance) + rest + absorbed = logits[target]."""
    all_traces, state = forward_all(layers, x)
    kernel, bias = dense_arrays(dense)
    logits = state @ kernel + bias
    r_logits = np.zeros_like(logits)
    r_logits[target] = logits[target]
    r_state = lrp_linear(state, kernel, bias, logits, r_logits, state.shape[0], eps, bias_factor)
    absorbed = absorbed_relevance(bias, logits, r_logits, eps, bias_factor)
    length, units = np.shape(x)[0], layers[-1].forward.units
    r_out = np.zeros((length, layers[-1].output_dim))
    r_out[-1, :units] = r_state[:units]  # forward final state: after the last token
    r_out[0, units:] = r_state[units:]  # backward final state: after token 0 (empty when unidirectional)
    rest = 0.0
    for layer, traces in zip(reversed(layers), reversed(all_traces), strict=True):
        r_out, layer_rest, layer_absorbed = layer_lrp(layer, traces, r_out, eps, bias_factor)
        rest += layer_rest
        absorbed += layer_absorbed
    return r_out, logits, rest, absorbed


def random_direction(
    rng: np.random.Generator,
    input_dim: int,
    units: int,
    activation: str,
    scale: float,
    kind: str = "lstm",
    reset_after: bool = True,
) -> CellWeights:
    """Random weights for one direction of `kind` ('lstm' or 'gru'); pre-activations are O(scale) for O(1)
    inputs."""
    gates = 4 if kind == "lstm" else 3
    kernel = rng.normal(0.0, scale / np.sqrt(input_dim), (input_dim, gates * units))
    recurrent = rng.normal(0.0, scale / np.sqrt(units), (units, gates * units))
    bias = rng.normal(0.0, 0.5 * scale, gates * units)
    if kind == "lstm":
        return LSTMWeights(kernel, recurrent, bias, recurrent_activation=activation)
    recurrent_bias = rng.normal(0.0, 0.5 * scale, gates * units) if reset_after else None
    return GRUWeights(kernel, recurrent, bias, recurrent_bias, reset_after, activation)


def random_model(
    rng: np.random.Generator,
    E: int,
    H: int,
    n_layers: int,
    bidirectional: bool | Sequence[bool],
    classes: int,
    dense_bias: bool = True,
    activation: str = "sigmoid",
    scale: float = 1.0,
    kinds: str | Sequence[str] = "lstm",
    reset_after: bool = True,
) -> tuple[list[LSTMLayer], DenseWeights]:
    """A random float64 model: n_layers recurrent layers of H units over E features, Dense to `classes`
    logits.

    `bidirectional` is one flag for all layers or one per layer; `kinds` ('lstm' or 'gru') likewise;
    reset_after applies to every GRU layer.
    """
    flags = [bidirectional] * n_layers if isinstance(bidirectional, bool) else list(bidirectional)
    layer_kinds = [kinds] * n_layers if isinstance(kinds, str) else list(kinds)
    layers, width = [], E
    for bi, kind in zip(flags, layer_kinds, strict=True):
        forward = random_direction(rng, width, H, activation, scale, kind, reset_after)
        backward = random_direction(rng, width, H, activation, scale, kind, reset_after) if bi else None
        layers.append(LSTMLayer(forward=forward, backward=backward))
        width = layers[-1].output_dim
    kernel = rng.normal(0.0, 2.0 / np.sqrt(width), (width, classes))
    bias = rng.normal(0.0, 0.3, classes) if dense_bias else None
    return layers, DenseWeights(kernel=kernel, bias=bias)
