"""LSTM forward pass and LRP backward pass for one (bi)directional layer, batched and masked.

Both directions of a layer run in one loop, in the processing order of lrp.recurrent.

Relevance follows Arras et al. (2017), Sec. 2: R(h_t) joins R(c_t); c_t = f_t c_{t-1} + i_t g_t splits by
the epsilon rule (N = 2H) onto f_t c_{t-1} and i_t g_t, and signal-take-all gives all of R(i_t g_t) to g_t;
g_t's pre-activation z_g = x_t W_g + h_{t-1} U_g + b_g splits by the epsilon rule (N = D + H). Both splits
absorb relevance into their stabiliser (and z_g's bias) unless bias_factor = 1 (lrp.rules); the layer books
it, so that its inputs' relevance, the rest on its initial states and the absorbed relevance add up to the
relevance it was given. Everything that does not depend on the recurrence (input projections, denominators,
the input relevance, the absorbed relevance) is computed for all steps at once, outside the loops.
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
    """A layer's weights, directions stacked: kernel (K, D, 4H), recurrent (K, H, 4H), bias (K, 1, 4H);
    recurrent_candidate (K, H, H): U_g, the g-gate columns of recurrent; candidate_kernel: (K*H, D), the
    g-gate columns of each direction's W, transposed and stacked, so that (B, T, K*H) @ candidate_kernel
    sums the directions' messages to the inputs."""

    kernel: tf.Tensor
    recurrent: tf.Tensor
    bias: tf.Tensor
    recurrent_candidate: tf.Tensor
    candidate_kernel: tf.Tensor
    activation: str

    @classmethod
    def from_layer(cls, layer: LSTMLayer, dtype: tf.DType) -> LayerTensors:
        h = layer.forward.units
        directions = layer.directions
        return cls(
            kernel=tf.constant(np.stack([d.kernel for d in directions]), dtype=dtype),
            recurrent=tf.constant(np.stack([d.recurrent_kernel for d in directions]), dtype=dtype),
            bias=tf.constant(np.stack([d.bias for d in directions])[:, None, :], dtype=dtype),
            recurrent_candidate=tf.constant(
                np.stack([d.recurrent_kernel[:, 2 * h : 3 * h] for d in directions]), dtype=dtype
            ),
            candidate_kernel=tf.constant(
                np.concatenate([d.kernel[:, 2 * h : 3 * h].T for d in directions]), dtype=dtype
            ),
            activation=layer.forward.recurrent_activation,
        )

    @property
    def units(self) -> int:
        return self.recurrent.shape[1]

    @property
    def directions(self) -> int:
        return self.recurrent.shape[0]

    @property
    def input_dim(self) -> int:
        return self.kernel.shape[1]


@dataclass(frozen=True)
class ForwardTrace:
    """What the relevance pass needs: the inputs (B, T, D) and their mask (B, T, 1); in processing order,
    the mask (T, K, B, 1) and, each (T, K, B, H): f_t c_{t-1}, i_t g_t, z_g (g's pre-activation), h_{t-1}."""

    inputs: tf.Tensor
    input_mask: tf.Tensor
    mask: tf.Tensor
    forget_cell: tf.Tensor
    input_candidate: tf.Tensor
    candidate_pre: tf.Tensor
    hidden_prev: tf.Tensor


class ForwardStep(NamedTuple):
    """One timestep of every direction, each (K, B, H): the states h_t and c_t after it, and what the trace
    records: f_t c_{t-1}, i_t g_t and z_g."""

    hidden: tf.Tensor
    cell: tf.Tensor
    forget_cell: tf.Tensor
    input_candidate: tf.Tensor
    candidate_pre: tf.Tensor


def forward_step(
    w: LayerTensors, projected: tf.Tensor, mask: tf.Tensor, h: tf.Tensor, c: tf.Tensor
) -> ForwardStep:
    """One LSTM timestep of every direction (Arras et al. 2017, Sec. 2; Keras gate order i, f, g, o):

        z = x_t W + b + h_{t-1} U,  i, f, o = act(z_i, z_f, z_o),  g = tanh(z_g),
        c_t = f c_{t-1} + i g,  h_t = o tanh(c_t).

    projected: x_t W + b (K, B, 4H), hoisted out of the loop (lrp.recurrent.input_projection); mask (K, B, 1)
    bool: a masked step keeps h and c; h, c: h_{t-1}, c_{t-1} (K, B, H).
    """
    units = w.units
    z = projected + tf.matmul(h, w.recurrent)
    i, f, _, o = tf.split(GATE_ACTIVATIONS[w.activation](z), 4, axis=-1)
    z_g = z[..., 2 * units : 3 * units]
    forget_cell, input_candidate = f * c, i * tf.tanh(z_g)
    c_new = forget_cell + input_candidate
    hidden = tf.where(mask, o * tf.tanh(c_new), h)
    return ForwardStep(hidden, tf.where(mask, c_new, c), forget_cell, input_candidate, z_g)


