"""The executable specification of the engine: slow, obvious float64 numpy LRP for stacked (bi-)LSTM and GRU
classifiers, written from the equations of Arras et al. (2017), Sec. 2, and nothing else.

One review at a time: x has shape (L, E) and holds only the L real tokens. Explicit Python loops over time,
one function per timestep of each cell (lstm_step, gru_step and their relevance steps lstm_step_lrp,
gru_step_lrp), every message written as the full matrix of the epsilon rule (lrp_linear). The engine
(lrp.lstm, lrp.gru, lrp.explainer) is tested against it, step by step and whole; so that it stays an
independent check it imports nothing of the engine and no TensorFlow: only numpy and the weight dataclasses
of lrp.weights. Also used by benchmarks/engine.py as the speed baseline.
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

    hin: (D,), w: (D, M), b: (M,), hout: (M,), rout: (M,) -> relevance of hin, (D,). A unit whose
    denominator is 0 (eps = 0, hout = 0) sends nothing.
    """
    sign = np.where(hout >= 0.0, 1.0, -1.0)  # sign(0) = +1
    numer = w * hin[:, None] + bias_factor * (b[None, :] + eps * sign[None, :]) / n_units  # (D, M)
    denom = np.broadcast_to(hout[None, :] + eps * sign[None, :], numer.shape)  # (D, M)
    message = np.divide(numer, denom, out=np.zeros_like(numer), where=denom != 0) * rout[None, :]
    return message.sum(axis=1)


def absorbed_relevance(
    b: np.ndarray, hout: np.ndarray, rout: np.ndarray, eps: float, bias_factor: float
) -> float:
    """What one epsilon split through hout = hin w + b keeps back, the relevance no lower unit receives:
    sum_j A_j, A_j = (1 - bias_factor)(b_j + eps sign hout_j) / (hout_j + eps sign hout_j) * rout_j, and
    A_j = rout_j where the denominator is 0. b, hout, rout: (M,)."""
    sign = np.where(hout >= 0.0, 1.0, -1.0)
    denom = hout + eps * sign
    fraction = np.divide(
        (1.0 - bias_factor) * (b + eps * sign), denom, out=np.ones_like(denom), where=denom != 0
    )
    return float(np.sum(fraction * rout))


@dataclass
class LSTMStep:
    """One LSTM timestep: the gates i, f, o, the candidate g = tanh(z_g) and its pre-activation z_g, and the
    new states c, h; each (H,)."""

    i: np.ndarray
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    zg: np.ndarray
    c: np.ndarray
    h: np.ndarray


def lstm_step(w: LSTMWeights, x: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray) -> LSTMStep:
    """One LSTM timestep (Keras gate order i, f, g, o): x (D,), h_prev, c_prev (H,).

    z = x W + h_{t-1} U + b;  i, f, o = act(z_i, z_f, z_o);  g = tanh(z_g);
    c_t = f c_{t-1} + i g;  h_t = o tanh(c_t).
    """
    units = h_prev.shape[0]
    z = x @ np.asarray(w.kernel, np.float64) + h_prev @ np.asarray(w.recurrent_kernel, np.float64)
    z = z + np.asarray(w.bias, np.float64)  # (4H,)
    z_i, z_f, z_g, z_o = (z[k * units : (k + 1) * units] for k in range(4))
    i, f, o = (recurrent_activation(w.recurrent_activation, part) for part in (z_i, z_f, z_o))
    g = np.tanh(z_g)
    c = f * c_prev + i * g
    return LSTMStep(i=i, f=f, g=g, o=o, zg=z_g, c=c, h=o * np.tanh(c))


