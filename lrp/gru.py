"""GRU forward pass and LRP backward pass for one (bi)directional layer, batched and masked.

Both directions of a layer run in one loop, in the processing order of lrp.recurrent. Keras's GRU (gate
order z, r, n):

    z_t, r_t = act(x_t W_{z,r} + h_{t-1} U_{z,r} + b_{z,r} [+ b'_{z,r}]),   n_t = tanh(a_t),
    reset_after:      a_t = x_t W_n + b_n + r_t * (h_{t-1} U_n + b'_n)
    not reset_after:  a_t = x_t W_n + (r_t * h_{t-1}) U_n + b_n
    h_t = z_t * h_{t-1} + (1 - z_t) * n_t

Relevance, signal-take-all as for the LSTM (Arras et al. 2017): R(h_t) splits by the epsilon rule (N = 2H)
onto z_t h_{t-1} and (1 - z_t) n_t; all of the first goes to h_{t-1}, all of the second to n_t and through
the tanh to a_t; the gates get nothing. a_t splits by the epsilon rule (N = D + H) onto x_t and h_{t-1},
with r_t held fixed as part of the weights (its bias is b_n + r_t b'_n with reset_after). Everything that
does not depend on the recurrence (input projections, denominators, the input relevance, the absorbed
relevance) is computed for all steps at once, outside the loops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from lrp.recurrent import (
    GATE_ACTIVATIONS,
    batch_matmul,
    from_processing_order,
    input_projection,
    previous_states,
    to_processing_order,
)
from lrp.rules import absorbed_fraction, bias_term, stabilized_inverse
from lrp.weights import LSTMLayer


@dataclass(frozen=True)
class LayerTensors:
    """A GRU layer's weights, directions stacked and split into the gates' columns (z, r: 2H) and the
    candidate's (n: H): kernels (K, D, 2H) and (K, D, H), recurrent kernels (K, H, 2H) and (K, H, H); biases
    (K, 1, 2H), b_{z,r} + b'_{z,r} (both are simply added), and (K, 1, H), b_n; recurrent_bias (K, 1, H),
    b'_n, or None without reset_after. candidate_kernel (K*H, D): each direction's W_n transposed and
    stacked, so that (B, T, K*H) @ candidate_kernel sums the directions' messages to the inputs."""

    kernel_gates: tf.Tensor
    kernel_candidate: tf.Tensor
    recurrent_gates: tf.Tensor
    recurrent_candidate: tf.Tensor
    bias_gates: tf.Tensor
    bias_candidate: tf.Tensor
    recurrent_bias: tf.Tensor | None
    candidate_kernel: tf.Tensor
    reset_after: bool
    activation: str

    @classmethod
    def from_layer(cls, layer: LSTMLayer, dtype: tf.DType) -> LayerTensors:
        h, directions = layer.forward.units, layer.directions
        reset_after = layer.forward.reset_after
        assert layer.kind == "gru" and all(d.reset_after == reset_after for d in directions)

        def stacked(part) -> tf.Tensor:
            return tf.constant(np.stack([part(d) for d in directions]), dtype=dtype)

        def gate_bias(d) -> np.ndarray:  # summed in float64: exact for float32 weights
            bias = np.asarray(d.bias[: 2 * h], np.float64)
            return bias + d.recurrent_bias[: 2 * h] if reset_after else bias

        return cls(
            kernel_gates=stacked(lambda d: d.kernel[:, : 2 * h]),
            kernel_candidate=stacked(lambda d: d.kernel[:, 2 * h :]),
            recurrent_gates=stacked(lambda d: d.recurrent_kernel[:, : 2 * h]),
            recurrent_candidate=stacked(lambda d: d.recurrent_kernel[:, 2 * h :]),
            bias_gates=stacked(lambda d: gate_bias(d)[None]),
            bias_candidate=stacked(lambda d: d.bias[None, 2 * h :]),
            recurrent_bias=stacked(lambda d: d.recurrent_bias[None, 2 * h :]) if reset_after else None,
            candidate_kernel=tf.constant(
                np.concatenate([d.kernel[:, 2 * h :].T for d in directions]), dtype=dtype
            ),
            reset_after=reset_after,
            activation=layer.forward.recurrent_activation,
        )

    @property
    def units(self) -> int:
        return self.recurrent_candidate.shape[1]

    @property
    def directions(self) -> int:
        return self.recurrent_candidate.shape[0]

    @property
    def input_dim(self) -> int:
        return self.kernel_candidate.shape[1]


