"""The layout of the reference implementation of Arras et al. (github.com/ArrasL/LRP_for_LSTM): a directory
holding `model` (pickled dict of numpy arrays), `vocab` (pickled list of tokens) and `embeddings.npy` (V, E).

Per direction (Left: forward; Right: runs over the reversed sentence, i.e. Keras's backward layer):
Wxh (4H, E), bxh (4H,), Whh (4H, H), bhh (4H,) with gate rows i, g, f, o; Why (C, H); no output bias.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lrp.files import child
from lrp.importers.embeddings import load_npy
from lrp.importers.parts import assemble_parts
from lrp.importers.safe_pickle import safe_load_pickle
from lrp.importers.vocab import load_vocab
from lrp.weights import DenseWeights, LSTMLayer, LSTMWeights, ModelParts

SIDES = ("Left", "Right")
WEIGHT_NAMES = tuple(f"{name}_{side}" for side in SIDES for name in ("Wxh", "bxh", "Whh", "bhh", "Why"))


def _load_weights(path: str) -> dict[str, np.ndarray]:
    weights = safe_load_pickle(path)
    missing = [name for name in WEIGHT_NAMES if not isinstance(weights, dict) or name not in weights]
    if missing:
        raise ValueError(
            f"{path} lacks {', '.join(missing)}; an ArrasL model is a pickled dict of Wxh, bxh, Whh, bhh "
            "and Why arrays for Left and Right."
        )
    return {name: np.asarray(weights[name]) for name in WEIGHT_NAMES}


def _keras_gate_order(rows: np.ndarray) -> np.ndarray:
    """Reorder the 4H gate rows from i, g, f, o (ArrasL) to i, f, g, o (Keras)."""
    i, g, f, o = np.split(rows, 4)
    return np.concatenate([i, f, g, o])


def _direction(weights: dict[str, np.ndarray], side: str) -> LSTMWeights:
    """One direction in Keras layout: transposed kernels, gates i, f, g, o, the two biases summed."""
    return LSTMWeights(
        kernel=_keras_gate_order(weights[f"Wxh_{side}"]).T,
        recurrent_kernel=_keras_gate_order(weights[f"Whh_{side}"]).T,
        bias=_keras_gate_order(weights[f"bxh_{side}"] + weights[f"bhh_{side}"]),
    )


def parts_from_arras(directory: str, tokens: Sequence[str] | None = None) -> ModelParts:
    """Read an ArrasL model directory (local path or fsspec URL); `tokens` override its `vocab` file.

    oov_id is the id of an "<unk>"-like token if the vocabulary has one (the model has no padding token:
    the engine masks by length).
    """
    weights = _load_weights(child(directory, "model"))
    embedding = load_npy(child(directory, "embeddings.npy"))
    tokens = load_vocab(child(directory, "vocab")) if tokens is None else tokens
    if len(tokens) > len(embedding):
        raise ValueError(
            f"The vocabulary has {len(tokens)} tokens but {directory}/embeddings.npy has only "
            f"{len(embedding)} rows; pass the vocabulary the model was trained with."
        )
    return assemble_parts(
        layers=[LSTMLayer(_direction(weights, "Left"), _direction(weights, "Right"))],
        dense=DenseWeights(np.concatenate([weights["Why_Left"].T, weights["Why_Right"].T])),
        embedding=embedding,
        tokens=tokens,
        source=directory,
    )
