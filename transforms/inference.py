"""LRPModelHandler: LRP relevances through Beam's RunInference, for users who already build pipelines on
`apache_beam.ml.inference`.

    reviews | RunInference(LRPModelHandler(ModelSpec("model.keras", vocab="vocab.txt")))

Each example is one review as a list of tokens (already tokenised, as the Tokenize stage does). Before
batching, the handler's preprocessing applies the pipeline's own Embed rule (transforms.steps: the model's
masking, the OOV policy): a review the pipeline would dead-letter raises ValueError with the reason, which
`RunInference(...).with_exception_handling()` sends, with the example, to its `failed_preprocessing` output;
so does postprocessing, to `failed_postprocessing`, for an explanation that is not finite (as ExplainBatches
dead-letters it).
Each result is a PredictionResult whose `inference` is a dict: tokens and positions of the steps explained
(masked and skipped tokens left out; position = index in the example), relevance (per step, numpy (L,)),
logits (C,), target, rest and residual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from transforms.explain import NOT_FINITE, padded_ids
from transforms.model import LoadedModel, ModelSpec, SharedModel
from transforms.steps import OOV_POLICIES, model_steps


class LRPModelHandler(ModelHandler[Sequence[str], PredictionResult, LoadedModel]):
    """RunInference model handler: token lists -> LRP explanations of the target class (default: the
    predicted one) with LRP-epsilon (eps, bias_factor) as in ExplainBatches; unknown tokens under the OOV
    policy `oov` as in the pipeline's Embed stage."""

    def __init__(
        self,
        spec: ModelSpec,
        eps: float = 1e-3,
        bias_factor: float = 0.0,
        target: int | None = None,
        max_batch_size: int = 256,
        oov: str = "zero",
    ) -> None:
        super().__init__()
        if oov not in OOV_POLICIES:
            raise ValueError(f"Unknown OOV policy {oov!r}; use one of {', '.join(OOV_POLICIES)}.")
        self.spec, self.eps, self.bias_factor, self.target = spec, eps, bias_factor, target
        self.max_batch_size, self.oov = max_batch_size, oov
        self.model = SharedModel(spec)  # one load per worker process, for preprocessing and inference

    def load_model(self) -> LoadedModel:
        return self.model.get()

    def batch_elements_kwargs(self) -> dict[str, Any]:
        return {"max_batch_size": self.max_batch_size}

    def get_preprocess_fns(self) -> Iterable[Callable[[Any], Any]]:
        return [self.steps]

    def steps(self, tokens: Sequence[str]) -> dict:
        """An example as the steps the model computes; ValueError (the dead-letter reason) for one the
        pipeline would dead-letter."""
        steps = model_steps(tokens, self.model.get().rule(self.oov))
        if steps.reason is not None:
            raise ValueError(f"Review {list(tokens)[:20]!r}: {steps.reason}.")
        return {"example": list(tokens), "ids": steps.ids, "positions": steps.positions}

    def get_postprocess_fns(self) -> Iterable[Callable[[Any], Any]]:
        return [self.finite]

    def finite(self, result: PredictionResult) -> PredictionResult:
        """The result; ValueError (the dead-letter reason) for one whose numbers are not all finite."""
        inference = result.inference
        if not (np.isfinite(inference["logits"]).all() and np.isfinite(inference["relevance"]).all()):
            raise ValueError(f"Review {list(result.example)[:20]!r}: {NOT_FINITE}.")
        return result

    def run_inference(
        self, batch: Sequence[dict], model: LoadedModel, inference_args: dict | None = None
    ) -> Iterable[PredictionResult]:
        ids, lengths = padded_ids(batch, model.zero_id)
        result = model.explainer.explain(model.table[ids], lengths, self.target, self.eps, self.bias_factor)
        for row, record in enumerate(batch):
            inference = {
                "tokens": [record["example"][p] for p in record["positions"]],
                "positions": record["positions"],
                "relevance": result.token_relevance[row, : lengths[row]],
                "logits": result.logits[row],
                "target": int(result.target[row]),
                "rest": float(result.rest[row]),
                "residual": float(result.residual[row]),
            }
            yield PredictionResult(record["example"], inference, self.spec.model)
