"""What the LSTM and GRU layers share: gate nonlinearities, the processing order of both directions, the
hoisted input product and the injection of the final states' relevance.

Recurrent tensors are time-major with the direction stacked on axis 1, (T, K, B, ...), K = 1 or 2. The
backward direction sees the padded sequence reversed, so on a right-padded batch it meets the padding first,
keeps its zero state there (masked steps leave the state unchanged) and starts each review at its own last
token, as Keras does with a mask.
"""

from __future__ import annotations

import tensorflow as tf

GATE_ACTIVATIONS = {
    "sigmoid": tf.sigmoid,
    "hard_sigmoid": lambda z: tf.clip_by_value(z / 6.0 + 0.5, 0.0, 1.0),
    "hard_sigmoid_keras2": lambda z: tf.clip_by_value(0.2 * z + 0.5, 0.0, 1.0),
}


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


def batch_matmul(seq: tf.Tensor, weight: tf.Tensor) -> tf.Tensor:
    """(B, T, F) @ (F, G) -> (B, T, G) as one 2-d matrix product."""
    shape = tf.shape(seq)
    flat = tf.matmul(tf.reshape(seq, [-1, seq.shape[-1]]), weight)
    return tf.reshape(flat, tf.concat([shape[:2], [weight.shape[-1]]], axis=0))


def input_projection(kernel: tf.Tensor, bias: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """x W + b for every step and direction at once, hoisted out of the loop. kernel: (K, D, G), bias:
    (K, 1, G), x: (B, T, D) -> (K, T, B, G).

    Direction-major, so that the only full-size copy is the matrix product itself; the loop reads step t
    as projected[:, t]."""
    directions, input_dim = kernel.shape[0], kernel.shape[1]
    time_major = tf.experimental.numpy.swapaxes(x, 0, 1)
    inputs = tf.stack([time_major, tf.reverse(time_major, axis=[0])][:directions])
    flat = tf.reshape(inputs, [directions, -1, input_dim])
    projected = tf.matmul(flat, kernel) + bias
    return tf.reshape(projected, tf.concat([tf.shape(inputs)[:3], [kernel.shape[-1]]], axis=0))


def previous_states(outputs: tf.Tensor) -> tf.Tensor:
    """h_{t-1} for every step from the states h_t (T, K, B, H) in processing order: step 0 reads the zero
    initial state, never the last step's."""
    return tf.concat([tf.zeros_like(outputs[:1]), outputs[:-1]], axis=0)


def final_state_injection(relevance_final: tf.Tensor, steps: tf.Tensor, directions: int) -> tf.Tensor:
    """Relevance on the final states (B, K*H) -> injection at the last processing step, (T, K, B, H)."""
    last = tf.stack(tf.split(relevance_final, directions, axis=-1), axis=0)[None]
    before = tf.zeros(tf.concat([[steps - 1], tf.shape(last)[1:]], axis=0), dtype=last.dtype)
    return tf.concat([before, last], axis=0)
