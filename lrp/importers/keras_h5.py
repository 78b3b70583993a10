"""Keras HDF5 files (.h5, .hdf5) read with h5py alone: the architecture from the `model_config` JSON
attribute, the weights from `model_weights/<layer>/<weight name>` in the order of each layer's `weight_names`.

This covers files that Keras 3 refuses: Keras 2.x and TF 2.1-2.15 era files, tf-keras files (`time_major`),
Sequential or functional models alike. Nothing in the file is deserialized as code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import h5py

from lrp.files import local_file
from lrp.importers.keras_model import LayerRecord, config_records, parts_from_records
from lrp.weights import ModelParts


def _text(value: Any) -> str:
    """HDF5 string attributes come back as str or bytes depending on how they were written."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def h5_config_records(f: h5py.File, source: str) -> list[LayerRecord]:
    """The weightless layer records of the model config stored in an open HDF5 file."""
    if "model_config" not in f.attrs:
        raise ValueError(
            f"{source} holds no model_config (it stores weights only); save the whole model with "
            "model.save()."
        )
    return config_records(json.loads(_text(f.attrs["model_config"])))


def _layer_weights(root: h5py.Group, name: str) -> tuple[tuple[str, Any], ...]:
    if name not in root:
        return ()
    group = root[name]
    return tuple((weight, group[weight][()]) for weight in map(_text, group.attrs.get("weight_names", [])))


def uses_keras2_activations(f: h5py.File) -> bool:
    """Files written before Keras 3 (keras_version 2.x, or none recorded) use Keras 2's hard_sigmoid."""
    return not _text(f.attrs.get("keras_version", "2")).startswith("3")


def parts_from_h5(path_or_url: str, tokens: Sequence[str] | None = None) -> ModelParts:
    """Read a Keras HDF5 model file (local path or fsspec URL) into ModelParts."""
    with local_file(path_or_url) as local, h5py.File(local, "r") as f:
        root = f.get("model_weights", f)
        records = [
            replace(r, weights=_layer_weights(root, r.name)) for r in h5_config_records(f, path_or_url)
        ]
        keras2 = uses_keras2_activations(f)
    return parts_from_records(records, keras2, tokens, source=path_or_url)
