"""Beam transforms over the `lrp` engine, one per pipeline stage; compose them in your own pipelines.

The names below are imported on first use, so that settings modules (transforms.steps, transforms.read,
transforms.tokenize, transforms.bucket) can be imported without starting TensorFlow.
"""

import importlib

_HOMES = {
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
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'transforms' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
