"""LSTMExplainer: batched, masked LRP for the supported recurrent classifier family, LSTM and GRU layers
(Arras et al. 2017)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from lrp import gru, lstm
from lrp.baselines import attribution_rule, chosen_classes, class_gradient, target_gradient
from lrp.choices import DTYPES
from lrp.recurrent import final_state_injection, to_processing_order
from lrp.rules import absorbed_relevance, epsilon_rule
from lrp.weights import DenseWeights, LSTMLayer, ModelParts, validate_stack

LAYER_ENGINES = {"lstm": lstm, "gru": gru}
"""The module that runs each kind of layer: LayerTensors.from_layer, layer_forward, layer_relevance."""


@dataclass(frozen=True)
class Explanation:
    """LRP relevances for a batch, with the books that balance them (Arras et al. 2017; lrp.rules):

        target_score = sum of relevance + rest + absorbed

    relevance: (B, T, E), zero on padding; logits: (B, C); target, lengths: (B,); rest: (B,) relevance left
    on the initial states; absorbed: (B,) relevance the epsilon rule leaves on biases and stabilisers
    (zero with bias_factor = 1, up to zero denominators); gradient: (B, T, E), d target_score / d x (zero on
    padding), when asked for (the gradient baselines, lrp.baselines), else None.
    """

    relevance: np.ndarray
    logits: np.ndarray
    target: np.ndarray
    rest: np.ndarray
    absorbed: np.ndarray
    lengths: np.ndarray
    gradient: np.ndarray | None = None

    def __repr__(self) -> str:
        b, t, e = self.relevance.shape
        return (
            f"Explanation({b} reviews, up to {t} steps of {e} features, {self.logits.shape[1]} classes; "
            f"targets {np.array2string(self.target, threshold=8)}, lengths "
            f"{np.array2string(self.lengths, threshold=8)})"
        )

    @functools.cached_property
    def token_relevance(self) -> np.ndarray:
        """(B, T): relevance summed over the embedding dimension, in the engine's dtype."""
        return self.relevance.sum(axis=-1)

    @functools.cached_property
    def relevance_sum(self) -> np.ndarray:
        """(B,) float64: the sum of token_relevance as it is (the values the pipeline writes)."""
        return self.token_relevance.astype(np.float64).sum(axis=1)

    @property
    def target_score(self) -> np.ndarray:
        """(B,): the explained logit, the relevance the backward pass starts from."""
        return self.logits[np.arange(len(self.target)), self.target]

    @property
    def residual(self) -> np.ndarray:
        """(B,) float64: target_score - (relevance_sum + rest + absorbed); zero up to rounding."""
        booked = self.relevance_sum + self.rest.astype(np.float64) + self.absorbed.astype(np.float64)
        return self.target_score.astype(np.float64) - booked


