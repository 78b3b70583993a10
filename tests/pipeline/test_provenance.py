"""Provenance: every Parquet file of a run carries the same JSON record under the key `lstm_lrp`, and
summary.json has its fields; files are identified by SHA-256."""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa

from pipeline import __version__
from pipeline.provenance import FIELDS, KEY, build_provenance, differences, read_provenance, sha256


def test_every_output_file_and_the_summary_carry_the_run_provenance(direct_run, tiny_model):
    records = [read_provenance(schema) for schemas in direct_run.schemas.values() for schema in schemas]
    assert len(records) >= 3 and all(r == records[0] for r in records)
    record = records[0]
    assert set(record) == set(FIELDS)
    assert {k: direct_run.summary[k] for k in FIELDS} == record
    assert record["tool_version"] == __version__ and len(record["run_id"]) == 12
    with open(tiny_model.model, "rb") as f:
        assert record["model"] == {"path": tiny_model.model, "sha256": hashlib.sha256(f.read()).hexdigest()}
    assert record["vocab"]["path"] == tiny_model.vocab and record["embeddings"] is None
    assert record["class_names"] == ["class 0", "class 1", "class 2"]
    assert record["settings"]["eps"] == 1e-3 and record["settings"]["model"] == tiny_model.model
    assert record["started_at"].endswith("+00:00")


def test_directories_hash_their_files_by_name(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "model").write_bytes(b"weights")
    (tmp_path / "a" / "vocab").write_bytes(b"words")
    first = sha256(str(tmp_path / "a"))
    (tmp_path / "a" / "vocab").write_bytes(b"other words")
    assert len(first) == 64 and sha256(str(tmp_path / "a")) != first


def test_records_round_trip_through_schema_metadata_and_tell_their_differences(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"model")
    settings = {"model": str(tmp_path / "m.keras"), "input": ("x.jsonl",), "eps": 1e-3}
    record = build_provenance(settings, ["neg", "pos"])
    schema = pa.schema([("a", pa.int32())]).with_metadata({KEY: json.dumps(record)})
    assert read_provenance(schema) == record and read_provenance(pa.schema([])) is None
    assert differences(record, record) == []
    other = build_provenance({**settings, "eps": 0.01}, ["neg", "pos"])
    assert differences(record, other) == ["eps"] and other["run_id"] != record["run_id"]
