"""The model a worker explains with, loaded once per worker process through a Beam shared handle."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from apache_beam.utils import shared

from transforms.steps import StepRule

if TYPE_CHECKING:
    from lrp import LSTMExplainer, ModelParts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """Where the model and its token vectors come from (paths or fsspec URLs).

    Models with an Embedding layer use their own vectors (vocab names the vocabulary file when the model
    file does not carry one); models without one need `embeddings`, a token -> vector table.
    """

    model: str
    embeddings: str | None = None
    vocab: str | None = None
    dtype: str = "float32"

    def parts(self) -> tuple[ModelParts, tuple[list[str], np.ndarray] | None]:
        """(the model's parts, the embeddings' (tokens, vectors) or None), checked as load() needs them,
        without TensorFlow (a driver that does not explain checks the files with this); ValueError names
        the file at fault."""
        from lrp.importers import check_embedding_dim, load_embeddings, load_model_parts
        from lrp.weights import validate_stack

        model_vocab = self.vocab if self.embeddings is None else None  # else it names the vectors' tokens
        parts = load_model_parts(self.model, vocab=model_vocab)
        input_dim = validate_stack(parts.layers, parts.dense)
        if self.embeddings is None:
            if parts.embedding is None or parts.vocab is None:
                raise ValueError(
                    f"Model {self.model!r} has no Embedding layer with a known vocabulary; pass --embeddings "
                    "(a token -> vector table) or --vocab (the vocabulary of its Embedding layer)."
                )
            check_embedding_dim(parts.embedding, input_dim, self.model)
            return parts, None
        tokens, vectors = load_embeddings(self.embeddings, vocab=self.vocab)
        check_embedding_dim(vectors, input_dim, self.embeddings)
        return parts, (tokens, vectors)

    def load(self) -> LoadedModel:
        from lrp import LSTMExplainer

        parts, embeddings = self.parts()
        explainer = LSTMExplainer.from_parts(parts, self.dtype)
        if embeddings is None:
            vocab, vectors, oov_id = explainer.vocab, explainer.embedding, explainer.oov_id
            return LoadedModel(explainer, vocab, vectors, oov_id, explainer.mask_zero)
        if explainer.embedding is not None:
            log.warning(
                "%s has its own Embedding layer; the vectors of %s replace it.", self.model, self.embeddings
            )
        tokens, vectors = embeddings
        return LoadedModel(explainer, {t: i for i, t in enumerate(tokens)}, vectors, None, mask_zero=False)


@dataclass(eq=False)
class LoadedModel:
    """An explainer with its token index and vector table (V + 1, E); the extra last row is zeros and
    stands for padding and, without an OOV id of the model's own, for unknown tokens.

    mask_zero: the vectors are the model's own Embedding, which masks id 0. masked: the table rows whose
    steps the model skips (see transforms.steps).
    """

    explainer: LSTMExplainer
    token_ids: dict[str, int] = field(repr=False)
    vectors: np.ndarray = field(repr=False)
    oov_id: int | None
    mask_zero: bool = False
    table: np.ndarray = field(init=False, repr=False)
    masked: frozenset[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        zeros = np.zeros((1, self.vectors.shape[1]), dtype=self.explainer.dtype.as_numpy_dtype)
        self.table = np.concatenate([np.asarray(self.vectors, dtype=zeros.dtype), zeros])
        value = self.explainer.mask_value
        if value is not None:  # a Masking layer's mask replaces the Embedding's
            self.masked = frozenset(np.flatnonzero((self.table == value).all(axis=1)).tolist())
        else:
            self.masked = frozenset({0} if self.mask_zero else ())

    def rule(self, oov: str = "zero") -> StepRule:
        """The steps rule of this model under the OOV policy `oov` (see transforms.steps)."""
        return StepRule(self.token_ids, self.unknown_id, self.masked, oov)

    @property
    def zero_id(self) -> int:
        return len(self.table) - 1

    @property
    def unknown_id(self) -> int:
        return self.zero_id if self.oov_id is None else self.oov_id


class SharedModel:
    """Pickles as its spec; `get()` loads the model at most once per worker process and spec."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._handle = shared.Shared()

    def get(self) -> LoadedModel:
        """The loaded model. Before the first load in a process, TensorFlow's intra-op threads are set to
        one: a worker's cores serve best as concurrent engine calls (ExplainSettings.streams)."""
        from lrp.explainer import set_engine_threads

        set_engine_threads(1)
        return self._handle.acquire(self.spec.load, tag=repr(self.spec))
