"""Keras layer configs and weights -> ModelParts, shared by in-memory models, .keras files and HDF5 files.

A model is read as a list of LayerRecords (class name, name, config, named weights), whatever it came from;
the configs are checked against the supported family before any weights are used.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrp.importers.parts import assemble_parts
from lrp.weights import (
    CellWeights,
    DenseWeights,
    GRUWeights,
    LSTMLayer,
    LSTMWeights,
    ModelParts,
    UnsupportedModelError,
)

NO_OP_LAYERS = frozenset({"InputLayer", "Masking", "Dropout", "SpatialDropout1D", "NotEqual", "Any"})
"""Layers that do not change an inference forward pass over unpadded sequences. NotEqual and Any are the
operations Keras 3 functional models record to compute the masks of Masking and Embedding(mask_zero)."""

RECURRENT = ("LSTM", "GRU")
_ROLES = {
    "TextVectorization": "T",
    "Embedding": "E",
    "LSTM": "L",
    "GRU": "L",
    "Bidirectional": "L",
    "Dense": "D",
}
_FOLLOWERS = {None: "TEL", "T": "E", "E": "L", "L": "LD", "D": ""}
"""The roles that may follow each role (None: the model input): [T] [E] L+ D."""

SUPPORTED = (
    "supported models are an optional TextVectorization(output_mode='int') and Embedding, then LSTM and GRU "
    "layers, alone or in Bidirectional(merge_mode='concat') (tanh activation, not stateful, no return_state, "
    "the last with return_sequences=False), then one Dense layer, with InputLayer, Masking, Dropout and "
    "SpatialDropout1D allowed anywhere"
)


@dataclass(frozen=True)
class LayerRecord:
    """One layer as Keras saves it: class name, layer name, config dict, (weight name, array) pairs in order,
    and the vocabulary of a TextVectorization layer when known."""

    class_name: str
    name: str
    config: dict[str, Any]
    weights: tuple[tuple[str, np.ndarray], ...] = ()
    vocabulary: tuple[str, ...] | None = None


def _describe(record: LayerRecord | None) -> str:
    return "the model input" if record is None else f"layer {record.name!r} ({record.class_name})"


def _unsupported(record: LayerRecord | None, problem: str) -> UnsupportedModelError:
    subject = _describe(record)
    return UnsupportedModelError(f"{subject[0].upper()}{subject[1:]} {problem}; {SUPPORTED}.")


def check_architecture(records: Sequence[LayerRecord]) -> list[LayerRecord]:
    """Raise UnsupportedModelError unless the layers form a supported model; return the computing layers."""
    kept = [record for record in records if record.class_name not in NO_OP_LAYERS]
    previous = None
    for record in kept:
        _check_layer(record)
        if _ROLES[record.class_name] not in _FOLLOWERS[previous and _ROLES[previous.class_name]]:
            raise _unsupported(record, f"cannot follow {_describe(previous)}")
        previous = record
    if previous is None or previous.class_name != "Dense":
        raise _unsupported(
            previous, "ends the model, which must end with a Dense layer after recurrent layers"
        )
    _check_return_sequences([record for record in kept if _ROLES[record.class_name] == "L"])
    return kept


def _check_layer(record: LayerRecord) -> None:
    if record.class_name not in _ROLES:
        raise _unsupported(record, "is not supported")
    if record.class_name in RECURRENT:
        _check_recurrent_config(record.config, record)
    elif record.class_name == "Bidirectional":
        _check_bidirectional(record)
    elif record.class_name == "TextVectorization" and record.config.get("output_mode", "int") != "int":
        raise _unsupported(record, f"has output_mode={record.config['output_mode']!r}")


def _check_recurrent_config(config: dict[str, Any], record: LayerRecord, go_backwards: bool = False) -> None:
    """Check a plain LSTM's or GRU's config, or one direction's (go_backwards=True for the backward one)."""
    if config.get("activation", "tanh") != "tanh":
        raise _unsupported(record, f"has activation={config['activation']!r}")
    expected = {"return_state": False, "stateful": False, "time_major": False, "go_backwards": go_backwards}
    for flag, value in expected.items():
        if bool(config.get(flag, False)) != value:
            raise _unsupported(record, f"has {flag}={config.get(flag, False)}")


