"""Keras 3 .keras files: the layers in config.json are checked first, then Keras loads the file in safe mode,
so an unsupported layer (a Lambda included) is refused before Keras deserializes anything."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from typing import Any

from lrp.importers.keras_model import check_architecture, config_records, parts_from_keras_model
from lrp.importers.paths import local_file
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


def parts_from_keras_file(path_or_url: str, tokens: Sequence[str] | None = None) -> ModelParts:
    """Read a Keras 3 .keras file (local path or fsspec URL) into ModelParts."""
    with local_file(path_or_url) as local:
        model = load_keras_file(local, path_or_url)
    return parts_from_keras_model(model, tokens, source=path_or_url)
