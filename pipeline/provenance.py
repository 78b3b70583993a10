"""Where an output came from: one JSON record, the same in every Parquet file a run writes (key-value
metadata under KEY) and in summary.json. Pure: reads the files it hashes, imports no Beam or TensorFlow."""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence

import pyarrow as pa

from lrp.files import filesystem, url
from pipeline import __version__

KEY = "lstm_lrp"
"""The Parquet key-value metadata key of the provenance record."""

FIELDS = (
    "tool",
    "tool_version",
    "run_id",
    "started_at",
    "model",
    "vocab",
    "embeddings",
    "class_names",
    "settings",
)
"""The provenance record's keys, also written at the top level of summary.json."""

CHUNK = 1 << 20


def new_run_id() -> str:
    """A fresh run id: 12 hex digits."""
    return uuid.uuid4().hex[:12]


def sha256(path: str) -> str:
    """SHA-256 of a file (local path or fsspec URL), read in 1 MiB chunks; of a directory (the reference
    implementation's layout), SHA-256 over the sorted lines "relative name  file hash" of its files."""
    fs, root = filesystem(path)
    if fs.isdir(root):
        files = sorted(p for p in fs.find(root) if not fs.isdir(p))
        lines = "".join(f"{p[len(root.rstrip('/')) + 1 :]}  {sha256(url(fs, p))}\n" for p in files)
        return hashlib.sha256(lines.encode("utf-8")).hexdigest()
    digest = hashlib.sha256()
    with fs.open(root, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path: str | None) -> dict | None:
    """{"path", "sha256"} of an input file, or None when there is none."""
    return None if path is None else {"path": str(path), "sha256": sha256(str(path))}


def build_provenance(
    settings: Mapping[str, object],
    class_names: Sequence[str],
    run_id: str | None = None,
    started_at: datetime.datetime | None = None,
) -> dict:
    """The provenance record of a run with these settings (the model, vocab and embeddings paths are read
    from them and hashed): tool version, run id, start time (UTC, ISO 8601), files and class names."""
    started = started_at or datetime.datetime.now(datetime.timezone.utc)
    plain = {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
    return {
        "tool": "lstm-lrp",
        "tool_version": __version__,
        "run_id": run_id or new_run_id(),
        "started_at": started.isoformat(timespec="seconds"),
        "model": file_record(plain.get("model")),
        "vocab": file_record(plain.get("vocab")),
        "embeddings": file_record(plain.get("embeddings")),
        "class_names": list(class_names),
        "settings": plain,
    }


def parquet_metadata(provenance: Mapping) -> dict[bytes, bytes]:
    """The Parquet key-value metadata that carries a provenance record."""
    return {KEY.encode(): json.dumps(provenance, sort_keys=True).encode("utf-8")}


def with_provenance(schema: pa.Schema, provenance: Mapping | None) -> pa.Schema:
    """schema carrying the provenance record in its metadata (unchanged for None)."""
    return schema if provenance is None else schema.with_metadata(parquet_metadata(provenance))


def read_provenance(schema: pa.Schema) -> dict | None:
    """The provenance record of a Parquet file's Arrow schema, or None when it has none."""
    raw = (schema.metadata or {}).get(KEY.encode())
    return None if raw is None else json.loads(raw)


EXPLAINING = (
    "input",
    "format",
    "text_field",
    "tokenizer",
    "lowercase",
    "oov",
    "max_length",
    "eps",
    "bias_factor",
)
"""Settings that change which tokens are explained, and how."""


def differences(a: Mapping, b: Mapping) -> list[str]:
    """What differs between two provenance records in the model, vocabulary and embedding files (by hash)
    and in the EXPLAINING settings; empty when they explain the same reviews with the same model."""
    files = [
        k
        for k in ("model", "vocab", "embeddings")
        if (a.get(k) or {}).get("sha256") != (b.get(k) or {}).get("sha256")
    ]
    settings_a, settings_b = a.get("settings") or {}, b.get("settings") or {}
    return files + [k for k in EXPLAINING if settings_a.get(k) != settings_b.get(k)]
