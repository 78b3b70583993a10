"""Vocabularies: token at index id, from a text file (one token a line) or a pickled list of tokens."""

from __future__ import annotations

from collections.abc import Sequence

from lrp.files import read_bytes, suffix
from lrp.importers.safe_pickle import safe_loads

OOV_TOKENS = ("[UNK]", "<unk>", "<UNK>", "UNK", "<oov>", "<OOV>", "[OOV]")
"""Tokens that conventionally stand for out-of-vocabulary words (Keras TextVectorization uses "[UNK]")."""

_PICKLE_STARTS = (b"\x80", b"(lp0", b"(dp0", b"]q", b"}q")
"""How pickles begin: protocol >= 2, protocol 0 list or dict, protocol 1 list or dict."""


def load_vocab(path_or_url: str) -> tuple[str, ...]:
    """Read a vocabulary: a text file, line number = id (.txt, or any file not pickled), or a pickled list."""
    data = read_bytes(path_or_url)
    if suffix(path_or_url) != ".txt" and data.startswith(_PICKLE_STARTS):
        return _pickled_tokens(data, path_or_url)
    lines = data.decode("utf-8-sig", errors="replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    return tuple(line.removesuffix("\r") for line in lines)


def _pickled_tokens(data: bytes, path_or_url: str) -> tuple[str, ...]:
    tokens = safe_loads(data, path_or_url)
    if not isinstance(tokens, list | tuple) or not all(isinstance(t, str) for t in tokens):
        raise ValueError(
            f"{path_or_url} does not hold a pickled list of token strings; pass a vocabulary file."
        )
    return tuple(tokens)


def oov_id(tokens: Sequence[str] | None) -> int | None:
    """The lowest id of a conventional OOV token (see OOV_TOKENS) in `tokens`; None if there is none."""
    return next((n for n, token in enumerate(tokens or ()) if token in OOV_TOKENS), None)