def layer_forward(
    w: LayerTensors, x: tf.Tensor, mask: tf.Tensor, keep_trace: bool
) -> tuple[tf.Tensor, tf.Tensor, ForwardTrace | None]:
    """Run both directions, forward_step after forward_step. x: (B, T, D), mask: (B, T) bool.

    Returns the output sequence (B, T, K*H), the final states (B, K*H) and, if asked, the trace.
    """
    projected = input_projection(w.kernel, w.bias, x)
    ms = to_processing_order(mask[..., None], w.directions)
    steps = tf.shape(ms)[0]
    h = c = tf.zeros(tf.stack([w.directions, tf.shape(x)[0], w.units]), dtype=x.dtype)
    names = ("forget_cell", "input_candidate", "candidate_pre", "hidden") if keep_trace else ("hidden",)
    records = tuple(tf.TensorArray(x.dtype, size=steps) for _ in names)

    def loop(t, h, c, records):
        step = forward_step(w, projected[:, t], ms[t], h, c)
        written = tuple(a.write(t, getattr(step, n)) for a, n in zip(records, names))
        return t + 1, step.hidden, step.cell, written

    _, h, _, records = tf.while_loop(lambda t, *_: t < steps, loop, (0, h, c, records))
    final = tf.concat(tf.unstack(h, num=w.directions), axis=-1)
    if not keep_trace:
        return from_processing_order(records[0].stack(), "concat"), final, None
    forget_cell, input_candidate, z_g, outputs = (a.stack() for a in records)
    trace = ForwardTrace(x, mask[..., None], ms, forget_cell, input_candidate, z_g, previous_states(outputs))
    return from_processing_order(outputs, "concat"), final, trace


class StepCoefficients(NamedTuple):
    """Everything the relevance pass multiplies by, computed for all steps at once, each (T, K, B, H).

    With R = R(c_t) + R(h_t) and s = 1 / stabilised denominator:
      R(c_{t-1}) = carry * R + share_c,  R(g_t) = to_candidate * R + share_c,  share_c = <share_cell, R>;
      R(h_{t-1}) = h_{t-1} * ((inv_candidate R(g_t)) U_g^T) + <share_candidate, R(g_t)>.
    On padded steps carry = 1 and all else 0: relevance passes through unchanged. With bias_factor = 0 the
    two share coefficients are None (no bias share is redistributed).
    """

    carry: tf.Tensor
    to_candidate: tf.Tensor
    share_cell: tf.Tensor | None
    inv_candidate: tf.Tensor
    share_candidate: tf.Tensor | None
    hidden_prev: tf.Tensor

    def at(self, t: tf.Tensor) -> StepCoefficients:
        """The coefficients of step t, each (K, B, H)."""
        return StepCoefficients(*(None if c is None else c[t] for c in self))


def step_coefficients(
    w: LayerTensors, trace: ForwardTrace, eps: float, bias_factor: float
) -> StepCoefficients:
    """The relevance pass's coefficients from the forward trace (see StepCoefficients)."""
    m, units = trace.mask, w.units
    b_g = w.bias[..., 2 * units : 3 * units]
    cell = trace.forget_cell + trace.input_candidate
    inv_cell = tf.where(m, stabilized_inverse(cell, eps), 0.0)
    inv_candidate = tf.where(m, stabilized_inverse(trace.candidate_pre, eps), 0.0)
    n_cell, n_candidate = 2 * units, w.input_dim + units
    shares = bias_factor != 0
    return StepCoefficients(
        carry=tf.where(m, trace.forget_cell * inv_cell, 1.0),
        to_candidate=trace.input_candidate * inv_cell,
        share_cell=bias_factor / n_cell * bias_term(cell, None, eps) * inv_cell if shares else None,
        inv_candidate=inv_candidate,
        share_candidate=bias_factor / n_candidate * bias_term(trace.candidate_pre, b_g, eps) * inv_candidate
        if shares
        else None,
        hidden_prev=trace.hidden_prev,
    )


def cell_split(c: StepCoefficients, total: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor | float]:
    """R(g_t) and the bias share share_c of the cell split c_t = f_t c_{t-1} + i_t g_t, given
    R = R(c_t) + R(h_t): for one step or, with the coefficients of all steps, all at once."""
    share_c = 0.0 if c.share_cell is None else tf.reduce_sum(c.share_cell * total, axis=-1, keepdims=True)
    return c.to_candidate * total + share_c, share_c


def candidate_share(c: StepCoefficients, r_g: tf.Tensor) -> tf.Tensor | float:
    """The bias share of z_g's split that every lower unit receives: <share_candidate, R(g_t)>."""
    return 0.0 if c.share_candidate is None else tf.reduce_sum(c.share_candidate * r_g, -1, keepdims=True)


