"""Beam transforms over the `lrp` engine, one per pipeline stage; compose them in your own pipelines.

The names below are imported on first use, so that settings modules (transforms.steps, transforms.read,
transforms.tokenize, transforms.bucket) can be imported without starting TensorFlow.
"""

from lrp.lazy import lazy_exports

_HOMES = {
    "BucketByLength": "transforms.bucket",
    "CheckConservation": "transforms.check",
    "Embed": "transforms.embed",
    "ExplainBatches": "transforms.explain",
    "ExplainSettings": "transforms.explain",
    "ExplainedBatch": "transforms.tables",
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

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