def lstm_step_lrp(
    w: LSTMWeights,
    x: np.ndarray,
    h_prev: np.ndarray,
    c_prev: np.ndarray,
    step: LSTMStep,
    r_h: np.ndarray,
    r_c: np.ndarray,
    eps: float,
    bias_factor: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Relevance through one LSTM timestep, given all relevance r_h on h_t and r_c on c_t (H,).

    h_t = o tanh(c_t) is a product with the gate o: all of R(h_t) goes to c_t (signal-take-all). c_t =
    f c_{t-1} + i g is an identity map of two sources: the epsilon rule (N = 2H) splits R = R(c_t) + R(h_t)
    onto f c_{t-1}, all of which goes to c_{t-1}, and i g, all of which goes to g and z_g. z_g = x W_g +
    h_{t-1} U_g + b_g splits by the epsilon rule (N = D + H) onto x and h_{t-1}. Returns (R(x) (D,),
    R(h_{t-1}), R(c_{t-1}) (H,), what both splits absorb).
    """
    units, n_inputs = h_prev.shape[0], x.shape[0]
    kernel_g = np.asarray(w.kernel, np.float64)[:, 2 * units : 3 * units]  # (D, H)
    recurrent_g = np.asarray(w.recurrent_kernel, np.float64)[:, 2 * units : 3 * units]  # (H, H)
    bias_g = np.asarray(w.bias, np.float64)[2 * units : 3 * units]  # (H,)
    identity, no_bias = np.eye(units), np.zeros(units)
    total = r_c + r_h
    r_c_prev = lrp_linear(step.f * c_prev, identity, no_bias, step.c, total, 2 * units, eps, bias_factor)
    r_g = lrp_linear(step.i * step.g, identity, no_bias, step.c, total, 2 * units, eps, bias_factor)
    absorbed = absorbed_relevance(no_bias, step.c, total, eps, bias_factor)
    absorbed += absorbed_relevance(bias_g, step.zg, r_g, eps, bias_factor)
    n_g = n_inputs + units
    r_x = lrp_linear(x, kernel_g, bias_g, step.zg, r_g, n_g, eps, bias_factor)
    r_h_prev = lrp_linear(h_prev, recurrent_g, bias_g, step.zg, r_g, n_g, eps, bias_factor)
    return r_x, r_h_prev, r_c_prev, absorbed


@dataclass
class DirectionTrace:
    """The forward pass of one LSTM direction, in its own processing order: x (L, D); h, c: (L + 1, H) with
    h[0] = c[0] = 0 the initial state, h[t + 1] the state after step t; steps: the L LSTMSteps."""

    x: np.ndarray
    h: np.ndarray
    c: np.ndarray
    steps: list[LSTMStep]


def run_lstm_direction(w: LSTMWeights, x: np.ndarray) -> DirectionTrace:
    """Run one LSTM direction over x (L, D), already in processing order, from zero states."""
    units = np.shape(w.recurrent_kernel)[0]
    h, c, steps = [np.zeros(units)], [np.zeros(units)], []
    for x_t in x:
        steps.append(lstm_step(w, x_t, h[-1], c[-1]))
        h.append(steps[-1].h)
        c.append(steps[-1].c)
    return DirectionTrace(x=x, h=np.array(h), c=np.array(c), steps=steps)


def lstm_direction_lrp(
    w: LSTMWeights, trace: DirectionTrace, r_h: np.ndarray, eps: float, bias_factor: float
) -> tuple[np.ndarray, float, float]:
    """Relevance of one LSTM direction's inputs, given the relevance r_h (L, H) of its outputs h_1..h_L.

    Everything in processing order. Returns (relevance of x, (L, D); relevance left on h_0 and c_0;
    relevance absorbed by biases and stabilisers).
    """
    units = r_h.shape[1]
    r_x = np.zeros(trace.x.shape)
    r_h_from_next = np.zeros(units)  # relevance that step t + 1 sends to h_t
    r_c_from_next = np.zeros(units)  # relevance that step t + 1 sends to c_t
    absorbed = 0.0
    for t in reversed(range(len(r_h))):
        r_x[t], r_h_from_next, r_c_from_next, step_absorbed = lstm_step_lrp(
            w,
            trace.x[t],
            trace.h[t],
            trace.c[t],
            trace.steps[t],
            r_h[t] + r_h_from_next,
            r_c_from_next,
            eps,
            bias_factor,
        )
        absorbed += step_absorbed
    return r_x, float(r_h_from_next.sum() + r_c_from_next.sum()), absorbed


@dataclass
class GRUStep:
    """One GRU timestep: the update and reset gates z, r, the candidate n = tanh(a) and its pre-activation
    a, and the new state h; each (H,)."""

    z: np.ndarray
    r: np.ndarray
    n: np.ndarray
    a: np.ndarray
    h: np.ndarray


def gru_step(w: GRUWeights, x: np.ndarray, h_prev: np.ndarray) -> GRUStep:
    """One GRU timestep (Keras's equations, gate order z, r, n): x (D,), h_prev (H,).

    z, r = act(x W_{z,r} + b_{z,r} + h_{t-1} U_{z,r} [+ b'_{z,r}]);  n = tanh(a);
    reset_after:      a = x W_n + b_n + r (h_{t-1} U_n + b'_n)
    not reset_after:  a = x W_n + b_n + (r h_{t-1}) U_n
    h_t = z h_{t-1} + (1 - z) n.
    """
    units = h_prev.shape[0]
    recurrent = np.asarray(w.recurrent_kernel, np.float64)
    xw = x @ np.asarray(w.kernel, np.float64) + np.asarray(w.bias, np.float64)  # (3H,)
    hu = h_prev @ recurrent  # (3H,)
    if w.reset_after:
        hu = hu + np.asarray(w.recurrent_bias, np.float64)
    z = recurrent_activation(w.recurrent_activation, xw[:units] + hu[:units])
    r = recurrent_activation(w.recurrent_activation, xw[units : 2 * units] + hu[units : 2 * units])
    recurrent_part = r * hu[2 * units :] if w.reset_after else (r * h_prev) @ recurrent[:, 2 * units :]
    a = xw[2 * units :] + recurrent_part
    n = np.tanh(a)
    return GRUStep(z=z, r=r, n=n, a=a, h=z * h_prev + (1.0 - z) * n)


def gru_step_lrp(
    w: GRUWeights,
    x: np.ndarray,
    h_prev: np.ndarray,
    step: GRUStep,
    r_h: np.ndarray,
    eps: float,
    bias_factor: float,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Relevance through one GRU timestep, given all relevance r_h on h_t (H,).

    h_t = z h_{t-1} + (1 - z) n splits by the epsilon rule (N = 2H): all of R(z h_{t-1}) goes to h_{t-1},
    all of R((1 - z) n) to n and a (the gates get nothing). a = x W_n + h_{t-1} W_h + b_a splits by the
    epsilon rule (N = D + H) with r fixed: W_h = U_n diag(r), b_a = b_n + r b'_n (reset_after) or
    W_h = diag(r) U_n, b_a = b_n. Returns (R(x) (D,), R(h_{t-1}) (H,), what both splits absorb).
    """
    units, n_inputs = h_prev.shape[0], x.shape[0]
    kernel_n = np.asarray(w.kernel, np.float64)[:, 2 * units :]  # (D, H)
    recurrent_n = np.asarray(w.recurrent_kernel, np.float64)[:, 2 * units :]  # (H, H)
    bias_n = np.asarray(w.bias, np.float64)[2 * units :]  # (H,)
    identity, no_bias = np.eye(units), np.zeros(units)
    n_h = 2 * units
    r_kept = lrp_linear(step.z * h_prev, identity, no_bias, step.h, r_h, n_h, eps, bias_factor)
    r_n = lrp_linear((1.0 - step.z) * step.n, identity, no_bias, step.h, r_h, n_h, eps, bias_factor)
    absorbed = absorbed_relevance(no_bias, step.h, r_h, eps, bias_factor)
    if w.reset_after:
        w_h = recurrent_n * step.r[None, :]
        b_a = bias_n + step.r * np.asarray(w.recurrent_bias, np.float64)[2 * units :]
    else:
        w_h, b_a = step.r[:, None] * recurrent_n, bias_n
    n_a = n_inputs + units
    r_x = lrp_linear(x, kernel_n, b_a, step.a, r_n, n_a, eps, bias_factor)
    r_h_prev = r_kept + lrp_linear(h_prev, w_h, b_a, step.a, r_n, n_a, eps, bias_factor)
    absorbed += absorbed_relevance(b_a, step.a, r_n, eps, bias_factor)
    return r_x, r_h_prev, absorbed


@dataclass
class GRUTrace:
    """The forward pass of one GRU direction, in its own processing order: x (L, D); h: (L + 1, H) with
    h[0] = 0 the initial state, h[t + 1] the state after step t; steps: the L GRUSteps."""

    x: np.ndarray
    h: np.ndarray
    steps: list[GRUStep]


def run_gru_direction(w: GRUWeights, x: np.ndarray) -> GRUTrace:
    """Run one GRU direction over x (L, D), already in processing order, from a zero state."""
    h, steps = [np.zeros(np.shape(w.recurrent_kernel)[0])], []
    for x_t in x:
        steps.append(gru_step(w, x_t, h[-1]))
        h.append(steps[-1].h)
    return GRUTrace(x=x, h=np.array(h), steps=steps)


def gru_direction_lrp(
    w: GRUWeights, trace: GRUTrace, r_h: np.ndarray, eps: float, bias_factor: float
) -> tuple[np.ndarray, float, float]:
    """Relevance of one GRU direction's inputs, given the relevance r_h (L, H) of its outputs h_1..h_L.
    Returns (relevance of x, (L, D); relevance left on h_0; absorbed)."""
    r_x = np.zeros(trace.x.shape)
    r_h_from_next = np.zeros(r_h.shape[1])  # relevance that step t + 1 sends to h_t
    absorbed = 0.0
    for t in reversed(range(len(r_h))):
        r_x[t], r_h_from_next, step_absorbed = gru_step_lrp(
            w, trace.x[t], trace.h[t], trace.steps[t], r_h[t] + r_h_from_next, eps, bias_factor
        )
        absorbed += step_absorbed
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


def reference_ledger(
    layers: Sequence[LSTMLayer],
    dense: DenseWeights,
    x: np.ndarray,
    target: int,
    eps: float,
    bias_factor: float,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """LRP of logit `target` for one review x (L, E) -> (relevance (L, E), logits (C,), rest, absorbed): the
    relevance left on the initial states and that absorbed by all biases and stabilisers, the Dense layer's
    included; sum(relevance) + rest + absorbed = logits[target]."""
    all_traces, state = forward_all(layers, x)
    kernel, bias = dense_arrays(dense)
    logits = state @ kernel + bias
    r_logits = np.zeros_like(logits)
    r_logits[target] = logits[target]
    r_state = lrp_linear(state, kernel, bias, logits, r_logits, state.shape[0], eps, bias_factor)
    length, units = np.shape(x)[0], layers[-1].forward.units
    r_out = np.zeros((length, layers[-1].output_dim))
    r_out[-1, :units] = r_state[:units]  # forward final state: after the last token
    r_out[0, units:] = r_state[units:]  # backward final state: after token 0 (empty when unidirectional)
    rest, absorbed = 0.0, absorbed_relevance(bias, logits, r_logits, eps, bias_factor)
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
