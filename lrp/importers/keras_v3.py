"""Keras 3 .keras files: the layers in config.json are checked first, then the weights are read from
model.weights.h5 with h5py alone (no Keras, no TensorFlow). Archives this reader does not know (written by
another Keras than 3.x, or holding a TextVectorization, whose vocabulary is an asset) are loaded by Keras in
safe mode, after the same check, so an unsupported layer (a Lambda included) is refused before Keras
deserializes anything.

In model.weights.h5, Keras 3 keeps each layer's variables under layers/<name>/vars/<index>, named by the
layer's class in snake case with a counter per class (lstm, lstm_1, ...), a recurrent layer's under
<name>/cell/vars, a Bidirectional's under <name>/forward_layer/cell/vars and <name>/backward_layer/cell/vars.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import h5py

from lrp.files import local_file
from lrp.importers.keras_model import (
    LayerRecord,
    check_architecture,
    config_records,
    parts_from_keras_model,
    parts_from_records,
)
from lrp.weights import ModelParts


def archive_config(local_path: str, source: str) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(local_path) as archive:
            return json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError) as error:
        raise ValueError(
            f"{source} is not a Keras 3 .keras archive (a zip holding config.json): {error}."
        ) from None


def load_keras_file(local_path: str, source: str) -> Any:
    """Load a local .keras file with Keras 3 (safe_mode=True, uncompiled) after checking its layers."""
    check_architecture(config_records(archive_config(local_path, source)))
    import keras

    return keras.saving.load_model(local_path, compile=False, safe_mode=True)


VARIABLES = {
    "Embedding": ("embeddings",),
    "LSTM": ("kernel", "recurrent_kernel", "bias"),
    "GRU": ("kernel", "recurrent_kernel", "bias"),
    "Dense": ("kernel", "bias"),
}
"""The names of each layer's variables, in the order Keras 3 saves them (a bias may be absent)."""


def snake_case(name: str) -> str:
    """A class name as Keras 3 names its state: Bidirectional -> bidirectional, LSTM -> lstm."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", name))
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def state_names(records: Sequence[LayerRecord]) -> list[str]:
    """The group of each layer's state under layers/: its class in snake case, _1, _2, ... for repeats."""
    seen: Counter[str] = Counter()
    names = []
    for record in records:
        name = snake_case(record.class_name)
        names.append(name if not seen[name] else f"{name}_{seen[name]}")
        seen[name] += 1
    return names


def cell_variables(group: h5py.Group, kind: str) -> tuple[tuple[str, Any], ...]:
    """(name, array) of the variables under group/vars, named as VARIABLES[kind] says."""
    found = group.get("vars", {})
    return tuple((name, found[str(n)][()]) for n, name in enumerate(VARIABLES[kind]) if str(n) in found)


def layer_variables(layers: h5py.Group, record: LayerRecord, name: str) -> tuple[tuple[str, Any], ...]:
    """A layer's (name, array) pairs as parts_from_records takes them (Bidirectional: forward, then
    backward)."""
    if record.class_name not in VARIABLES and record.class_name != "Bidirectional":
        return ()
    group = layers[name]
    if record.class_name == "Bidirectional":
        kind = record.config["layer"]["class_name"]
        halves = (group[half]["cell"] for half in ("forward_layer", "backward_layer"))
        return tuple(pair for half in halves for pair in cell_variables(half, kind))
    if record.class_name in ("LSTM", "GRU"):
        return cell_variables(group["cell"], record.class_name)
    return cell_variables(group, record.class_name)


def parts_from_archive(
    local_path: str, records: Sequence[LayerRecord], source: str, tokens: Sequence[str] | None
) -> ModelParts | None:
    """Read a Keras 3 archive whose config.json layers are `records`, already checked, with h5py alone;
    None when Keras must read it (see above)."""
    with zipfile.ZipFile(local_path) as archive:
        names = archive.namelist()
        metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
        known = str(metadata.get("keras_version", "")).startswith("3.") and "model.weights.h5" in names
        if not known or any(r.class_name == "TextVectorization" for r in records):
            return None
        with archive.open("model.weights.h5") as raw, h5py.File(raw, "r") as weights:
            layers = weights["layers"]
            records = [
                replace(r, weights=layer_variables(layers, r, name))
                for r, name in zip(records, state_names(records), strict=True)
            ]
    return parts_from_records(records, keras2=False, tokens=tokens, source=source)


def parts_from_keras_file(path_or_url: str, tokens: Sequence[str] | None = None) -> ModelParts:
    """Read a Keras 3 .keras file (local path or fsspec URL) into ModelParts."""
    with local_file(path_or_url) as local:
        records = config_records(archive_config(local, path_or_url))
        check_architecture(records)
        parts = parts_from_archive(local, records, path_or_url, tokens)
        if parts is not None:
            return parts
        model = load_keras_file(local, path_or_url)
    return parts_from_keras_model(model, tokens, source=path_or_url)