@dataclass(frozen=True)
class ForwardTrace:
    """What the relevance pass needs: the inputs (B, T, D) and their mask (B, T, 1); in processing order,
    the mask (T, K, B, 1) and, each (T, K, B, H): z_t h_{t-1}, (1 - z_t) n_t, a_t (n's pre-activation), r_t
    and h_{t-1}."""

    inputs: tf.Tensor
    input_mask: tf.Tensor
    mask: tf.Tensor
    kept: tf.Tensor
    renewed: tf.Tensor
    candidate_pre: tf.Tensor
    reset: tf.Tensor
    hidden_prev: tf.Tensor


class ForwardStep(NamedTuple):
    """One timestep of every direction, each (K, B, H): the state h_t after it, and what the trace records:
    z_t h_{t-1}, (1 - z_t) n_t, a_t and r_t."""

    hidden: tf.Tensor
    kept: tf.Tensor
    renewed: tf.Tensor
    candidate_pre: tf.Tensor
    reset: tf.Tensor


def forward_step(
    w: LayerTensors, projected_gates: tf.Tensor, projected_candidate: tf.Tensor, mask: tf.Tensor, h: tf.Tensor
) -> ForwardStep:
    """One GRU timestep of every direction (the equations of the module docstring, gate order z, r, n).

    projected_gates: x_t W_{z,r} + b_{z,r} [+ b'_{z,r}] (K, B, 2H) and projected_candidate: x_t W_n + b_n
    (K, B, H), hoisted out of the loop (lrp.recurrent.input_projection); mask (K, B, 1) bool: a masked step
    keeps h; h: h_{t-1} (K, B, H).
    """
    gate = GATE_ACTIVATIONS[w.activation]
    z, r = tf.split(gate(projected_gates + tf.matmul(h, w.recurrent_gates)), 2, axis=-1)
    if w.reset_after:
        a = projected_candidate + r * (tf.matmul(h, w.recurrent_candidate) + w.recurrent_bias)
    else:
        a = projected_candidate + tf.matmul(r * h, w.recurrent_candidate)
    kept, renewed = z * h, (1.0 - z) * tf.tanh(a)
    return ForwardStep(tf.where(mask, kept + renewed, h), kept, renewed, a, r)


def layer_forward(
    w: LayerTensors, x: tf.Tensor, mask: tf.Tensor, keep_trace: bool
) -> tuple[tf.Tensor, tf.Tensor, ForwardTrace | None]:
    """Run both directions, forward_step after forward_step. x: (B, T, D), mask: (B, T) bool.

    Returns the output sequence (B, T, K*H), the final states (B, K*H) and, if asked, the trace.
    """
    projected_gates = input_projection(w.kernel_gates, w.bias_gates, x)
    projected_candidate = input_projection(w.kernel_candidate, w.bias_candidate, x)
    ms = to_processing_order(mask[..., None], w.directions)
    steps = tf.shape(ms)[0]
    h = tf.zeros(tf.stack([w.directions, tf.shape(x)[0], w.units]), dtype=x.dtype)
    names = ("kept", "renewed", "candidate_pre", "reset", "hidden") if keep_trace else ("hidden",)
    records = tuple(tf.TensorArray(x.dtype, size=steps) for _ in names)

    def loop(t, h, records):
        step = forward_step(w, projected_gates[:, t], projected_candidate[:, t], ms[t], h)
        written = tuple(a.write(t, getattr(step, n)) for a, n in zip(records, names))
        return t + 1, step.hidden, written

    _, h, records = tf.while_loop(lambda t, *_: t < steps, loop, (0, h, records))
    final = tf.concat(tf.unstack(h, num=w.directions), axis=-1)
    if not keep_trace:
        return from_processing_order(records[0].stack(), "concat"), final, None
    kept, renewed, a, r, outputs = (array.stack() for array in records)
    trace = ForwardTrace(x, mask[..., None], ms, kept, renewed, a, r, previous_states(outputs))
    return from_processing_order(outputs, "concat"), final, trace


