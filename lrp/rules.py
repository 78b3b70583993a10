"""The LRP-epsilon rule of Bach et al. (2015) as used by Arras et al. (2017), in matrix-product form, and
the relevance it leaves on biases and stabilisers (the ledger).

For a linear map z_j = sum_i x_i w_ij + b_j with upper relevance R_j (Arras et al. 2017, eq. 1, with the
bias and stabiliser share spread over the N lower units):

    R_i = sum_j (x_i w_ij + bias_factor * (b_j + eps * sign(z_j)) / N) / (z_j + eps * sign(z_j)) * R_j

which never needs the (D, M) message matrix: with s_j = 1 / (z_j + eps sign z_j),
R_in = x * ((s R) W^T) + share,  share = bias_factor / N * sum_j (b_j + eps sign z_j) s_j R_j, the same
for every lower unit i. sign(0) = +1; a zero denominator (eps = 0, z = 0) passes no relevance.

Since sum_i x_i w_ij = z_j - b_j, the lower units receive sum_i R_i = sum_j (R_j - A_j), where

    A_j = (1 - bias_factor) * (b_j + eps sign z_j) / (z_j + eps sign z_j) * R_j

(all of R_j where z_j + eps sign z_j = 0) is what the rule absorbs into the bias and the stabiliser of
upper unit j.
"""

from __future__ import annotations

import tensorflow as tf


def stabilizer(z: tf.Tensor, eps: float) -> tf.Tensor:
    """eps * sign(z) with sign(0) = +1. eps is a Python number: each value gets its own traced graph."""
    return tf.where(z >= 0, tf.constant(eps, z.dtype), tf.constant(-eps, z.dtype))


def stabilized_inverse(z: tf.Tensor, eps: float) -> tf.Tensor:
    """s = 1 / (z + eps sign z), elementwise; 0 where the denominator is 0 (only possible with eps = 0)."""
    if eps == 0:
        return tf.math.divide_no_nan(tf.ones_like(z), z)
    return tf.math.reciprocal(z + stabilizer(z, eps))


def bias_term(z: tf.Tensor, bias: tf.Tensor | None, eps: float) -> tf.Tensor:
    """b + eps sign z: what the bias and the stabiliser add to each upper neuron (b = 0 when None)."""
    return stabilizer(z, eps) if bias is None else bias + stabilizer(z, eps)


def absorbed_fraction(
    z: tf.Tensor, bias: tf.Tensor | None, eps: float, bias_factor: float, mask: tf.Tensor | None = None
) -> tf.Tensor:
    """A_j / R_j = (1 - bias_factor)(b_j + eps sign z_j) s_j, elementwise, and 1 where the denominator
    z_j + eps sign z_j is 0 (only possible with eps = 0); 0 where `mask` (broadcast to z) is False."""
    inverse = stabilized_inverse(z, eps)
    inverse = inverse if mask is None else tf.where(mask, inverse, 0.0)
    fraction = bias_term(z, bias, eps) * inverse
    fraction = fraction if bias_factor == 0 else (1.0 - bias_factor) * fraction
    if eps > 0:
        return fraction
    vanishes = tf.equal(z, 0.0) if mask is None else tf.logical_and(mask, tf.equal(z, 0.0))
    return tf.where(vanishes, tf.ones_like(z), fraction)


def absorbed_relevance(
    z: tf.Tensor, bias: tf.Tensor | None, relevance: tf.Tensor, eps: float, bias_factor: float
) -> tf.Tensor:
    """sum_j A_j over the last axis: z, R (..., M) -> (...,), what epsilon_rule does not pass down."""
    return tf.reduce_sum(absorbed_fraction(z, bias, eps, bias_factor) * relevance, axis=-1)


def epsilon_rule(
    x: tf.Tensor,
    weight: tf.Tensor,
    bias: tf.Tensor | None,
    z: tf.Tensor,
    relevance: tf.Tensor,
    eps: float,
    bias_factor: float,
) -> tf.Tensor:
    """LRP-epsilon through z = x W + b, N = D lower units. x: (B, D), W: (D, M), z, R: (B, M) -> (B, D)."""
    q = relevance * stabilized_inverse(z, eps)
    messages = x * tf.matmul(q, weight, transpose_b=True)
    if bias_factor == 0:
        return messages
    share = bias_factor / x.shape[-1] * tf.reduce_sum(bias_term(z, bias, eps) * q, axis=-1, keepdims=True)
    return messages + share
