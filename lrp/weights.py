"""Weight containers for the supported model family: LSTM and GRU layers (uni- or bidirectional, stacked
in any mix) and a Dense head.

Keras conventions throughout: LSTM gate order i, f, g (the cell candidate, Keras's "c"), o along the 4H axis,
one bias per direction; GRU gate order z, r, n (Keras's "h") along the 3H axis, an input bias and, with
reset_after, a recurrent bias; the Dense layer maps the last layer's final state to C class logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

RECURRENT_ACTIVATIONS = ("sigmoid", "hard_sigmoid", "hard_sigmoid_keras2")
"""Gate nonlinearities: the logistic sigmoid; Keras 3 hard_sigmoid, clip(x / 6 + 1/2, 0, 1); and the Keras 2
(tf-keras, TF <= 2.15) hard_sigmoid, clip(0.2 x + 1/2, 0, 1)."""


class UnsupportedModelError(ValueError):
    """The model is outside the supported family; the message names what is unsupported and what is."""


class _CellWeights:
    """What LSTM and GRU directions share: the sizes read off the kernels and the shape checks.

    Subclasses set `kind` ("lstm", "gru") and `gates` (blocks of H columns: 4 or 3)."""

    kind: ClassVar[str]
    gates: ClassVar[int]
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    recurrent_activation: str

    @property
    def input_dim(self) -> int:
        return self.kernel.shape[0]

    @property
    def units(self) -> int:
        return self.recurrent_kernel.shape[0]

    def expected_shapes(self, input_dim: int) -> dict[str, tuple[int, ...]]:
        """Field name -> the shape it must have over `input_dim` features."""
        h, width = self.units, self.gates * self.units
        return {"kernel": (input_dim, width), "recurrent_kernel": (h, width), "bias": (width,)}

    def validate(self, input_dim: int, where: str) -> None:
        """Raise UnsupportedModelError unless the shapes fit this cell over `input_dim` features."""
        for name, shape in self.expected_shapes(input_dim).items():
            if tuple(np.shape(getattr(self, name))) != shape:
                raise UnsupportedModelError(
                    f"{where}: {name} has shape {np.shape(getattr(self, name))}, expected {shape} "
                    f"for a {self.units}-unit {self.kind.upper()} over {input_dim} input features."
                )
        if self.recurrent_activation not in RECURRENT_ACTIVATIONS:
            raise UnsupportedModelError(
                f"{where}: recurrent activation {self.recurrent_activation!r} is not supported; "
                f"use one of {', '.join(RECURRENT_ACTIVATIONS)}."
            )


@dataclass(frozen=True)
class LSTMWeights(_CellWeights):
    """One LSTM direction: z_t = x_t W + h_{t-1} U + b, split into gates i, f, g, o.

    kernel: (D, 4H), recurrent_kernel: (H, 4H), bias: (4H,).
    """

    kind: ClassVar[str] = "lstm"
    gates: ClassVar[int] = 4
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray
    recurrent_activation: str = "sigmoid"


@dataclass(frozen=True)
class GRUWeights(_CellWeights):
    """One GRU direction (Keras layout, gate order z, r, n along the 3H axis):

        z_t = act(x_t W_z + h_{t-1} U_z + b_z + b'_z),  r_t = act(x_t W_r + h_{t-1} U_r + b_r + b'_r)
        reset_after:      n_t = tanh(x_t W_n + b_n + r_t * (h_{t-1} U_n + b'_n))
        not reset_after:  n_t = tanh(x_t W_n + (r_t * h_{t-1}) U_n + b_n)
        h_t = z_t * h_{t-1} + (1 - z_t) * n_t

    kernel: (D, 3H), recurrent_kernel: (H, 3H), bias: (3H,) the input bias b; recurrent_bias: (3H,) the
    recurrent bias b' (reset_after only; None otherwise). PyTorch's order r, z, n is converted on import.
    """

    kind: ClassVar[str] = "gru"
    gates: ClassVar[int] = 3
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray
    recurrent_bias: np.ndarray | None = None
    reset_after: bool = True
    recurrent_activation: str = "sigmoid"

    def expected_shapes(self, input_dim: int) -> dict[str, tuple[int, ...]]:
        """As for any cell, plus the recurrent bias (3H,) with reset_after (and none without)."""
        shapes = super().expected_shapes(input_dim)
        if self.reset_after:
            shapes["recurrent_bias"] = shapes["bias"]
        return shapes

    def validate(self, input_dim: int, where: str) -> None:
        if not self.reset_after and self.recurrent_bias is not None:
            raise UnsupportedModelError(f"{where}: a GRU without reset_after has no recurrent bias.")
        super().validate(input_dim, where)


CellWeights = LSTMWeights | GRUWeights


@dataclass(frozen=True)
class LSTMLayer:
    """A recurrent layer (LSTM or GRU, both directions of one kind): `forward` alone, or `forward` and
    `backward` for a Bidirectional layer (merge concat).

    Output features: H (unidirectional) or 2H, forward half first (Keras's concat order).
    """

    forward: CellWeights
    backward: CellWeights | None = None

    @property
    def kind(self) -> str:
        """'lstm' or 'gru'."""
        return self.forward.kind

    @property
    def directions(self) -> tuple[CellWeights, ...]:
        return (self.forward,) if self.backward is None else (self.forward, self.backward)

    @property
    def output_dim(self) -> int:
        return self.forward.units * len(self.directions)


@dataclass(frozen=True)
class DenseWeights:
    """The classifier head: logits = h_final W + b. kernel: (D, C); bias: (C,) or None."""

    kernel: np.ndarray
    bias: np.ndarray | None = None

    @property
    def classes(self) -> int:
        return self.kernel.shape[1]


def validate_stack(layers: Sequence[LSTMLayer], dense: DenseWeights) -> int:
    """Check that the layers chain; return the input feature size E. Raises UnsupportedModelError."""
    if not layers:
        raise UnsupportedModelError(
            "The model has no recurrent layer; at least one LSTM or GRU layer is required."
        )
    input_dim = layers[0].forward.input_dim
    width = input_dim
    for n, layer in enumerate(layers):
        kinds = {type(d) for d in layer.directions}
        units = {d.units for d in layer.directions}
        activations = {d.recurrent_activation for d in layer.directions}
        if len(kinds) != 1 or len(units) != 1 or len(activations) != 1:
            raise UnsupportedModelError(
                f"Recurrent layer {n}: forward and backward directions differ in kind, units or recurrent "
                "activation."
            )
        for d in layer.directions:
            d.validate(width, where=f"Recurrent layer {n}")
        width = layer.output_dim
    if np.ndim(dense.kernel) != 2 or dense.kernel.shape[0] != width:
        raise UnsupportedModelError(
            f"Dense layer: kernel has shape {np.shape(dense.kernel)}, expected ({width}, C) "
            f"to read the last recurrent layer's {width} features."
        )
    if dense.bias is not None and tuple(np.shape(dense.bias)) != (dense.classes,):
        raise UnsupportedModelError(
            f"Dense layer: bias has shape {np.shape(dense.bias)}, expected ({dense.classes},)."
        )
    return input_dim


@dataclass(frozen=True)
class ModelParts:
    """Everything an importer recovers from a model file: the explainable stack and, when the model embeds
    its own tokens, the embedding matrix (V, E) and `tokens` (the token of each id).

    oov_id: the id of the model's own token for out-of-vocabulary words (importers find a conventional one
    in the vocabulary, lrp.importers.vocab.OOV_TOKENS); None, the default: the model has none, and unknown
    tokens get a zero vector (transforms.model).
    mask_zero: the Embedding layer masks id 0 (Keras Embedding(mask_zero=True)): the model skips every step
    whose id is 0, wherever it is. mask_value: the value of a Keras Masking layer (None without one): the
    model skips every input step whose features all equal it, wherever it is (its mask replaces
    mask_zero's). The engine masks by length only, so callers leave such steps out (transforms.steps).
    """

    layers: tuple[LSTMLayer, ...]
    dense: DenseWeights
    embedding: np.ndarray | None = None
    tokens: tuple[str, ...] | None = None
    oov_id: int | None = None
    mask_zero: bool = False
    mask_value: float | None = None