class StepCoefficients(NamedTuple):
    """What the relevance pass multiplies by, for all steps at once, each (T, K, B, H) or None.

    With R = R(h_t), s_a = 1 / stabilised a_t and the bias shares of the two splits
    shared_h = bias_factor / 2H * <leak_h, R> and shared_a = bias_factor / (D + H) * <leak_a, s_a R(a_t)>:
      R(n_t) = R(a_t) = to_candidate * R + shared_h,  s_a R(a_t) = to_ratio * R + s_a shared_h,
      R(h_{t-1}) = carry * R + shared_h + post * ((pre * s_a R(a_t)) U_n^T) + shared_a,
      R(x_t) = x_t * ((s_a R(a_t)) W_n^T) + shared_a.
    pre = r_t, post = h_{t-1} with reset_after; pre = None (1), post = r_t h_{t-1} otherwise. leak_h (the
    stabiliser over the denominator) is kept only with bias_factor != 0; leak_a (the bias and stabiliser)
    also gives the absorbed relevance. On padded steps carry = 1 and all else 0: relevance passes through
    unchanged.
    """

    carry: tf.Tensor
    to_ratio: tf.Tensor
    pre: tf.Tensor | None
    post: tf.Tensor
    leak_h: tf.Tensor | None
    leak_a: tf.Tensor
    to_candidate: tf.Tensor
    inv_candidate: tf.Tensor

    def at(self, t: tf.Tensor) -> StepCoefficients:
        """The coefficients of step t, each (K, B, H)."""
        return StepCoefficients(*(None if c is None else c[t] for c in self))

    @classmethod
    def of(cls, w: LayerTensors, trace: ForwardTrace, eps: float, bias_factor: float) -> StepCoefficients:
        m = trace.mask
        state = trace.kept + trace.renewed
        inv_state = tf.where(m, stabilized_inverse(state, eps), 0.0)
        inv_candidate = tf.where(m, stabilized_inverse(trace.candidate_pre, eps), 0.0)
        b_n = w.bias_candidate
        if w.reset_after:
            b_n = b_n + trace.reset * w.recurrent_bias
        to_candidate = trace.renewed * inv_state
        shares = bias_factor != 0
        return cls(
            carry=tf.where(m, trace.kept * inv_state, 1.0),
            to_ratio=to_candidate * inv_candidate,
            pre=trace.reset if w.reset_after else None,
            post=trace.hidden_prev if w.reset_after else trace.reset * trace.hidden_prev,
            leak_h=bias_term(state, None, eps) * inv_state if shares else None,
            leak_a=bias_term(trace.candidate_pre, b_n, eps),
            to_candidate=to_candidate,
            inv_candidate=inv_candidate,
        )


def candidate_ratio(
    w: LayerTensors, k: StepCoefficients, total: tf.Tensor, bias_factor: float
) -> tuple[tf.Tensor, tf.Tensor | float]:
    """s_a R(a_t) and the bias share shared_h of R(h_t)'s split, given R(h_t) (`total`): for one step (k from
    StepCoefficients.at) or, with the coefficients of all steps, all at once."""
    if k.leak_h is None:
        return k.to_ratio * total, 0.0
    shared = bias_factor / (2 * w.units) * tf.reduce_sum(k.leak_h * total, axis=-1, keepdims=True)
    return (k.to_candidate * total + shared) * k.inv_candidate, shared


