"""The LRP-epsilon rule of Bach et al. (2015) as used by Arras et al. (2017), in matrix-product form.

For a linear map z_j = sum_i x_i w_ij + b_j with upper relevance R_j (eq. 1 of Arras et al. 2017, with the
bias and stabiliser share spread over the N lower units):

    R_i = sum_j (x_i w_ij + bias_factor * (b_j + eps * sign(z_j)) / N) / (z_j + eps * sign(z_j)) * R_j

which never needs the (D, M) message matrix:  q = R / (z + eps sign z);  R_in = x * (q W^T) + share,
share = bias_factor / N * sum_j (b_j + eps sign z_j) q_j, the same for every lower unit i.
"""

from __future__ import annotations

import tensorflow as tf


def sign_nonneg(z: tf.Tensor) -> tf.Tensor:
    """sign(z) with sign(0) = +1, the convention of the epsilon stabiliser."""
    return tf.where(z >= 0, tf.ones_like(z), -tf.ones_like(z))


def relevance_ratio(z: tf.Tensor, relevance: tf.Tensor, eps: tf.Tensor) -> tf.Tensor:
    """q_j = R_j / (z_j + eps sign z_j); (..., M) -> (..., M). A zero denominator (eps = 0, z = 0) gives 0."""
    return tf.math.divide_no_nan(relevance, z + eps * sign_nonneg(z))


def bias_share(
    q: tf.Tensor, z: tf.Tensor, bias: tf.Tensor | None, eps: tf.Tensor, bias_factor: tf.Tensor, n_lower: int
) -> tf.Tensor:
    """bias_factor / N * sum_j (b_j + eps sign z_j) q_j; (..., M) -> (..., 1), added to every lower unit."""
    absorbed = eps * sign_nonneg(z) if bias is None else bias + eps * sign_nonneg(z)
    return bias_factor / n_lower * tf.reduce_sum(absorbed * q, axis=-1, keepdims=True)


def epsilon_rule(
    x: tf.Tensor,
    weight: tf.Tensor,
    bias: tf.Tensor | None,
    z: tf.Tensor,
    relevance: tf.Tensor,
    eps: tf.Tensor,
    bias_factor: tf.Tensor,
) -> tf.Tensor:
    """LRP-epsilon through z = x W + b, N = D lower units. x: (B, D), W: (D, M), z, R: (B, M) -> (B, D)."""
    q = relevance_ratio(z, relevance, eps)
    share = bias_share(q, z, bias, eps, bias_factor, n_lower=x.shape[-1])
    return x * tf.matmul(q, weight, transpose_b=True) + share