def _check_bidirectional(record: LayerRecord) -> None:
    merge_mode = record.config.get("merge_mode", "concat")
    if merge_mode != "concat":
        raise _unsupported(record, f"has merge_mode={merge_mode!r}")
    directions = [(record.config["layer"], False)]
    if record.config.get("backward_layer"):
        directions.append((record.config["backward_layer"], True))
    for inner, go_backwards in directions:
        if inner.get("class_name") not in RECURRENT:
            raise _unsupported(record, f"wraps a {inner.get('class_name')}")
        _check_recurrent_config(inner["config"], record, go_backwards)
    if len({inner.get("class_name") for inner, _ in directions}) > 1:
        raise _unsupported(record, "has a forward and a backward layer of different kinds")


def _recurrent_config(record: LayerRecord) -> dict[str, Any]:
    return record.config["layer"]["config"] if record.class_name == "Bidirectional" else record.config


def _check_return_sequences(recurrent: list[LayerRecord]) -> None:
    for record in recurrent[:-1]:
        if not _recurrent_config(record).get("return_sequences", False):
            raise _unsupported(record, "has return_sequences=False but another recurrent layer follows it")
    if _recurrent_config(recurrent[-1]).get("return_sequences", False):
        raise _unsupported(recurrent[-1], "is the last recurrent layer but has return_sequences=True")