class RelevanceStep(NamedTuple):
    """Relevance through one timestep of every direction, each (K, B, H): what reaches h_{t-1} and c_{t-1},
    and s_g R(g_t) (the ratio the messages to the inputs are made of)."""

    hidden: tf.Tensor
    cell: tf.Tensor
    ratio: tf.Tensor


def relevance_step(w: LayerTensors, c: StepCoefficients, total: tf.Tensor) -> RelevanceStep:
    """One LSTM timestep of the relevance pass, every direction (Arras et al. 2017, Sec. 2):

        R(c_{t-1}) = epsilon share of f_t c_{t-1} in c_t = f_t c_{t-1} + i_t g_t (N = 2H) of R,
        R(g_t) = the share of i_t g_t, all of it (signal-take-all: the gate i_t gets nothing),
        R(h_{t-1}) = epsilon share of h_{t-1} U_g in z_g = x_t W_g + h_{t-1} U_g + b_g (N = D + H) of R(g_t).

    c: step t's coefficients (StepCoefficients.at); total: R = R(c_t) + R(h_t) (K, B, H), all the relevance
    that reaches the step (R(h_t) goes wholly to c_t: o_t is a gate).
    """
    r_g, share_c = cell_split(c, total)
    q_g = r_g * c.inv_candidate
    hidden = c.hidden_prev * tf.matmul(q_g, w.recurrent_candidate, transpose_b=True) + candidate_share(c, r_g)
    return RelevanceStep(hidden, c.carry * total + share_c, q_g)


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
    the epsilon rule absorbs in the cell splits and candidate pre-activations of every step (B,): these
    three add up to the relevance injected. The loop records s_g R(g_t) and R(c_t) + R(h_t) of each step;
    the messages to the inputs and the absorbed relevance follow from them after the loop.
    """
    units = w.units
    coefficients = step_coefficients(w, trace, eps, bias_factor)
    steps = tf.shape(injected)[0]
    r_h = r_c = tf.zeros_like(injected[0])
    ratios, totals = (tf.TensorArray(injected.dtype, size=steps) for _ in range(2))

    def loop(t, r_h, r_c, ratios, totals):
        total = r_c + r_h + injected[t]
        step = relevance_step(w, coefficients.at(t), total)
        return t - 1, step.hidden, step.cell, ratios.write(t, step.ratio), totals.write(t, total)

    _, r_h, r_c, ratios, totals = tf.while_loop(
        lambda t, *_: t >= 0, loop, (steps - 1, r_h, r_c, ratios, totals)
    )
    q_g, total = ratios.stack(), totals.stack()
    r_x = trace.inputs * batch_matmul(from_processing_order(q_g, "concat"), w.candidate_kernel)
    b_g = w.bias[..., 2 * units : 3 * units]
    biased = tf.reduce_sum(bias_term(trace.candidate_pre, b_g, eps) * q_g, axis=-1, keepdims=True)
    if bias_factor != 0:  # every lower unit's share: bias_factor / N <b_g + eps sign z_g, s_g R(g_t)>
        r_x += from_processing_order(bias_factor / (w.input_dim + units) * biased, "sum")
    rest = tf.reduce_sum(r_h + r_c, axis=[0, 2])
    absorbed = layer_absorbed(trace, coefficients, total, biased, eps, bias_factor)
    return tf.where(trace.input_mask, r_x, 0.0), rest, absorbed


def layer_absorbed(
    trace: ForwardTrace,
    coefficients: StepCoefficients,
    total: tf.Tensor,
    biased: tf.Tensor,
    eps: float,
    bias_factor: float,
) -> tf.Tensor:
    """The layer's ledger (B,): sum over steps, directions and units of A (lrp.rules) at the cell splits,
    given R = R(c_t) + R(h_t) (`total`, (T, K, B, H)), and at the candidate pre-activations, given
    biased = <b_g + eps sign z_g, s_g R(g_t)> ((T, K, B, 1)): A = (1 - bias_factor) biased there, plus, with
    eps = 0, all of R(g_t) on units whose z_g is 0. Padded steps absorb nothing."""
    if bias_factor == 1 and eps > 0:
        return tf.zeros_like(total[0, 0, :, 0])
    m = trace.mask
    cell = absorbed_fraction(trace.forget_cell + trace.input_candidate, None, eps, bias_factor, m)
    absorbed = tf.reduce_sum(cell * total, axis=[0, 1, 3]) + (1.0 - bias_factor) * tf.reduce_sum(
        biased, axis=[0, 1, 3]
    )
    if eps == 0:
        r_g, _ = cell_split(coefficients, total)
        vanishes = tf.logical_and(m, tf.equal(trace.candidate_pre, 0.0))
        absorbed += tf.reduce_sum(tf.where(vanishes, r_g, 0.0), axis=[0, 1, 3])
    return absorbed
