"""Importers: model files (Keras 3 .keras, Keras 2 / tf-keras HDF5, PyTorch .safetensors / torch.save state
dicts, ArrasL directories) -> ModelParts, and word vectors, vocabularies and pickles read safely. Paths may be
local or fsspec URLs."""

from lrp.importers.embeddings import check_embedding_dim, load_embeddings
from lrp.importers.keras_model import parts_from_keras_model
from lrp.importers.models import load_model_parts, source_model_predict, verify_parts
from lrp.importers.safe_pickle import UnsafePickleError, safe_load_pickle
from lrp.importers.torch_state import parts_from_state_dict
from lrp.importers.vocab import load_vocab

__all__ = [
    "UnsafePickleError",
    "check_embedding_dim",
    "load_embeddings",
    "load_model_parts",
    "load_vocab",
    "parts_from_keras_model",
    "parts_from_state_dict",
    "safe_load_pickle",
    "source_model_predict",
    "verify_parts",
]