def set_engine_threads(intra_op: int) -> bool:
    """Use `intra_op` threads inside each TensorFlow operation. The engine's per-step operations are too
    small to split well, so with several cores one thread per operation and several concurrent streams
    (explain(streams=...), or one worker per core) is fastest. Must run before TensorFlow starts its
    runtime; returns False (and changes nothing) when it already has."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    except RuntimeError:
        return False
    return True


def with_embeddings(parts: ModelParts, path: str, vocab_path: str | None) -> ModelParts:
    """parts with the token -> vector table at path as its embedding (V + 1, E): rows of the V tokens, then
    zeros, the row of unknown tokens (oov_id = V)."""
    from lrp.importers import check_embedding_dim, load_embeddings
    from lrp.importers.embeddings import with_zero_row

    tokens, vectors = load_embeddings(path, vocab=vocab_path)
    check_embedding_dim(vectors, parts.layers[0].forward.input_dim, path)
    return dataclasses.replace(
        parts, embedding=with_zero_row(vectors), tokens=tuple(tokens), oov_id=len(tokens)
    )


class LSTMExplainer:
    """Explains a stack of LSTM and GRU layers + Dense classifier with LRP-epsilon and the signal-take-all
    rule.

    layers: the recurrent layers, input side first; dense: the classifier head (its activation is not applied:
    logits are explained). embedding (V, E) and tokens (the token of each id; `token_ids` maps them back)
    are set for models that embed their own token ids; oov_id is the id of their token for unknown words,
    None (the default) when they have none. mask_zero (the Embedding skips id 0) and mask_value (that of
    the model's Keras Masking layer, if any): see ModelParts; the engine masks by `lengths` only, so leave
    masked steps out of x (transforms.steps does).
    """

    def __init__(
        self,
        layers: Sequence[LSTMLayer],
        dense: DenseWeights,
        dtype: str = "float32",
        *,
        embedding: np.ndarray | None = None,
        tokens: Sequence[str] | None = None,
        oov_id: int | None = None,
        mask_zero: bool = False,
        mask_value: float | None = None,
    ) -> None:
        if str(dtype) not in DTYPES:
            raise ValueError(f"dtype {dtype!r} is not supported; use one of {', '.join(DTYPES)}.")
        self.input_dim = validate_stack(layers, dense)
        self.dtype = tf.as_dtype(str(dtype))
        self.layers = tuple(layers)
        self.classes = dense.classes
        self.embedding = None if embedding is None else np.asarray(embedding, dtype=self.dtype.as_numpy_dtype)
        if self.embedding is not None and self.embedding.shape[1] != self.input_dim:
            raise ValueError(
                f"The embedding matrix has {self.embedding.shape[1]} dimensions but the first recurrent "
                f"layer expects {self.input_dim}."
            )
        self.token_ids = None if tokens is None else {token: i for i, token in enumerate(tokens)}
        self.oov_id, self.mask_zero, self.mask_value = oov_id, mask_zero, mask_value
        self._engines = [LAYER_ENGINES[layer.kind] for layer in self.layers]
        self._tensors = [e.LayerTensors.from_layer(lr, self.dtype) for e, lr in zip(self._engines, layers)]
        self._dense_kernel = tf.constant(dense.kernel, dtype=self.dtype)
        bias = np.zeros(self.classes) if dense.bias is None else dense.bias
        self._dense_bias = tf.constant(bias, dtype=self.dtype)
        x_spec = tf.TensorSpec([None, None, self.input_dim], self.dtype)
        int_spec = tf.TensorSpec([None], tf.int32)
        self._inputs_signature = [x_spec, int_spec]
        self._explain_graphs: dict[tuple[float, float, int, bool], Callable] = {}
        self._threads: concurrent.futures.ThreadPoolExecutor | None = None
        self._thread_count = 0
        self._lock = threading.Lock()
        self._predict_graph = tf.function(self._logits, input_signature=[x_spec, int_spec], autograph=False)
        self._gradient_graph = tf.function(
            lambda x, lengths, target: target_gradient(self._logits, x, lengths, target),
            input_signature=[x_spec, int_spec, int_spec],
            autograph=False,
        )

    def __repr__(self) -> str:
        layers = " -> ".join(
            ("Bidirectional " if layer.backward is not None else "")
            + f"{layer.kind.upper()}({layer.forward.units})"
            for layer in self.layers
        )
        vocabulary = "" if self.token_ids is None else f", vocabulary of {len(self.token_ids):,} tokens"
        return (
            f"LSTMExplainer({self.input_dim} features -> {layers} -> Dense({self.classes}){vocabulary}, "
            f"{self.dtype.name})"
        )

    @classmethod
    def from_parts(cls, parts: ModelParts, dtype: str = "float32") -> LSTMExplainer:
        """Build from what an importer recovered (see lrp.importers)."""
        return cls(
            parts.layers,
            parts.dense,
            dtype,
            embedding=parts.embedding,
            tokens=parts.tokens,
            oov_id=parts.oov_id,
            mask_zero=parts.mask_zero,
            mask_value=parts.mask_value,
        )

    @classmethod
    def from_keras(cls, model, dtype: str = "float32") -> LSTMExplainer:
        """Build from an in-memory Keras 3 model of the supported family."""
        from lrp.importers import parts_from_keras_model

        return cls.from_parts(parts_from_keras_model(model), dtype)

    @classmethod
    def from_file(
        cls,
        path_or_url: str,
        dtype: str = "float32",
        vocab: str | None = None,
        verify: bool = False,
        embeddings: str | None = None,
    ) -> LSTMExplainer:
        """Load a .keras file, a Keras 2 HDF5 file, PyTorch weights (.safetensors, .pt, .pth, or a .yaml/.json
        model spec naming them; see lrp.importers.torch_state) or an ArrasL directory (local path or URL).

        vocab: a vocabulary file for a model whose Embedding layer's vocabulary the file does not carry
        (with embeddings: the tokens of a .npy table). verify: check that predict() equals the source
        model's own logits on a random batch. embeddings: a token -> vector table (any format of
        lrp.importers.load_embeddings) for a model without an Embedding layer; it becomes `embedding`
        (V + 1, E) and `token_ids`, and the extra last row, zeros, is `oov_id`: unknown tokens get a zero
        vector, as in the pipeline.
        """
        from lrp.importers import load_model_parts, verify_parts

        parts = load_model_parts(path_or_url, vocab=None if embeddings else vocab)
        if embeddings is not None:
            parts = with_embeddings(parts, embeddings, vocab)
        explainer = cls.from_parts(parts, dtype)
        if verify:
            verify_parts(parts, path_or_url, explainer)
        return explainer

    def explain(
        self,
        x: np.ndarray,
        lengths: np.ndarray | None = None,
        target: int | np.ndarray | None = None,
        eps: float = 1e-3,
        bias_factor: float = 0.0,
        streams: int = 1,
        gradient: bool = False,
    ) -> Explanation:
        """LRP relevances of x (B, T, E), right-padded to the (B,) lengths, for the target class
        (argmax of the logits by default; an int or a (B,) array).

        gradient: also return d target_score / d x (for the gradient baselines), from the same forward pass.
        streams > 1 explains interleaved parts of the batch concurrently, one per thread (TensorFlow runs
        them in parallel; best with one intra-op thread each, see set_engine_threads). Results are the same.
        """
        return self.explain_targets(x, lengths, [target], eps, bias_factor, streams, gradient)[0]

    def explain_targets(
        self,
        x: np.ndarray,
        lengths: np.ndarray | None = None,
        targets: Sequence[int | np.ndarray | None] = (None,),
        eps: float = 1e-3,
        bias_factor: float = 0.0,
        streams: int = 1,
        gradient: bool = False,
    ) -> list[Explanation]:
        """One Explanation per entry of targets (each as explain()'s target), from one forward pass and one
        relevance pass per target: explain_targets(x, lengths, range(explainer.classes)) explains every
        class."""
        x, lengths = self._check_inputs(x, lengths)
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}.")
        if not len(targets):
            raise ValueError("targets must name at least one target.")
        chosen = np.stack([self._check_target(target, len(x)) for target in targets])  # (K, B)
        graph = self._explain_graph(float(eps), float(bias_factor), len(chosen), gradient)
        parts = [np.arange(k, len(x), streams) for k in range(min(streams, len(x)))]
        if len(parts) <= 1:
            out = {name: t.numpy() for name, t in graph(x, lengths, chosen).items()}
        else:

            def explain_part(rows: np.ndarray) -> dict[str, np.ndarray]:
                steps = max(1, int(lengths[rows].max()))
                return {
                    name: t.numpy()
                    for name, t in graph(x[rows, :steps], lengths[rows], chosen[:, rows]).items()
                }

            outputs = list(self._pool(len(parts)).map(explain_part, parts))
            order = np.argsort(np.concatenate(parts))
            out = {name: merge_rows([o[name] for o in outputs], order, x.shape[1]) for name in outputs[0]}
        return [
            Explanation(
                relevance=out["relevance"][k],
                logits=out["logits"][0],
                target=out["target"][k],
                rest=out["rest"][k],
                absorbed=out["absorbed"][k],
                lengths=lengths,
                gradient=out["gradient"][k] if gradient else None,
            )
            for k in range(len(chosen))
        ]

    def attribute(
        self,
        x: np.ndarray,
        lengths: np.ndarray | None = None,
        target: int | np.ndarray | None = None,
        method: str = "gi",
    ) -> np.ndarray:
        """Gradient baseline relevance (B, T, E) of x for the target class, zero on padding: Gradient × Input
        ("gi") or Sensitivity Analysis ("sa"), see lrp.baselines."""
        rule = attribution_rule(method)
        x, lengths = self._check_inputs(x, lengths)
        gradient = self._gradient_graph(x, lengths, self._check_target(target, len(x))).numpy()
        return rule(x, gradient)

    def predict(self, x: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """Pre-activation logits (B, C) of x (B, T, E) right-padded to the (B,) lengths."""
        x, lengths = self._check_inputs(x, lengths)
        return self._predict_graph(x, lengths).numpy()

    def embed(self, token_ids: np.ndarray) -> np.ndarray:
        """Token ids (B, T) -> vectors (B, T, E) through the model's own Embedding layer."""
        if self.embedding is None:
            raise ValueError(
                "This model has no Embedding layer; pass vectors to explain() instead of token ids."
            )
        ids = np.asarray(token_ids)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.embedding)):
            raise ValueError(
                f"Token ids must lie in [0, {len(self.embedding)}); got {ids.min()}..{ids.max()}."
            )
        return self.embedding[ids]

    def _pool(self, streams: int) -> concurrent.futures.ThreadPoolExecutor:
        """A pool of at least `streams` threads, kept for later calls from any thread (Beam shares one
        explainer among a worker's threads)."""
        with self._lock:
            if self._thread_count < streams:
                previous = self._threads
                self._threads = concurrent.futures.ThreadPoolExecutor(
                    streams, thread_name_prefix="lrp-engine"
                )
                self._thread_count = streams
                if previous is not None:
                    previous.shutdown(wait=False)  # calls already queued there still finish
            return self._threads

    def _explain_graph(self, eps: float, bias_factor: float, targets: int, gradient: bool) -> Callable:
        """The traced explain graph for these rule parameters, number of targets and gradient flag (traced
        once per combination, then reused for any batch shape)."""
        key = (eps, bias_factor, targets, gradient)
        with self._lock:
            if key not in self._explain_graphs:
                body = functools.partial(self._relevance, eps=eps, bias_factor=bias_factor, gradient=gradient)
                signature = [*self._inputs_signature, tf.TensorSpec([targets, None], tf.int32)]
                self._explain_graphs[key] = tf.function(body, input_signature=signature, autograph=False)
        return self._explain_graphs[key]

    def _check_inputs(self, x: np.ndarray, lengths: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=self.dtype.as_numpy_dtype)
        if x.ndim != 3 or x.shape[2] != self.input_dim or x.shape[1] == 0:
            raise ValueError(f"x must have shape (batch, time >= 1, {self.input_dim}); got {x.shape}.")
        if lengths is None:
            return x, np.full(len(x), x.shape[1], dtype=np.int32)
        lengths = np.asarray(lengths, dtype=np.int32)
        if lengths.shape != (len(x),) or lengths.min(initial=0) < 0 or lengths.max(initial=0) > x.shape[1]:
            raise ValueError(f"lengths must be {len(x)} values in [0, {x.shape[1]}]; got {lengths}.")
        return x, lengths

    def _check_target(self, target: int | np.ndarray | None, batch: int) -> np.ndarray:
        """(B,) int32 class indices; -1 asks for the argmax."""
        if target is None:
            return np.full(batch, -1, dtype=np.int32)
        targets = np.asarray(target)
        if not np.issubdtype(targets.dtype, np.integer) or targets.shape not in ((), (batch,)):
            raise ValueError(f"target must be an integer class or {batch} of them; got {target!r}.")
        targets = np.broadcast_to(targets, (batch,))
        if targets.size and (targets.min() < 0 or targets.max() >= self.classes):
            raise ValueError(f"target must be a class in [0, {self.classes}); got {target}.")
        return targets.astype(np.int32)

    def _forward(
        self, x: tf.Tensor, lengths: tf.Tensor, keep_trace: bool
    ) -> tuple[tf.Tensor, tf.Tensor, list]:
        """Logits (B, C), the last layer's final states (B, K*H) and the per-layer traces."""
        mask = tf.sequence_mask(lengths, tf.shape(x)[1])
        traces, seq = [], x
        for engine, w in zip(self._engines, self._tensors):
            seq, final, trace = engine.layer_forward(w, seq, mask, keep_trace)
            traces.append(trace)
        return tf.matmul(final, self._dense_kernel) + self._dense_bias, final, traces

    def _logits(self, x: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        return self._forward(x, lengths, keep_trace=False)[0]

    def _relevance(self, x, lengths, targets, eps: float, bias_factor: float, gradient: bool) -> dict:
        """Graph body of explain_targets(): one forward pass, then per target (row of targets (K, B)) one
        relevance pass. Returns logits (1, B, C) and, stacked over the K targets, relevance (K, B, T, E),
        target, rest and absorbed (K, B) and, with gradient, d target_score / d x (K, B, T, E)."""
        tape = tf.GradientTape(persistent=True, watch_accessed_variables=False)
        with tape if gradient else contextlib.nullcontext():  # recording costs tracing time: only if asked
            if gradient:
                tape.watch(x)
            logits, final, traces = self._forward(x, lengths, keep_trace=True)
        out: dict[str, list] = {"relevance": [], "target": [], "rest": [], "absorbed": [], "gradient": []}
        for row in tf.unstack(targets, num=targets.shape[0]):
            target = chosen_classes(logits, row)
            start = tf.one_hot(target, self.classes, dtype=self.dtype) * logits
            on_final = epsilon_rule(
                final, self._dense_kernel, self._dense_bias, logits, start, eps, bias_factor
            )
            absorbed = absorbed_relevance(logits, self._dense_bias, start, eps, bias_factor)
            injected = final_state_injection(on_final, tf.shape(x)[1], self._tensors[-1].directions)
            rest = tf.zeros_like(absorbed)
            for n in range(len(self._tensors) - 1, -1, -1):
                on_inputs, on_initial, absorbed_here = self._engines[n].layer_relevance(
                    self._tensors[n], traces[n], injected, eps, bias_factor
                )
                rest, absorbed = rest + on_initial, absorbed + absorbed_here
                if n:
                    injected = to_processing_order(on_inputs, self._tensors[n - 1].directions, split=True)
            for name, value in (
                ("relevance", on_inputs),
                ("target", target),
                ("rest", rest),
                ("absorbed", absorbed),
            ):
                out[name].append(value)
            if gradient:
                out["gradient"].append(class_gradient(tape, logits, x, lengths, target))
        stacked = {name: stack(values) for name, values in out.items() if values}
        return {"logits": logits[None], **stacked}


def stack(values: list[tf.Tensor]) -> tf.Tensor:
    """tf.stack, without copying a single tensor."""
    return values[0][None] if len(values) == 1 else tf.stack(values)


def merge_rows(parts: Sequence[np.ndarray], order: np.ndarray, steps: int) -> np.ndarray:
    """Outputs of explain graphs for parts of a batch, (K, b, ...) each, -> (K, B, ...) in the batch's row
    order; per-step outputs (K, b, t, E) are padded to `steps` first."""
    padded = [
        np.pad(p, [(0, 0), (0, 0), (0, steps - p.shape[2]), (0, 0)]) if p.ndim == 4 else p for p in parts
    ]
    return np.concatenate(padded, axis=1)[:, order]
