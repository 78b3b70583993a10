"""PyTorch classifiers without torch: state dicts in PyTorch's layout built with numpy, written as torch.save
zip archives (the layout written here by hand) and .safetensors files, and a float64 numpy forward pass
written from the equations in PyTorch's nn.LSTM and nn.GRU documentation, with pack_padded_sequence
semantics (each review runs over its own tokens only)."""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from safetensors.numpy import save_file

STORAGE_NAMES = {
    "float64": "DoubleStorage",
    "float32": "FloatStorage",
    "float16": "HalfStorage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "int16": "ShortStorage",
    "int8": "CharStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
}


@dataclass(frozen=True)
class Global:
    """A reference to module.name, pickled as a GLOBAL opcode without importing it (torch is absent)."""

    module: str
    name: str

    def __call__(self, *args):  # the pickler only reduces to callables
        raise AssertionError("never called")


@dataclass(eq=False)
class Stored:
    """A tensor as torch keeps it: the (size) view, at element `offset` with element `stride`s, of a 1-D
    storage; storage_type overrides the name of the storage class (e.g. 'BFloat16Storage' for uint16 words).
    """

    storage: np.ndarray
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    storage_type: str | None = None

    @classmethod
    def of(cls, array: np.ndarray) -> Stored:
        """A contiguous tensor holding `array`."""
        array = np.ascontiguousarray(array)
        return cls(array.ravel(), 0, array.shape, tuple(s // max(1, array.itemsize) for s in array.strides))

    def __reduce__(self):
        rebuild = Global("torch._utils", "_rebuild_tensor_v2")
        return rebuild, (
            _Storage(self),
            self.offset,
            self.size,
            self.stride,
            False,
            collections.OrderedDict(),
        )


@dataclass(eq=False)
class Parameter:
    """An nn.Parameter: torch pickles it as _rebuild_parameter(tensor, requires_grad, hooks)."""

    tensor: Stored

    def __reduce__(self):
        return Global("torch._utils", "_rebuild_parameter"), (self.tensor, True, collections.OrderedDict())


@dataclass(eq=False)
class _Storage:
    tensor: Stored = field(repr=False)


class TorchPickler(pickle._Pickler):
    """The pure-Python pickler, writing Global as GLOBAL and storages as torch's persistent ids; keys
    storages by identity, so tensors that share one storage array share its record."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def __init__(self, file, byteorder: str):
        super().__init__(file, protocol=2)
        self.records: dict[str, bytes] = {}
        self.keys: dict[int, str] = {}
        self.order = "<" if byteorder == "little" else ">"

    def save_global_reference(self, obj: Global) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())

    dispatch[Global] = save_global_reference

    def persistent_id(self, obj):
        if not isinstance(obj, _Storage):
            return None
        tensor = obj.tensor
        storage = tensor.storage
        key = self.keys.setdefault(id(storage), str(len(self.keys)))
        self.records[key] = storage.astype(storage.dtype.newbyteorder(self.order)).tobytes()
        kind = tensor.storage_type or STORAGE_NAMES[storage.dtype.name]
        return ("storage", Global("torch", kind), key, "cpu", storage.size)


def write_archive(
    path, data_pkl: bytes, records: dict[str, bytes], archive: str = "model", byteorder="little"
):
    """A zip in torch.save's layout: A/data.pkl, A/data/KEY, A/version, A/byteorder (A: archive)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{archive}/data.pkl", data_pkl)
        zf.writestr(f"{archive}/byteorder", byteorder)
        for key, raw in records.items():
            zf.writestr(f"{archive}/data/{key}", raw)
        zf.writestr(f"{archive}/version", "3\n")


def write_torch_zip(path, saved, archive: str = "model", byteorder: str = "little") -> None:
    """What torch.save(saved, path) writes; arrays in `saved` (a state dict, or any dict holding one) become
    contiguous tensors, Stored values keep their layout. A state dict carries torch's _metadata attribute."""

    def tensors(value):
        if isinstance(value, np.ndarray):
            return Stored.of(value)
        if isinstance(value, dict):
            converted = collections.OrderedDict((k, tensors(v)) for k, v in value.items())
            converted._metadata = collections.OrderedDict([("", {"version": 1})])
            return converted
        return value

    buffer = io.BytesIO()
    pickler = TorchPickler(buffer, byteorder)
    pickler.dump(tensors(saved))
    write_archive(path, buffer.getvalue(), pickler.records, archive, byteorder)


def write_safetensors(path, state: dict[str, np.ndarray]) -> None:
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(path))


@dataclass(frozen=True)
class Architecture:
    """What a classifier state dict holds: module names and sizes."""

    kind: str = "lstm"  # or "gru"
    vocab_size: int = 12
    embed: int = 5
    units: int = 4
    layers: int = 1
    bidirectional: bool = True
    classes: int = 3
    embedding: str = "embedding"
    recurrent: str = "lstm"
    head: str = "fc"
    bias: bool = True
    head_input: tuple[str, ...] | None = None  # default: all directions, forward first

    @property
    def gates(self) -> int:
        return 4 if self.kind == "lstm" else 3

    @property
    def suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    @property
    def reads(self) -> tuple[str, ...]:
        return self.head_input or ("forward", "backward")[: len(self.suffixes)]


def key(module: str, name: str) -> str:
    return f"{module}.{name}" if module else name


def classifier_state(arch: Architecture, seed: int = 0, scale: float = 0.6) -> dict[str, np.ndarray]:
    """A random float32 state dict, in registration order: embedding, recurrent module, head."""
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.normal(0.0, scale, shape).astype(np.float32)

    state = {key(arch.embedding, "weight"): normal(arch.vocab_size, arch.embed)}
    rows = arch.gates * arch.units
    for k in range(arch.layers):
        inputs = arch.embed if k == 0 else arch.units * len(arch.suffixes)
        for s in arch.suffixes:
            state[key(arch.recurrent, f"weight_ih_l{k}{s}")] = normal(rows, inputs)
            state[key(arch.recurrent, f"weight_hh_l{k}{s}")] = normal(rows, arch.units)
            if arch.bias:
                state[key(arch.recurrent, f"bias_ih_l{k}{s}")] = normal(rows)
                state[key(arch.recurrent, f"bias_hh_l{k}{s}")] = normal(rows)
    state[key(arch.head, "weight")] = normal(arch.classes, arch.units * len(arch.reads))
    if arch.bias:
        state[key(arch.head, "bias")] = normal(arch.classes)
    return state


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _cell(arch: Architecture, p: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray):
    """One step of PyTorch's documented equations; p holds w_ih, w_hh, b_ih, b_hh of one direction."""
    gi = p["w_ih"] @ x + p["b_ih"]
    gh = p["w_hh"] @ h + p["b_hh"]
    if arch.kind == "lstm":
        i, f, g, o = np.split(gi + gh, 4)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        return sigmoid(o) * np.tanh(c), c
    (ir, iz, in_), (hr, hz, hn) = np.split(gi, 3), np.split(gh, 3)
    r, z = sigmoid(ir + hr), sigmoid(iz + hz)
    n = np.tanh(in_ + r * hn)
    return (1.0 - z) * n + z * h, c


def torch_forward(arch: Architecture, state: dict[str, np.ndarray], ids: np.ndarray, lengths) -> np.ndarray:
    """Logits (B, C) of nn.Embedding -> nn.LSTM/nn.GRU over pack_padded_sequence(lengths) -> nn.Linear over
    the last layer's h_n directions named by arch.reads, float64, one review at a time."""
    s = {name: np.asarray(v, np.float64) for name, v in state.items()}
    zero = np.zeros(arch.gates * arch.units)
    logits = []
    for row, length in zip(ids, lengths):
        seq = s[key(arch.embedding, "weight")][row[:length]]
        for k in range(arch.layers):
            outputs, finals = [], {}
            for d, suffix in enumerate(arch.suffixes):
                p = {
                    "w_ih": s[key(arch.recurrent, f"weight_ih_l{k}{suffix}")],
                    "w_hh": s[key(arch.recurrent, f"weight_hh_l{k}{suffix}")],
                    "b_ih": s.get(key(arch.recurrent, f"bias_ih_l{k}{suffix}"), zero),
                    "b_hh": s.get(key(arch.recurrent, f"bias_hh_l{k}{suffix}"), zero),
                }
                h = c = np.zeros(arch.units)
                steps = range(length) if d == 0 else reversed(range(length))
                out = np.zeros((length, arch.units))
                for t in steps:
                    h, c = _cell(arch, p, seq[t], h, c)
                    out[t] = h
                outputs.append(out)
                finals[("forward", "backward")[d]] = h
            seq = np.concatenate(outputs, axis=1)
        features = np.concatenate([finals[d] for d in arch.reads])
        logits.append(s[key(arch.head, "weight")] @ features + s.get(key(arch.head, "bias"), 0.0))
    return np.array(logits)
