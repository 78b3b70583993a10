"""Beam transforms over the `lrp` engine, one per pipeline stage; compose them in your own pipelines."""

from transforms.batch import ExplainedBatch
from transforms.bucket import BucketByLength
from transforms.check import CheckConservation
from transforms.embed import Embed
from transforms.explain import ExplainBatches, ExplainSettings
from transforms.inference import LRPModelHandler
from transforms.model import LoadedModel, ModelSpec, SharedModel
from transforms.read import Fields, ReadCorpus
from transforms.tokenize import Tokenize, TokenizerSpec
from transforms.write import WriteResults

__all__ = [
    "BucketByLength",
    "CheckConservation",
    "Embed",
    "ExplainBatches",
    "ExplainSettings",
    "ExplainedBatch",
    "Fields",
    "LRPModelHandler",
    "LoadedModel",
    "ModelSpec",
    "ReadCorpus",
    "SharedModel",
    "Tokenize",
    "TokenizerSpec",
    "WriteResults",
]