def _named_weights(weights: Sequence[tuple[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Key weights by their last name component without ':0' ('lstm/lstm_cell/kernel:0' -> 'kernel')."""
    return {name.rsplit("/", 1)[-1].split(":")[0]: np.asarray(value) for name, value in weights}


def _require(record: LayerRecord, named: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in named:
        raise UnsupportedModelError(
            f"{_describe(record)} has no {name!r} weight (found {sorted(named)}); re-save the model with "
            "its weights."
        )
    return named[name]


def _bias(record: LayerRecord, named: dict[str, np.ndarray], config: dict[str, Any]) -> np.ndarray | None:
    return _require(record, named, "bias") if config.get("use_bias", True) else None


def _activation(config: dict[str, Any], keras2: bool) -> str:
    """The recurrent activation; Keras 2's hard_sigmoid (clip(0.2 x + 0.5)) becomes "hard_sigmoid_keras2"."""
    activation = config.get("recurrent_activation", "sigmoid")
    return "hard_sigmoid_keras2" if keras2 and activation == "hard_sigmoid" else activation


def _cell_weights(
    record: LayerRecord,
    kind: str,
    weights: Sequence[tuple[str, np.ndarray]],
    config: dict[str, Any],
    keras2: bool,
) -> CellWeights:
    """One LSTM or GRU direction. A GRU with reset_after (Keras's default since 2.3; absent from configs
    written before it existed) saves its input and recurrent biases as the two rows of one (2, 3H) bias."""
    named = _named_weights(weights)
    kernel = _require(record, named, "kernel")
    recurrent_kernel = _require(record, named, "recurrent_kernel")
    bias = _bias(record, named, config)
    activation = _activation(config, keras2)
    if kind == "LSTM":
        bias = np.zeros(kernel.shape[-1], kernel.dtype) if bias is None else bias
        return LSTMWeights(kernel, recurrent_kernel, bias, activation)
    reset_after = bool(config.get("reset_after", False))
    if bias is None:
        bias = np.zeros((2, kernel.shape[-1]) if reset_after else kernel.shape[-1], kernel.dtype)
    if reset_after and np.ndim(bias) != 2:
        raise UnsupportedModelError(
            f"{_describe(record)} has reset_after=True but a bias of shape {np.shape(bias)}, expected "
            f"(2, {kernel.shape[-1]}); re-save the model."
        )
    if reset_after:
        return GRUWeights(kernel, recurrent_kernel, bias[0], bias[1], True, activation)
    return GRUWeights(kernel, recurrent_kernel, bias, None, False, activation)


def _recurrent_layer(record: LayerRecord, keras2: bool) -> LSTMLayer:
    """A plain or Bidirectional LSTM or GRU; Keras lists the forward layer's weights before the backward
    layer's."""
    if record.class_name in RECURRENT:
        return LSTMLayer(_cell_weights(record, record.class_name, record.weights, record.config, keras2))
    half = len(record.weights) // 2
    backward = record.config.get("backward_layer") or record.config["layer"]
    kind = backward["class_name"]
    return LSTMLayer(
        forward=_cell_weights(record, kind, record.weights[:half], _recurrent_config(record), keras2),
        backward=_cell_weights(record, kind, record.weights[half:], backward["config"], keras2),
    )


def _dense(record: LayerRecord) -> DenseWeights:
    named = _named_weights(record.weights)
    return DenseWeights(_require(record, named, "kernel"), _bias(record, named, record.config))


def parts_from_records(
    records: Sequence[LayerRecord],
    keras2: bool,
    tokens: Sequence[str] | None = None,
    source: str = "the model",
) -> ModelParts:
    """Build ModelParts from layer records; keras2 selects Keras 2's hard_sigmoid; `tokens` override a
    TextVectorization vocabulary; `source` names the model in errors."""
    kept = check_architecture(records)
    embeddings = [
        _require(r, _named_weights(r.weights), "embeddings") for r in kept if r.class_name == "Embedding"
    ]
    model_tokens = next((r.vocabulary for r in kept if r.class_name == "TextVectorization"), None)
    return assemble_parts(
        layers=[_recurrent_layer(r, keras2) for r in kept if _ROLES[r.class_name] == "L"],
        dense=_dense(kept[-1]),
        embedding=embeddings[0] if embeddings else None,
        tokens=model_tokens if tokens is None else tokens,
        source=source,
        mask_zero=any(bool(r.config.get("mask_zero", False)) for r in kept if r.class_name == "Embedding"),
        mask_value=next(
            (float(r.config.get("mask_value", 0.0)) for r in records if r.class_name == "Masking"), None
        ),
    )


def config_records(model_config: dict[str, Any]) -> list[LayerRecord]:
    """The weightless layer records of a saved Sequential or functional model config (Keras 2 or 3 JSON)."""
    kind = model_config.get("class_name")
    if kind not in ("Sequential", "Functional", "Model"):
        raise UnsupportedModelError(
            f"The saved model is a {kind}; only Sequential and functional models are read."
        )
    config = model_config["config"]
    layers = config if isinstance(config, list) else config["layers"]
    return [LayerRecord(layer["class_name"], layer["config"]["name"], layer["config"]) for layer in layers]


def _record_from_layer(layer: Any) -> LayerRecord:
    """A layer, or a Keras 3 operation (no weights), as a LayerRecord; the config of an unsupported layer is
    not asked for (custom layers may not implement get_config)."""
    class_name = type(layer).__name__
    if class_name == "Masking":  # its mask value decides which steps the model skips
        return LayerRecord(class_name, layer.name, layer.get_config())
    if class_name not in _ROLES:
        return LayerRecord(class_name, layer.name, {})
    vocabulary = tuple(map(str, layer.get_vocabulary())) if class_name == "TextVectorization" else None
    weights = tuple(zip((w.name for w in layer.weights), layer.get_weights(), strict=True))
    return LayerRecord(class_name, layer.name, layer.get_config(), weights, vocabulary)


def _uses_keras2_activations(model: Any) -> bool:
    """tf-keras models use Keras 2's hard_sigmoid; a model can only be one if tf_keras is imported."""
    tf_keras = sys.modules.get("tf_keras")
    return tf_keras is not None and isinstance(model, tf_keras.Model)


def parts_from_keras_model(
    model: Any, tokens: Sequence[str] | None = None, source: str = "the model"
) -> ModelParts:
    """Read a built Keras 3 or tf-keras Sequential or functional model (see SUPPORTED)."""
    if type(model).__name__ not in ("Sequential", "Functional"):
        raise UnsupportedModelError(
            f"{type(model).__name__} is a subclassed model whose call() cannot be read; build it with "
            "Sequential or the functional API."
        )
    # Keras 3 functional models list operations such as ops.multiply in `operations`, not in `layers`.
    records = [_record_from_layer(layer) for layer in getattr(model, "operations", model.layers)]
    return parts_from_records(records, _uses_keras2_activations(model), tokens, source)
