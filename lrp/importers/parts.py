"""The last step of every model importer: validate the stack and attach embedding and vocabulary."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lrp.importers.embeddings import check_embedding_dim
from lrp.importers.vocab import oov_id
from lrp.weights import DenseWeights, LSTMLayer, ModelParts, validate_stack


def assemble_parts(
    layers: Sequence[LSTMLayer],
    dense: DenseWeights,
    embedding: np.ndarray | None = None,
    tokens: Sequence[str] | None = None,
    source: str = "the model",
    mask_zero: bool = False,
    mask_value: float | None = None,
) -> ModelParts:
    """ModelParts for a checked stack. embedding: (V, E); tokens: token at index id, at most V tokens.

    oov_id is the id of a conventional OOV token in the vocabulary ("[UNK]", "<unk>", ...), None without one.
    """
    input_dim = validate_stack(layers, dense)
    if embedding is not None:
        check_embedding_dim(embedding, input_dim, source)
    if tokens is not None and embedding is None:
        raise ValueError(
            f"{source} has no Embedding layer, so a vocabulary cannot be attached; give its word vectors "
            "with --embeddings (load_embeddings() in Python) instead."
        )
    if tokens is not None and len(tokens) > len(embedding):
        raise ValueError(
            f"The vocabulary has {len(tokens)} tokens but the Embedding of {source} has only "
            f"{len(embedding)} rows; pass the vocabulary the model was trained with."
        )
    return ModelParts(
        layers=tuple(layers),
        dense=dense,
        embedding=embedding,
        tokens=None if tokens is None else tuple(tokens),
        oov_id=oov_id(tokens),
        mask_zero=mask_zero,
        mask_value=mask_value,
    )
