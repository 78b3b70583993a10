"""Restricted unpicklers for the pickles this package reads: word vectors, ArrasL models and vocabularies
(plain data), and torch state dicts (lrp.importers.torch_zip, with its own allow list).

Only plain data is admitted: dicts, lists, tuples, strings, numbers and numpy arrays and scalars. Any other
global, e.g. os.system in a crafted pickle, is refused before it is looked up, so nothing runs.
"""

from __future__ import annotations

import importlib
import io
import pickle
from typing import Any

from lrp.files import read_bytes


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global outside the allow list."""


def _numpy_module(name: str) -> Any:
    """numpy._core.<name> on numpy 2, numpy.core.<name> on numpy 1."""
    try:
        return importlib.import_module(f"numpy._core.{name}")
    except ImportError:
        return importlib.import_module(f"numpy.core.{name}")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The globals numpy needs to rebuild arrays, dtypes and scalars, under numpy 1 and 2 module names.

    `_frombuffer` rebuilds arrays in protocol 5 pickles; `_codecs.encode` rebuilds bytes in protocol <= 2
    pickles written by Python 3. Both only construct data.
    """
    import codecs

    import numpy as np

    multiarray, numeric = _numpy_module("multiarray"), _numpy_module("numeric")
    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in `allowed` ((module, name) -> object); any other is refused before it is
    looked up, with `advice` (how to re-save the file) in the message. Subclasses may add persistent_load."""

    def __init__(
        self, data: bytes, source: str, allowed: dict[tuple[str, str], Any], advice: str, **options: Any
    ):
        super().__init__(io.BytesIO(data), **options)
        self.source, self.allowed, self.advice = source, allowed, advice

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.allowed:
            raise UnsafePickleError(f"{self.source} refers to the global {module}.{name}; {self.advice}")
        return self.allowed[(module, name)]


def restricted_load(unpickler: RestrictedUnpickler) -> Any:
    """unpickler.load(); UnsafePickleError passes, data that is not a whole pickle (truncated, empty,
    another format) raises ValueError naming the source."""
    try:
        return unpickler.load()
    except UnsafePickleError:
        raise
    except Exception as error:  # the unpickler raises many types for malformed data; all mean the same
        raise ValueError(
            f"{unpickler.source} is not a readable pickle ({type(error).__name__}: {error}); pass the file "
            "as saved."
        ) from None


_PLAIN_DATA = (
    "only pickles of plain data (dicts, lists, strings, numbers, numpy arrays) are loaded, so re-save it as "
    "plain data."
)


def _decode_text(obj: Any) -> Any:
    """Turn bytes (Python 2 strings) into str inside dicts, lists and tuples; leave everything else alone."""
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    if isinstance(obj, dict):
        return {_decode_text(k): _decode_text(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_decode_text(v) for v in obj)
    return obj


def safe_loads(data: bytes, source: str) -> Any:
    """Unpickle `data` read from `source` (named in errors) through the allow list; else UnsafePickleError.
    Data that is not a whole pickle (truncated, empty, another format) raises ValueError naming source."""
    # Python 2 str objects arrive as bytes (encoding="bytes") and are decoded as UTF-8 afterwards.
    unpickler = RestrictedUnpickler(data, source, _allowed_globals(), _PLAIN_DATA, encoding="bytes")
    return _decode_text(restricted_load(unpickler))


def safe_load_pickle(path_or_url: str) -> Any:
    """Unpickle a file of plain data; a pickle naming any other global raises UnsafePickleError unexecuted."""
    return safe_loads(read_bytes(path_or_url), path_or_url)
