"""Model files of any supported format -> ModelParts, and verification against the source model."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import h5py
import numpy as np

from lrp.files import child, exists, is_dir, local_file, suffix
from lrp.importers.arras import parts_from_arras
from lrp.importers.keras_h5 import h5_config_records, parts_from_h5
from lrp.importers.keras_model import check_architecture, config_records
from lrp.importers.keras_v3 import archive_config, load_keras_file, parts_from_keras_file
from lrp.importers.torch_state import SPEC_SUFFIXES, WEIGHT_SUFFIXES, parts_from_torch
from lrp.importers.vocab import load_vocab
from lrp.weights import ModelParts

_LOADERS: dict[str, Callable[[str, Sequence[str] | None], ModelParts]] = {
    "keras": parts_from_keras_file,
    "h5": parts_from_h5,
    "arras": parts_from_arras,
    "torch": parts_from_torch,
}
_SUFFIXES = {".keras": "keras", ".h5": "h5", ".hdf5": "h5"} | dict.fromkeys(
    WEIGHT_SUFFIXES + SPEC_SUFFIXES, "torch"
)


def model_format(path_or_url: str) -> str:
    """'keras' (.keras), 'h5' (.h5, .hdf5), 'torch' (.safetensors, .pt, .pth, or a .yaml/.yml/.json model
    spec) or 'arras' (a directory holding `model`); else ValueError."""
    kind = _SUFFIXES.get(suffix(path_or_url))
    if kind is None and is_dir(path_or_url) and exists(child(path_or_url, "model")):
        kind = "arras"
    if kind is None:
        raise ValueError(
            f"Cannot tell the model format of {path_or_url}; pass a Keras 3 .keras file, a Keras .h5/.hdf5 "
            "file, a PyTorch .safetensors/.pt/.pth state dict (or a .yaml/.json model spec naming one), or "
            "an ArrasL model directory (model, vocab, embeddings.npy)."
        )
    return kind


def check_model_file(path_or_url: str) -> None:
    """Refuse a .keras file whose layers are outside the supported family from its config.json alone, before
    Keras or TensorFlow is imported (UnsupportedModelError); other formats are checked as they load."""
    if model_format(path_or_url) == "keras":
        with local_file(path_or_url) as local:
            check_architecture(config_records(archive_config(local, path_or_url)))


def load_model_parts(path_or_url: str, vocab: str | None = None) -> ModelParts:
    """Read a model file or directory (local path or fsspec URL) into ModelParts.

    vocab: a vocabulary file (one token a line, or a pickled list) that overrides the model's own.
    """
    tokens = None if vocab is None else load_vocab(vocab)
    return _LOADERS[model_format(path_or_url)](path_or_url, tokens)


def _load_tf_keras_h5(local_path: str, source: str) -> tuple[Any, Any] | None:
    """(tf_keras, model) for an HDF5 file, or None when tf-keras is missing or cannot load the file."""
    try:
        import tf_keras
    except ImportError:
        return None
    with h5py.File(local_path, "r") as f:
        check_architecture(h5_config_records(f, source))
    try:
        return tf_keras, tf_keras.models.load_model(local_path, compile=False)
    except Exception:  # a file tf-keras cannot read is one no framework here can run
        return None


_NOT_REPLAYED = ("InputLayer", "TextVectorization")
"""Layers left out when the source model is replayed on token ids or vectors."""


def _logits_function(framework: Any, model: Any, parts: ModelParts) -> Callable[[np.ndarray], np.ndarray]:
    """The model's layers after any TextVectorization, with the Dense activation removed, as a function."""
    layers = [layer for layer in model.layers if type(layer).__name__ not in _NOT_REPLAYED]
    dense = [layer for layer in layers if type(layer).__name__ == "Dense"][-1]
    dense.activation = framework.activations.linear
    if parts.embedding is None:
        inputs = framework.Input(shape=(None, parts.layers[0].forward.input_dim))
    else:
        inputs = framework.Input(shape=(None,), dtype="int32")
    chain = framework.Sequential([inputs, *layers])
    return lambda x: np.asarray(chain(x, training=False), dtype=np.float64)


def source_model_predict(path_or_url: str, parts: ModelParts) -> Callable[[np.ndarray], np.ndarray] | None:
    """The source model's own pre-activation logits (B, C) as a function of token ids (B, T) (models with an
    Embedding) or vectors (B, T, E); None where no framework here runs it (ArrasL; PyTorch; HDF5 without
    tf-keras)."""
    kind = model_format(path_or_url)
    if kind in ("arras", "torch"):
        return None
    with local_file(path_or_url) as local:
        if kind == "keras":
            import keras

            loaded = keras, load_keras_file(local, path_or_url)
        else:
            loaded = _load_tf_keras_h5(local, path_or_url)
    return None if loaded is None else _logits_function(*loaded, parts)


def _random_inputs(parts: ModelParts, rng: np.random.Generator, batch: int = 4, steps: int = 6) -> np.ndarray:
    """Token ids (B, T) in [1, V), avoiding the Keras padding id 0, or standard normal vectors (B, T, E)."""
    if parts.embedding is not None:
        return rng.integers(1, len(parts.embedding), size=(batch, steps)).astype(np.int32)
    return rng.standard_normal((batch, steps, parts.layers[0].forward.input_dim)).astype(np.float32)


def verify_parts(parts: ModelParts, path_or_url: str, explainer: Any, seed: int = 0) -> bool:
    """Compare explainer.predict with the source model's logits on a random batch.

    explainer needs predict(x (B, T, E)) -> (B, C) and, for models with an Embedding, embed(ids) -> (B, T, E).
    Returns True when max |difference| <= 1e-5 * max(1, max |logit|); False, with a warning, when no framework
    here can run the source model; raises ValueError when they differ.
    """
    source = source_model_predict(path_or_url, parts)
    if source is None:
        warnings.warn(f"Cannot verify {path_or_url}: no installed framework runs it.", stacklevel=2)
        return False
    inputs = _random_inputs(parts, np.random.default_rng(seed))
    expected = source(inputs)
    got = np.asarray(explainer.predict(inputs if parts.embedding is None else explainer.embed(inputs)))
    difference, tolerance = np.max(np.abs(got - expected)), 1e-5 * max(1.0, np.max(np.abs(expected)))
    if not difference <= tolerance:
        raise ValueError(
            f"The imported {path_or_url} predicts logits up to {difference:.3g} away from the source model's "
            f"(tolerance {tolerance:.3g}); the file uses behaviour this importer does not reproduce."
        )
    return True
