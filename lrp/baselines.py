"""Gradient baselines beside LRP, as compared in Arras et al. (2017), Sec. 3 and 5.

Both start from the gradient of the explained (pre-softmax) logit with respect to the input vectors:

- Gradient × Input ("gi", Shrikumar et al. 2016): R_{t,i} = x_{t,i} * d f_target / d x_{t,i};
  a token's score, the sum over i, is the first-order Taylor share of the token.
- Sensitivity Analysis ("sa", Simonyan et al. 2014): R_{t,i} = (d f_target / d x_{t,i})^2;
  a token's score, the sum over i, is the squared norm of the gradient, always >= 0.

Shapes: x (B, T, E) right-padded to the (B,) lengths, target (B,) class indices (-1: the argmax).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from lrp.choices import GRADIENT_METHODS

LogitsFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def target_gradient(logits_fn: LogitsFn, x: tf.Tensor, lengths: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """d logit_target / d x, (B, T, E), zero on padding. logits_fn(x, lengths) -> (B, C).

    Reviews are independent, so the gradient of the batch's summed target logits is each review's own.
    """
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = logits_fn(x, lengths)
        predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
        chosen = tf.where(target < 0, predicted, target)
        score = tf.reduce_sum(tf.gather(logits, chosen, axis=1, batch_dims=1))
    gradient = tape.gradient(score, x)
    mask = tf.sequence_mask(lengths, tf.shape(x)[1])[..., None]
    return tf.where(mask, gradient, tf.zeros_like(gradient))


def gradient_times_input(x: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Gradient × Input relevance (B, T, E)."""
    return x * gradient


def sensitivity(x: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Sensitivity Analysis relevance (B, T, E): the squared gradient (x only fixes the signature)."""
    return np.square(gradient)


def attribution_rule(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The rule (x, gradient) -> relevance (B, T, E) of a gradient method; ValueError for an unknown one."""
    rules = {"gi": gradient_times_input, "sa": sensitivity}
    if method not in rules:
        raise ValueError(f"Unknown attribution method {method!r}; use one of {', '.join(GRADIENT_METHODS)}.")
    return rules[method]
