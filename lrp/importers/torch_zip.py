"""What torch.save writes (the zip format of PyTorch >= 1.6), read as numpy arrays without torch and without
running code from the file.

The archive holds, under one top directory A: A/data.pkl, a pickle of the saved object (a state dict) in
which every tensor is `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and every
storage a persistent id ('storage', torch.<Type>Storage, key, location, numel) whose numel elements are the
raw bytes of the record A/data/<key>, in the byte order named by A/byteorder ('little' when absent). Offset
and strides count elements. Only _rebuild_tensor_v2, _rebuild_parameter (an nn.Parameter is its data), the
storage types and OrderedDict are resolved; any other global (os.system, a model class) is refused before it
is looked up (UnsafePickleError).
"""

from __future__ import annotations

import collections
import io
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrp.importers.safe_pickle import RestrictedUnpickler, UnsafePickleError, restricted_load

RESAVE = (
    "save the weights with torch.save(model.state_dict(), path) (PyTorch >= 1.6) or with "
    "safetensors.torch.save_file(model.state_dict(), 'model.safetensors')"
)


@dataclass(frozen=True)
class StorageType:
    """A torch storage class named in the pickle: its element type as numpy reads it ('bfloat16': uint16
    words widened to float32)."""

    name: str
    dtype: str


STORAGE_TYPES = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


def _ints(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_flags: Any) -> np.ndarray:
    """torch._utils._rebuild_tensor_v2: the (size) view of a 1-D storage at element `offset` with element
    `stride`s, copied; requires_grad, hooks and metadata are ignored. ValueError if it reaches outside."""
    if not (
        isinstance(storage, np.ndarray)
        and storage.ndim == 1
        and storage.dtype.kind in "fiub"
        and isinstance(size, tuple | list)
        and isinstance(stride, tuple | list)
        and len(size) == len(stride)
        and _ints(offset, *size, *stride)
        and min((offset, *size, *stride)) >= 0
    ):
        raise ValueError(
            f"a tensor has an invalid layout (offset {offset!r}, size {size!r}, stride {stride!r})"
        )
    if 0 in size:
        return np.zeros(size, storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= len(storage):
        raise ValueError(
            f"a tensor of size {tuple(size)} reaches element {last} of a storage of {len(storage)}"
        )
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=[s * storage.itemsize for s in stride], writeable=False
    )
    return view.copy()


def rebuild_parameter(data: Any, *_flags: Any) -> Any:
    """torch._utils._rebuild_parameter: an nn.Parameter is its data."""
    return data


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    }
    allowed.update({("torch", name): StorageType(name, dtype) for name, dtype in STORAGE_TYPES.items()})
    return allowed


class _TorchUnpickler(RestrictedUnpickler):
    """Resolves persistent ids to the archive's storages, each read once (tensors may share one)."""

    def __init__(self, archive: zipfile.ZipFile, root: str, source: str):
        advice = f"only state dicts of tensors are read without running code: {RESAVE}."
        super().__init__(archive.read(f"{root}/data.pkl"), source, _allowed_globals(), advice)
        self.archive, self.root = archive, root
        order = f"{root}/byteorder"
        self.byteorder = archive.read(order).decode().strip() if order in archive.namelist() else "little"
        if self.byteorder not in ("little", "big"):
            raise ValueError(f"{source} has the byte order {self.byteorder!r}; expected 'little' or 'big'.")
        self.storages: dict[str, np.ndarray] = {}

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (
            isinstance(pid, tuple)
            and len(pid) == 5
            and pid[0] == "storage"
            and isinstance(pid[1], StorageType)
            and isinstance(pid[2], str)
            and _ints(pid[4])
        ):
            raise UnsafePickleError(
                f"{self.source} has the persistent id {pid!r}, not a tensor storage; {RESAVE}."
            )
        _, kind, key, _location, numel = pid
        if key not in self.storages:
            self.storages[key] = self._storage(kind, key, numel)
        return self.storages[key]

    def _storage(self, kind: StorageType, key: str, numel: int) -> np.ndarray:
        """The numel elements of record data/<key>, native byte order."""
        name = f"{self.root}/data/{key}"
        if name not in self.archive.namelist():
            raise ValueError(f"{self.source} lacks the tensor data {name}")
        word = np.dtype("u2" if kind.dtype == "bfloat16" else kind.dtype)
        raw = self.archive.read(name)
        if len(raw) < numel * word.itemsize:
            raise ValueError(f"{name} holds {len(raw)} bytes, fewer than {numel} {kind.name} elements")
        values = np.frombuffer(raw, word.newbyteorder("<" if self.byteorder == "little" else ">"), numel)
        if kind.dtype == "bfloat16":  # the upper half of a float32
            return (values.astype(np.uint32) << 16).view(np.float32)
        return values.astype(word)


def _root(archive: zipfile.ZipFile, source: str) -> str:
    """The top directory holding data.pkl."""
    roots = [name[: -len("/data.pkl")] for name in archive.namelist() if name.count("/") == 1]
    roots = [root for root in roots if f"{root}/data.pkl" in archive.namelist()]
    if len(roots) != 1:
        raise ValueError(
            f"{source} is a zip archive but not one torch.save wrote (no DIR/data.pkl); {RESAVE}."
        )
    return roots[0]


def load_torch_zip(data: bytes, source: str) -> Any:
    """The object torch.save wrote into `data` (the bytes of `source`, named in errors), tensors as numpy
    arrays. UnsafePickleError for a pickle naming any other global; ValueError for other files."""
    buffer = io.BytesIO(data)
    if not zipfile.is_zipfile(buffer):
        raise ValueError(
            f"{source} is not the zip archive torch.save writes (an older PyTorch's format or another "
            f"file); {RESAVE}."
        )
    try:
        with zipfile.ZipFile(buffer) as archive:
            return restricted_load(_TorchUnpickler(archive, _root(archive, source), source))
    except (zipfile.BadZipFile, KeyError, EOFError) as error:
        raise ValueError(f"{source} is a damaged zip archive ({error}); {RESAVE}.") from None
