"""LSTM forward pass and LRP backward pass for one (bi)directional layer, batched and masked.

Both directions of a layer run in one loop, in the processing order of lrp.recurrent.

Relevance follows Arras et al. (2017), Sec. 2: R(h_t) joins R(c_t); c_t = f_t c_{t-1} + i_t g_t splits by
the epsilon rule (N = 2H) onto f_t c_{t-1} and i_t g_t, and signal-take-all gives all of R(i_t g_t) to g_t;
g_t's pre-activation z_g = x_t W_g + h_{t-1} U_g + b_g splits by the epsilon rule (N = D + H). Everything
that does not depend on the recurrence (input projections, denominators, the input relevance) is computed
for all steps at once, outside the loops.
"""

from __future__ import annotations

from dataclasses import dataclass

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
from lrp.rules import absorbed, stabilized_inverse
from lrp.weights import LSTMLayer


@dataclass(frozen=True)
class LayerTensors:
    """A layer's weights, directions stacked: kernel (K, D, 4H), recurrent (K, H, 4H), bias (K, 1, 4H);
    candidate_kernel: (K*H, D), the g-gate columns of each direction's W, transposed and
    stacked, so that (B, T, K*H) @ candidate_kernel sums the directions' messages to the inputs."""

    kernel: tf.Tensor
    recurrent: tf.Tensor
    bias: tf.Tensor
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


def layer_forward(
    w: LayerTensors, x: tf.Tensor, mask: tf.Tensor, keep_trace: bool
) -> tuple[tf.Tensor, tf.Tensor, ForwardTrace | None]:
    """Run both directions. x: (B, T, D), mask: (B, T) bool.

    Returns the output sequence (B, T, K*H), the final states (B, K*H) and, if asked, the trace.
    """
    gate, units = GATE_ACTIVATIONS[w.activation], w.units
    projected = input_projection(w.kernel, w.bias, x)
    ms = to_processing_order(mask[..., None], w.directions)
    steps = tf.shape(ms)[0]
    h = c = tf.zeros(tf.stack([w.directions, tf.shape(x)[0], units]), dtype=x.dtype)
    names = ("forget_cell", "input_candidate", "candidate_pre", "outputs") if keep_trace else ("outputs",)
    records = tuple(tf.TensorArray(x.dtype, size=steps) for _ in names)

    def step(t, h, c, records):
        z = projected[:, t] + tf.matmul(h, w.recurrent)
        i, f, _, o = tf.split(gate(z), 4, axis=-1)
        z_g = z[..., 2 * units : 3 * units]
        forget_cell, input_candidate = f * c, i * tf.tanh(z_g)
        c_new = forget_cell + input_candidate
        c = tf.where(ms[t], c_new, c)
        h = tf.where(ms[t], o * tf.tanh(c_new), h)
        record = (forget_cell, input_candidate, z_g, h) if keep_trace else (h,)
        return t + 1, h, c, tuple(a.write(t, r) for a, r in zip(records, record))

    _, h, _, records = tf.while_loop(lambda t, *_: t < steps, step, (0, h, c, records))
    final = tf.concat(tf.unstack(h, num=w.directions), axis=-1)
    if not keep_trace:
        return from_processing_order(records[0].stack(), "concat"), final, None
    forget_cell, input_candidate, z_g, outputs = (a.stack() for a in records)
    trace = ForwardTrace(x, mask[..., None], ms, forget_cell, input_candidate, z_g, previous_states(outputs))
    return from_processing_order(outputs, "concat"), final, trace


def step_coefficients(
    w: LayerTensors, trace: ForwardTrace, eps: float, bias_factor: float
) -> tuple[tf.Tensor | None, ...]:
    """Everything the relevance loop multiplies by, computed for all steps at once: six (T, K, B, H).

    With R = R(c_t) + R(h_t) and s = 1 / stabilised denominator:
      R(c_{t-1}) = carry * R + share_c,  R(g_t) = to_candidate * R + share_c,  share_c = <share_cell, R>;
      R(h_{t-1}) = h_{t-1} * ((s_g R(g_t)) U_g^T) + <share_candidate, R(g_t)>.
    On padded steps carry = 1 and all else 0: relevance passes through unchanged. With bias_factor = 0 the
    two share coefficients are None (no bias share is redistributed).
    """
    m, units = trace.mask, w.units
    b_g = w.bias[..., 2 * units : 3 * units]
    cell = trace.forget_cell + trace.input_candidate
    inv_cell = tf.where(m, stabilized_inverse(cell, eps), 0.0)
    inv_candidate = tf.where(m, stabilized_inverse(trace.candidate_pre, eps), 0.0)
    n_cell, n_candidate = 2 * units, w.input_dim + units
    shares = bias_factor != 0
    return (
        tf.where(m, trace.forget_cell * inv_cell, 1.0),  # carry
        trace.input_candidate * inv_cell,  # to_candidate
        bias_factor / n_cell * absorbed(cell, None, eps) * inv_cell if shares else None,  # share_cell
        inv_candidate,  # s_g
        bias_factor / n_candidate * absorbed(trace.candidate_pre, b_g, eps) * inv_candidate
        if shares
        else None,
        trace.hidden_prev,
    )


def layer_relevance(
    w: LayerTensors,
    trace: ForwardTrace,
    injected: tf.Tensor,
    eps: float,
    bias_factor: float,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Propagate relevance through one layer.

    injected: (T, K, B, H) relevance arriving on h_t from above, in processing order.
    Returns the relevance of the layer's inputs (B, T, D) and what stays on the initial states (B,).
    """
    units = w.units
    u_g = w.recurrent[..., 2 * units : 3 * units]
    coefficients = step_coefficients(w, trace, eps, bias_factor)
    steps = tf.shape(injected)[0]
    r_h = r_c = tf.zeros_like(injected[0])
    ratios = tf.TensorArray(injected.dtype, size=steps)
    shares = tf.TensorArray(injected.dtype, size=steps)

    def step(t, r_h, r_c, ratios, shares):
        carry, to_candidate, share_cell, inv_candidate, share_candidate, h_prev = (
            None if c is None else c[t] for c in coefficients
        )
        total = r_c + r_h + injected[t]
        share_c = 0.0 if share_cell is None else tf.reduce_sum(share_cell * total, axis=-1, keepdims=True)
        r_g = to_candidate * total + share_c
        q_g = r_g * inv_candidate
        share_g = 0.0 if share_candidate is None else tf.reduce_sum(share_candidate * r_g, -1, keepdims=True)
        r_h = h_prev * tf.matmul(q_g, u_g, transpose_b=True) + share_g
        shares = shares if share_candidate is None else shares.write(t, share_g)
        return t - 1, r_h, carry * total + share_c, ratios.write(t, q_g), shares

    loop = (steps - 1, r_h, r_c, ratios, shares)
    _, r_h, r_c, ratios, shares = tf.while_loop(lambda t, *_: t >= 0, step, loop)
    messages = batch_matmul(from_processing_order(ratios.stack(), "concat"), w.candidate_kernel)
    r_x = trace.inputs * messages  # hoisted out of the loop
    if bias_factor != 0:
        r_x += from_processing_order(shares.stack(), "sum")
    rest = tf.reduce_sum(r_h + r_c, axis=[0, 2])
    return tf.where(trace.input_mask, r_x, 0.0), rest