def relevance_step(w: LayerTensors, k: StepCoefficients, total: tf.Tensor, bias_factor: float) -> tf.Tensor:
    """One GRU timestep of the relevance pass, every direction: R(h_{t-1}) (K, B, H).

    R(h_t) splits by the epsilon rule (N = 2H) onto z_t h_{t-1}, all of which goes to h_{t-1}, and
    (1 - z_t) n_t, all of which goes to n_t and a_t; a_t splits by the epsilon rule (N = D + H) with r_t
    held fixed, and h_{t-1} receives its share (see StepCoefficients). k: step t's coefficients
    (StepCoefficients.at); total: R(h_t) (K, B, H), all the relevance that reaches h_t.
    """
    q, shared = candidate_ratio(w, k, total, bias_factor)
    if k.leak_h is not None:
        shared += bias_factor / (w.input_dim + w.units) * tf.reduce_sum(k.leak_a * q, axis=-1, keepdims=True)
    messages = tf.matmul(q if k.pre is None else k.pre * q, w.recurrent_candidate, transpose_b=True)
    return k.carry * total + k.post * messages + shared


def layer_relevance(
    w: LayerTensors,
    trace: ForwardTrace,
    injected: tf.Tensor,
    eps: float,
    bias_factor: float,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Propagate relevance through one layer, relevance_step after relevance_step, last step first.

    injected: (T, K, B, H) relevance arriving on h_t from above, in processing order.
    Returns the relevance of the layer's inputs (B, T, D), what stays on the initial states (B,) and what
    the epsilon rule absorbs in both splits of every step (B,, lrp.rules): these three add up to the
    relevance injected. The loop records only R(h_t); all that follows from it (the messages to the
    inputs, the absorbed relevance) is computed for all steps at once after the loop.
    """
    k = StepCoefficients.of(w, trace, eps, bias_factor)

    def loop(t, r_h, totals):
        total = r_h + injected[t]
        return t - 1, relevance_step(w, k.at(t), total, bias_factor), totals.write(t, total)

    steps = tf.shape(injected)[0]
    initial = (steps - 1, tf.zeros_like(injected[0]), tf.TensorArray(injected.dtype, size=steps))
    _, r_h, totals = tf.while_loop(lambda t, *_: t >= 0, loop, initial)
    total = totals.stack()
    q, _ = candidate_ratio(w, k, total, bias_factor)  # s_a R(a_t), (T, K, B, H)
    r_x = trace.inputs * batch_matmul(from_processing_order(q, "concat"), w.candidate_kernel)
    biased = tf.reduce_sum(k.leak_a * q, axis=-1, keepdims=True)  # <b_a + eps sign a_t, s_a R(a_t)>
    if bias_factor != 0:
        r_x += bias_factor / (w.input_dim + w.units) * from_processing_order(biased, "sum")
    rest = tf.reduce_sum(r_h, axis=[0, 2])
    absorbed = layer_absorbed(trace, total, biased, eps, bias_factor)
    return tf.where(trace.input_mask, r_x, 0.0), rest, absorbed


def layer_absorbed(
    trace: ForwardTrace,
    total: tf.Tensor,
    biased: tf.Tensor,
    eps: float,
    bias_factor: float,
) -> tf.Tensor:
    """The layer's ledger (B,): sum over steps, directions and units of A (lrp.rules) at the state splits,
    given R(h_t) (`total`, (T, K, B, H)), and at the candidate pre-activations, given
    biased = <b_a + eps sign a_t, s_a R(a_t)> ((T, K, B, 1)): A = (1 - bias_factor) biased there. (A unit
    with a_t = 0 has n_t = 0, so with eps = 0 it receives nothing to absorb.) Padded steps absorb nothing."""
    if bias_factor == 1 and eps > 0:
        return tf.zeros_like(total[0, 0, :, 0])
    state = absorbed_fraction(trace.kept + trace.renewed, None, eps, bias_factor, trace.mask)
    absorbed = tf.reduce_sum(state * total, axis=[0, 1, 3])
    return absorbed + (1.0 - bias_factor) * tf.reduce_sum(biased, axis=[0, 1, 3])
