"""LRPModelHandler: LRP relevances through Beam's RunInference, for users who already build pipelines on
`apache_beam.ml.inference`.

    reviews | RunInference(LRPModelHandler(ModelSpec("model.keras", vocab="vocab.txt")))

Each example is one review as a list of tokens (already tokenised, as the Tokenize stage does); each result
is a PredictionResult whose `inference` is a dict: tokens, relevance (per token, numpy (L,)), logits (C,),
target, rest, absorbed and residual (lrp.Explanation: target logit = Σ relevance + rest + absorbed +
residual, the residual zero up to rounding). Unknown tokens get the model's OOV id, or a zero vector when
it has none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from transforms.explain import padded_ids
from transforms.model import LoadedModel, ModelSpec


class LRPModelHandler(ModelHandler[Sequence[str], PredictionResult, LoadedModel]):
    """RunInference model handler: token lists -> LRP explanations of the target class (default: the
    predicted one) with LRP-epsilon (eps, bias_factor) as in ExplainBatches."""

    def __init__(
        self,
        spec: ModelSpec,
        eps: float = 1e-3,
        bias_factor: float = 0.0,
        target: int | None = None,
        max_batch_size: int = 256,
    ) -> None:
        super().__init__()
        self.spec, self.eps, self.bias_factor, self.target = spec, eps, bias_factor, target
        self.max_batch_size = max_batch_size

    def load_model(self) -> LoadedModel:
        return self.spec.load()

    def batch_elements_kwargs(self) -> dict[str, Any]:
        return {"max_batch_size": self.max_batch_size}

    def run_inference(
        self, batch: Sequence[Sequence[str]], model: LoadedModel, inference_args: dict | None = None
    ) -> Iterable[PredictionResult]:
        if any(len(tokens) == 0 for tokens in batch):
            raise ValueError(
                "LRPModelHandler examples must be non-empty token lists; drop empty reviews first."
            )
        records = [
            {"ids": np.array([model.token_ids.get(t, model.unknown_id) for t in r], np.int32)} for r in batch
        ]
        ids, lengths = padded_ids(records, model.zero_id)
        result = model.explainer.explain(model.table[ids], lengths, self.target, self.eps, self.bias_factor)
        for row, tokens in enumerate(batch):
            inference = {
                "tokens": list(tokens),
                "relevance": result.token_relevance[row, : lengths[row]],
                "logits": result.logits[row],
                "target": int(result.target[row]),
                "rest": float(result.rest[row]),
                "absorbed": float(result.absorbed[row]),
                "residual": float(result.residual[row]),
            }
            yield PredictionResult(tokens, inference, self.spec.model)
