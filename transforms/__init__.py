"""Beam transforms over the `lrp` engine, one per pipeline stage; compose them in your own pipelines.

The names below are imported on first use (the engine, and with it TensorFlow, only when a stage needs it).
"""

import importlib

EXPORTS = {
    "BucketByLength": "transforms.bucket",
    "CheckConservation": "transforms.check",
    "Embed": "transforms.embed",
    "ExplainBatches": "transforms.explain",
    "ExplainSettings": "transforms.explain",
    "ExplainedBatch": "transforms.batch",
    "Fields": "transforms.read",
    "LRPModelHandler": "transforms.inference",
    "LoadedModel": "transforms.model",
    "ModelSpec": "transforms.model",
    "ReadCorpus": "transforms.read",
    "SharedModel": "transforms.model",
    "Tokenize": "transforms.tokenize",
    "TokenizerSpec": "transforms.tokenize",
    "WriteResults": "transforms.write",
}
__all__ = sorted(EXPORTS)


def __getattr__(name: str):
    if name not in EXPORTS:
        raise AttributeError(f"module 'transforms' has no attribute {name!r}")
    return getattr(importlib.import_module(EXPORTS[name]), name)
