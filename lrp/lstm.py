"""LSTM forward pass and LRP backward pass for one (bi)directional layer, batched and masked.

Both directions of a layer run in one loop: tensors are time-major with the direction stacked on axis 1,
(T, K, B, ...), K = 1 or 2. The backward direction sees the padded sequence reversed, so on a right-padded
batch it meets the padding first, keeps its zero state there (masked steps leave the state unchanged) and
starts each review at its own last token, as Keras does with a mask.

Relevance follows Arras et al. (2017), Sec. 2: R(h_t) joins R(c_t); c_t = f_t c_{t-1} + i_t g_t splits by
the epsilon rule (N = 2H) onto f_t c_{t-1} and i_t g_t, and signal-take-all gives all of R(i_t g_t) to g_t;
g_t's pre-activation z_g = x_t W_g + h_{t-1} U_g + b_g splits by the epsilon rule (N = D + H).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from lrp.rules import bias_share, relevance_ratio
from lrp.weights import LSTMLayer

GATE_ACTIVATIONS = {
    "sigmoid": tf.sigmoid,
    "hard_sigmoid": lambda z: tf.clip_by_value(z / 6.0 + 0.5, 0.0, 1.0),
    "hard_sigmoid_keras2": lambda z: tf.clip_by_value(0.2 * z + 0.5, 0.0, 1.0),
}


@dataclass(frozen=True)
class LayerTensors:
    """A layer's weights, the K directions stacked: kernel (K, D, 4H), recurrent (K, H, 4H), bias (K, 4H)."""

    kernel: tf.Tensor
    recurrent: tf.Tensor
    bias: tf.Tensor
    activation: str

    @classmethod
    def from_layer(cls, layer: LSTMLayer, dtype: tf.DType) -> LayerTensors:
        def stack(name: str) -> tf.Tensor:
            return tf.constant(np.stack([getattr(d, name) for d in layer.directions]), dtype=dtype)

        return cls(
            stack("kernel"), stack("recurrent_kernel"), stack("bias"), layer.forward.recurrent_activation
        )

    @property
    def units(self) -> int:
        return self.recurrent.shape[1]

    @property
    def directions(self) -> int:
        return self.kernel.shape[0]

    def candidate(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The g-gate slices: W_g (K, D, H), U_g (K, H, H), b_g (K, 1, H)."""
        h = self.units
        return (
            self.kernel[..., 2 * h : 3 * h],
            self.recurrent[..., 2 * h : 3 * h],
            self.bias[:, None, 2 * h : 3 * h],
        )


@dataclass(frozen=True)
class ForwardTrace:
    """What the relevance pass needs, each (T, K, B, H) in processing order, plus inputs (T, K, B, D)."""

    inputs: tf.Tensor
    mask: tf.Tensor
    forget_cell: tf.Tensor  # f_t * c_{t-1}
    input_candidate: tf.Tensor  # i_t * g_t
    cell: tf.Tensor  # c_t
    candidate_pre: tf.Tensor  # z_g
    hidden_prev: tf.Tensor  # h_{t-1}


def to_processing_order(seq: tf.Tensor, directions: int, split: bool = False) -> tf.Tensor:
    """(B, T, F) -> (T, K, B, F), direction 1 reversed in time; with split, direction k gets the k-th of K
    feature slices, (T, K, B, F / K)."""
    time_major = tf.experimental.numpy.swapaxes(seq, 0, 1)
    parts = tf.split(time_major, directions, axis=-1) if split else [time_major] * directions
    return tf.stack([p if k == 0 else tf.reverse(p, axis=[0]) for k, p in enumerate(parts)], axis=1)


def from_processing_order(seq: tf.Tensor, combine: str) -> tf.Tensor:
    """(T, K, B, F) -> (B, T, K * F) with combine="concat", or (B, T, F) with combine="sum"."""
    parts = [seq[:, k] if k == 0 else tf.reverse(seq[:, k], axis=[0]) for k in range(seq.shape[1])]
    merged = tf.concat(parts, axis=-1) if combine == "concat" else tf.add_n(parts)
    return tf.experimental.numpy.swapaxes(merged, 0, 1)


def layer_forward(
    w: LayerTensors, x: tf.Tensor, mask: tf.Tensor, keep_trace: bool
) -> tuple[tf.Tensor, tf.Tensor, ForwardTrace | None]:
    """Run both directions. x: (B, T, D), mask: (B, T) bool.

    Returns the output sequence (B, T, K*H), the final states (B, K*H) and, if asked, the trace.
    """
    gate = GATE_ACTIVATIONS[w.activation]
    xs = to_processing_order(x, w.directions)
    ms = to_processing_order(mask[..., None], w.directions)
    projected = tf.einsum("tkbd,kdg->tkbg", xs, w.kernel) + w.bias[:, None, :]  # hoisted out of the loop
    steps = tf.shape(xs)[0]
    state_shape = tf.stack([w.directions, tf.shape(x)[0], w.units])
    h = c = tf.zeros(state_shape, dtype=x.dtype)
    names = ("outputs",) + (
        ("forget_cell", "input_candidate", "cell", "candidate_pre", "hidden_prev") if keep_trace else ()
    )
    arrays = {n: tf.TensorArray(x.dtype, size=steps) for n in names}
    for t in tf.range(steps):
        z_i, z_f, z_g, z_o = tf.split(projected[t] + tf.matmul(h, w.recurrent), 4, axis=-1)
        i, f, g, o = gate(z_i), gate(z_f), tf.tanh(z_g), gate(z_o)
        record = {"forget_cell": f * c, "input_candidate": i * g, "candidate_pre": z_g, "hidden_prev": h}
        c_new = record["forget_cell"] + record["input_candidate"]
        record["cell"] = c_new
        c = tf.where(ms[t], c_new, c)
        h = tf.where(ms[t], o * tf.tanh(c_new), h)
        record["outputs"] = h
        arrays = {n: a.write(t, record[n]) for n, a in arrays.items()}
    stacked = {n: a.stack() for n, a in arrays.items()}
    final = tf.concat(tf.unstack(h, num=w.directions), axis=-1)
    trace = ForwardTrace(inputs=xs, mask=ms, **{n: stacked[n] for n in names[1:]}) if keep_trace else None
    return from_processing_order(stacked["outputs"], "concat"), final, trace


def layer_relevance(
    w: LayerTensors,
    trace: ForwardTrace,
    injected: tf.Tensor,
    eps: tf.Tensor,
    bias_factor: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Propagate relevance through one layer.

    injected: (T, K, B, H) relevance arriving on h_t from above, in processing order.
    Returns the relevance of the layer's inputs (B, T, D) and what stays on the initial states (B,).
    """
    w_g, u_g, b_g = w.candidate()
    steps = tf.shape(injected)[0]
    n_cell, n_candidate = 2 * w.units, w.kernel.shape[1] + w.units
    r_h = r_c = tf.zeros_like(injected[0])
    ratios = tf.TensorArray(injected.dtype, size=steps)
    shares = tf.TensorArray(injected.dtype, size=steps)
    for t in tf.range(steps - 1, -1, -1):
        r_h += injected[t]
        cell = trace.cell[t]
        q_c = relevance_ratio(cell, r_c + r_h, eps)
        share_c = bias_share(q_c, cell, None, eps, bias_factor, n_cell)
        r_g = trace.input_candidate[t] * q_c + share_c
        z_g = trace.candidate_pre[t]
        q_g = relevance_ratio(z_g, r_g, eps)
        share_g = bias_share(q_g, z_g, b_g, eps, bias_factor, n_candidate)
        m = trace.mask[t]
        r_c = tf.where(m, trace.forget_cell[t] * q_c + share_c, r_c)
        r_h = tf.where(m, trace.hidden_prev[t] * tf.matmul(q_g, u_g, transpose_b=True) + share_g, r_h)
        ratios = ratios.write(t, tf.where(m, q_g, tf.zeros_like(q_g)))
        shares = shares.write(t, tf.where(m, share_g, tf.zeros_like(share_g)))
    to_inputs = tf.einsum("tkbh,kdh->tkbd", ratios.stack(), w_g)  # hoisted out of the loop
    r_x = tf.where(trace.mask, trace.inputs * to_inputs + shares.stack(), tf.zeros_like(trace.inputs))
    r_in = from_processing_order(r_x, "sum")
    rest = tf.reduce_sum(r_h + r_c, axis=[0, 2])
    return r_in, rest


def final_state_injection(relevance_final: tf.Tensor, steps: tf.Tensor, directions: int) -> tf.Tensor:
    """Relevance on the final states (B, K*H) -> injection at the last processing step, (T, K, B, H)."""
    last = tf.stack(tf.split(relevance_final, directions, axis=-1), axis=0)[None]
    before = tf.zeros(tf.concat([[steps - 1], tf.shape(last)[1:]], axis=0), dtype=last.dtype)
    return tf.concat([before, last], axis=0)
