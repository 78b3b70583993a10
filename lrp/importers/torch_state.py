"""PyTorch text classifiers, nn.Embedding -> nn.LSTM or nn.GRU -> nn.Linear over the final states h_n,
from their weights -> ModelParts. Files: .safetensors, torch.save zip state dicts (.pt, .pth), or a model spec
(.yaml, .yml, .json) that names the weights file and the modules.

The architecture is recovered from parameter names and shapes; module prefixes are found, not fixed:
  recurrent  R.weight_ih_l{k}[_reverse] (G H, D), R.weight_hh_l{k} (G H, H), R.bias_ih_l{k}, R.bias_hh_l{k}
             (G H,): G = 4 is an LSTM (gate rows i, f, g, o), G = 3 a GRU (rows r, z, n);
  embedding  M.weight (V, E) without M.bias, E the input size of layer 0, V at least the vocabulary's size;
  head       M.weight (C, F) and M.bias (C,) over h_n of the last layer, [forward, backward]: F = K H.
Every parameter must be one of these: anything else (attention, a second Linear, a normalisation, an LSTM
projection weight_hr) is outside the family and refused with the list of parameters found.

Conversion to the Keras layout of lrp.weights: kernels transposed; an LSTM's b_ih + b_hh summed (its gates
are z = W x + b_ih + U h + b_hh); a GRU's rows reordered to z, r, n, b_ih the input bias and b_hh the
recurrent bias inside the reset gate, n = tanh(W_n x + b_in + r * (U_n h + b_hn)) (Keras reset_after=True).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import yaml

from lrp.files import read_bytes, sibling, suffix
from lrp.importers.parts import assemble_parts
from lrp.importers.torch_zip import RESAVE, load_torch_zip
from lrp.weights import DenseWeights, GRUWeights, LSTMLayer, LSTMWeights, ModelParts, UnsupportedModelError

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")
DIRECTIONS = ("forward", "backward")
FAMILY = (
    "the family is nn.Embedding -> nn.LSTM or nn.GRU (any layers, uni- or bidirectional, no proj_size) -> "
    "nn.Linear over the last layer's h_n; a model spec file names modules that cannot be told apart "
    "(README: Explaining a PyTorch model)"
)
_RECURRENT = re.compile(
    r"^(?:(?P<module>.+)\.)?(?P<param>weight|bias)_(?P<kind>ih|hh|hr)_l(?P<layer>\d+)(?P<rev>_reverse)?$"
)


@dataclass(frozen=True)
class TorchModelSpec:
    """A model spec file's settings. weights: the weights file (relative to the spec file); embedding,
    recurrent, head: module names (found when None);
    head_input: the directions of the last layer's h_n the head reads, in order (None: all, forward first).
    """

    weights: str | None = None
    embedding: str | None = None
    recurrent: str | None = None
    head: str | None = None
    head_input: tuple[str, ...] | None = None


def read_spec(path_or_url: str) -> TorchModelSpec:
    """Parse a model spec file (YAML or JSON); ValueError naming the file and the offending key."""
    try:
        raw = yaml.safe_load(read_bytes(path_or_url).decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ValueError(f"{path_or_url} is not a YAML or JSON model spec ({error}).") from None
    known = [f.name for f in fields(TorchModelSpec)]
    if not isinstance(raw, dict) or "weights" not in raw:
        raise ValueError(f"{path_or_url} must be a mapping with a 'weights' key (keys: {', '.join(known)}).")
    unknown = sorted(set(map(str, raw)) - set(known))
    if unknown:
        raise ValueError(
            f"{path_or_url} has unknown keys {', '.join(unknown)}; the keys are {', '.join(known)}."
        )
    for key in ("weights", "embedding", "recurrent", "head"):
        if (key == "weights" or raw.get(key) is not None) and not isinstance(raw[key], str):
            raise ValueError(f"{path_or_url}: {key} must be a string, got {raw[key]!r}.")
    head_input = raw.get("head_input")
    if head_input is not None and (
        not isinstance(head_input, list)
        or not all(isinstance(d, str) for d in head_input)
        or not 1 <= len(head_input) <= 2
        or len(set(head_input)) != len(head_input)
        or not set(head_input) <= set(DIRECTIONS)
    ):
        raise ValueError(
            f"{path_or_url}: head_input must list the directions the head reads, [forward, backward], "
            f"[backward, forward], [forward] or [backward]; got {head_input!r}."
        )
    weights = raw["weights"]
    return TorchModelSpec(
        weights=weights if "://" in weights or weights.startswith("/") else sibling(path_or_url, weights),
        embedding=raw.get("embedding"),
        recurrent=raw.get("recurrent"),
        head=raw.get("head"),
        head_input=None if head_input is None else tuple(head_input),
    )


def _load_safetensors(data: bytes, source: str) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        return load(data)
    except KeyError as error:  # a dtype numpy lacks, e.g. BF16
        raise ValueError(
            f"{source} holds {error} tensors, which numpy cannot read; save them as float32."
        ) from None
    except SafetensorError as error:
        raise ValueError(f"{source} is not a readable safetensors file ({error}); {RESAVE}.") from None


def read_state_dict(path_or_url: str) -> dict[str, np.ndarray]:
    """Parameter name -> array from a .safetensors file or a torch.save zip (.pt, .pth). A checkpoint that
    holds the state dict as one of its values ({"model_state_dict": ..., "epoch": 3}) gives that one."""
    data = read_bytes(path_or_url)
    if suffix(path_or_url) == ".safetensors":
        return _load_safetensors(data, path_or_url)
    saved = load_torch_zip(data, path_or_url)
    if _is_state_dict(saved):
        return {str(k): v for k, v in saved.items()}
    held = [v for v in saved.values() if _is_state_dict(v)] if isinstance(saved, Mapping) else []
    if len(held) != 1:
        raise ValueError(
            f"{path_or_url} holds a {type(saved).__name__}, not one state dict of tensors; {RESAVE}."
        )
    return {str(k): v for k, v in held[0].items()}


def _is_state_dict(value: object) -> bool:
    return (
        isinstance(value, Mapping) and bool(value) and all(isinstance(v, np.ndarray) for v in value.values())
    )


def _key(module: str, name: str) -> str:
    return f"{module}.{name}" if module else name


class _Reader:
    """Recovers the architecture of one state dict; every refusal lists its parameters."""

    def __init__(self, tensors: Mapping[str, np.ndarray], spec: TorchModelSpec, source: str):
        self.tensors = {name: np.asarray(value) for name, value in tensors.items()}
        self.spec, self.source = spec, source
        self.directions = 1  # of the recurrent module, once read

    def fail(self, problem: str) -> UnsupportedModelError:
        listed = [f"{name} {tuple(v.shape)}" for name, v in self.tensors.items()]
        more = f" and {len(listed) - 40} more" if len(listed) > 40 else ""
        return UnsupportedModelError(
            f"{self.source}: {problem}. Parameters found: {', '.join(listed[:40]) or 'none'}{more}; {FAMILY}."
        )

    def recurrent_module(self) -> str:
        matches = [m for m in map(_RECURRENT.match, self.tensors) if m]
        modules = sorted({m["module"] or "" for m in matches})
        if self.spec.recurrent is not None:
            if self.spec.recurrent not in modules:
                raise self.fail(f"the spec's recurrent module {self.spec.recurrent!r} has no weight_ih_l0")
            return self.spec.recurrent
        if len(modules) != 1:
            found = f"several ({', '.join(map(repr, modules))})" if modules else "none"
            raise self.fail(
                f"exactly one nn.LSTM or nn.GRU (weight_ih_l0, weight_hh_l0, ...) is needed, found {found}"
            )
        return modules[0]

    def recurrent_layers(self, module: str) -> list[LSTMLayer]:
        found: dict[tuple[int, bool], dict[str, np.ndarray]] = {}
        for name, value in self.tensors.items():
            m = _RECURRENT.match(name)
            if m and (m["module"] or "") == module:
                if m["kind"] == "hr":
                    raise self.fail(f"{name} is an LSTM projection (proj_size), which is not supported")
                found.setdefault((int(m["layer"]), bool(m["rev"])), {})[f"{m['param']}_{m['kind']}"] = value
        depth, directions = 1 + max(k for k, _ in found), 2 if (0, True) in found else 1
        expected = {(k, reverse) for k in range(depth) for reverse in (False, True)[:directions]}
        if set(found) != expected:
            have = ", ".join(f"layer {k}{' reverse' if r else ''}" for k, r in sorted(found))
            raise self.fail(
                f"{module or 'the recurrent module'} has weights for {have}: not every layer 0..{depth - 1} "
                f"in {directions} direction(s)"
            )
        return [
            LSTMLayer(
                *(self.direction(module, found[(k, reverse)], k) for reverse in (False, True)[:directions])
            )
            for k in range(depth)
        ]

    def direction(self, module: str, weights: dict[str, np.ndarray], layer: int) -> LSTMWeights | GRUWeights:
        """One direction in the Keras layout (see the module docstring)."""
        w_ih, w_hh = weights.get("weight_ih"), weights.get("weight_hh")
        if not (
            w_ih is not None
            and w_hh is not None
            and w_ih.ndim == w_hh.ndim == 2
            and w_hh.shape[1] > 0
            and len(w_hh) % w_hh.shape[1] == 0
        ):
            raise self.fail(
                f"{module} layer {layer} needs 2-D weight_ih and weight_hh of G H rows, H columns"
            )
        units, gates = w_hh.shape[1], len(w_hh) // w_hh.shape[1]
        if gates not in (3, 4) or len(w_ih) != len(w_hh):
            raise self.fail(
                f"{module} has {len(w_hh)} gate rows for {units} units: not an LSTM (4 H) or GRU (3 H)"
            )
        biases = [np.shape(weights[k]) for k in ("bias_ih", "bias_hh") if k in weights]
        if biases not in ([], [(len(w_hh),)] * 2):
            raise self.fail(
                f"{module} layer {layer} needs both or neither of bias_ih and bias_hh, ({len(w_hh)},)"
            )
        zeros = np.zeros(len(w_hh))
        b_ih, b_hh = (np.asarray(weights.get(f"bias_{k}", zeros), np.float64) for k in ("ih", "hh"))
        w_ih, w_hh = np.asarray(w_ih, np.float64), np.asarray(w_hh, np.float64)
        if gates == 4:
            return LSTMWeights(kernel=w_ih.T, recurrent_kernel=w_hh.T, bias=b_ih + b_hh)
        r, z, n = (slice(k * units, (k + 1) * units) for k in range(3))
        order = np.r_[z, r, n]
        return GRUWeights(
            kernel=w_ih[order].T, recurrent_kernel=w_hh[order].T, bias=b_ih[order], recurrent_bias=b_hh[order]
        )

    def matrices(self, recurrent: str) -> dict[str, np.ndarray]:
        """Module name -> its `weight`, where that is 2-D, outside the recurrent module."""
        modules = [name.removesuffix("weight").removesuffix(".") for name in self.tensors]
        weights = {
            m: self.tensors[name] for m, name in zip(modules, self.tensors) if name == _key(m, "weight")
        }
        return {m: w for m, w in weights.items() if m != recurrent and w.ndim == 2}

    def choose(self, role: str, named: str | None, candidates: Sequence[str], need: str) -> str | None:
        """The spec's module for `role` if it is a candidate, else the only candidate (None if none)."""
        if named is not None:
            if named not in candidates:
                raise self.fail(f"the spec's {role} {named!r} is not {need}")
            return named
        if len(candidates) > 1:
            raise self.fail(
                f"the {role} is ambiguous among {', '.join(map(repr, sorted(candidates)))}; name it in a "
                "model spec file"
            )
        return candidates[0] if candidates else None

    def head_and_embedding(
        self, matrices: dict[str, np.ndarray], width: int, embed_dim: int, tokens: Sequence[str] | None
    ) -> tuple[str, str | None]:
        """The head (a (C, width) weight) and the embedding ((V, embed_dim), no bias): a module that fits
        both roles is the embedding if another fits only the head's; with a vocabulary, modules with fewer
        rows than it are no embedding, and one with as many rows is preferred."""
        rows = 0 if tokens is None else len(tokens)
        heads = [m for m, w in matrices.items() if w.shape[1] == width]
        embeddings = [
            m for m, w in matrices.items() if w.shape[1] == embed_dim and _key(m, "bias") not in self.tensors
        ]
        embeddings = [m for m in embeddings if len(matrices[m]) >= rows] or embeddings
        if self.spec.head is None and len(set(heads) - set(embeddings)) == 1:
            heads = sorted(set(heads) - set(embeddings))
        need = f"a Linear over {width} features (weight (C, {width}))"
        if self.spec.head_input is None and self.directions == 2:
            need += "; a head over one direction's h_n needs head_input in a model spec file"
        head = self.choose("head", self.spec.head, heads, need)
        if head is None:
            raise self.fail(f"no head: expected {need}")
        embeddings = [m for m in embeddings if m != head]
        if self.spec.embedding is None and len(embeddings) > 1:
            embeddings = [m for m in embeddings if len(matrices[m]) == rows] or embeddings
        need = f"an Embedding of {embed_dim} dimensions without bias"
        return head, self.choose("embedding", self.spec.embedding, embeddings, need)

    def parts(self, tokens: Sequence[str] | None) -> ModelParts:
        recurrent = self.recurrent_module()
        layers = self.recurrent_layers(recurrent)
        units, self.directions = layers[-1].forward.units, len(layers[-1].directions)
        head_input = self.spec.head_input or DIRECTIONS[: self.directions]
        if "backward" in head_input and self.directions == 1:
            raise self.fail("the spec's head_input reads a backward direction, but the model has none")
        matrices = self.matrices(recurrent)
        width, embed_dim = units * len(head_input), layers[0].forward.input_dim
        head, embedding = self.head_and_embedding(matrices, width, embed_dim, tokens)
        used = {_key(head, "weight"), _key(head, "bias")} | {
            _key(m, "weight") for m in [embedding] if m is not None
        }
        unused = [
            name
            for name, m in zip(self.tensors, map(_RECURRENT.match, self.tensors))
            if name not in used and not (m and (m["module"] or "") == recurrent)
        ]
        if unused:
            raise self.fail(
                f"{', '.join(unused)} belong to no embedding, {layers[0].kind.upper()} or head (attention, "
                "pooling, a second Linear or a normalisation are outside the family)"
            )
        return assemble_parts(
            layers=layers,
            dense=self.dense(head, head_input, units),
            embedding=None if embedding is None else matrices[embedding],
            tokens=tokens,
            source=self.source,
        )

    def dense(self, head: str, head_input: Sequence[str], units: int) -> DenseWeights:
        """The head as a Dense over [h_n forward, h_n backward]; rows of a direction it skips are 0."""
        weight = np.asarray(self.tensors[_key(head, "weight")], np.float64)
        kernel = np.zeros((units * self.directions, len(weight)))
        for j, direction in enumerate(head_input):
            k = DIRECTIONS.index(direction)
            kernel[k * units : (k + 1) * units] = weight[:, j * units : (j + 1) * units].T
        bias = self.tensors.get(_key(head, "bias"))
        return DenseWeights(kernel, None if bias is None else np.asarray(bias, np.float64))


def parts_from_state_dict(
    tensors: Mapping[str, np.ndarray],
    tokens: Sequence[str] | None = None,
    spec: TorchModelSpec = TorchModelSpec(),
    source: str = "the state dict",
) -> ModelParts:
    """ModelParts from a PyTorch state dict (parameter name -> array, PyTorch layout); see the module
    docstring. Raises UnsupportedModelError, listing the parameters, for a model outside the family."""
    return _Reader(tensors, spec, source).parts(tokens)


def parts_from_torch(path_or_url: str, tokens: Sequence[str] | None = None) -> ModelParts:
    """Read a .safetensors or torch.save file, or a model spec file naming one (see read_spec)."""
    spec = (
        read_spec(path_or_url)
        if suffix(path_or_url) in SPEC_SUFFIXES
        else TorchModelSpec(weights=path_or_url)
    )
    if suffix(spec.weights) not in WEIGHT_SUFFIXES:
        raise ValueError(f"{spec.weights} is not a .safetensors, .pt or .pth file; {RESAVE}.")
    return parts_from_state_dict(read_state_dict(spec.weights), tokens, spec, spec.weights)
