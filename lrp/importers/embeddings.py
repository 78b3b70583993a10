"""Word vectors for models without an Embedding layer: (tokens, vectors (V, E) float32) from a pickled dict,
word2vec/GloVe text, word2vec binary, or a .npy matrix with a vocabulary."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterable

import numpy as np

from lrp.files import exists, open_binary, read_bytes, sibling, suffix
from lrp.importers.safe_pickle import safe_load_pickle
from lrp.importers.vocab import load_vocab

Embeddings = tuple[list[str], np.ndarray]


def check_embedding_dim(vectors: np.ndarray, input_dim: int, path: str) -> None:
    """Raise ValueError unless the vectors (V, E) have the model's input size E."""
    if np.ndim(vectors) != 2 or vectors.shape[1] != input_dim:
        found = vectors.shape[1] if np.ndim(vectors) == 2 else f"shape {np.shape(vectors)}"
        raise ValueError(
            f"The word vectors of {path} have {found} dimensions but the model expects {input_dim} input "
            "features; use the embeddings the model was trained with."
        )


def with_zero_row(vectors: np.ndarray) -> np.ndarray:
    """The table (V, E) with a row of zeros appended, (V + 1, E): the vector of unknown tokens (for a model
    without an OOV id of its own) and of padding. The one place that adds it."""
    return np.concatenate([vectors, np.zeros((1, vectors.shape[1]), vectors.dtype)])


def load_npy(path_or_url: str) -> np.ndarray:
    """A .npy array, never unpickling objects: an object array (pickles inside) or a file that is not .npy
    raises ValueError naming the file."""
    with open_binary(path_or_url) as f:
        try:
            return np.load(f, allow_pickle=False)
        except ValueError as e:
            raise ValueError(
                f"{path_or_url} is not a .npy array of numbers ({e}); save the vectors with numpy.save."
            ) from None


def _from_pickle(path: str) -> Embeddings:
    table = safe_load_pickle(path)
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{path} does not hold a non-empty pickled dict token -> vector; re-save it as one.")
    vectors = [np.ravel(np.asarray(v, dtype=np.float32)) for v in table.values()]
    if len({v.size for v in vectors}) != 1:
        raise ValueError(
            f"The vectors in {path} differ in length; every token needs a vector of the same size."
        )
    return [str(token) for token in table], np.stack(vectors)


def _text_row(line: str, dim: int, where: str) -> tuple[str, np.ndarray]:
    """'token v1 ... v_dim' -> (token, (dim,) float32); the token may contain spaces."""
    token, *values = line.rsplit(None, dim)
    try:
        if dim < 1 or len(values) != dim:
            raise ValueError
        return token, np.asarray(values, dtype=np.float32)
    except ValueError:
        raise ValueError(f"{where}: expected a token and {dim} numbers; is it a word-vector file?") from None


def _text_rows(lines: Iterable[str], path: str) -> Embeddings:
    """Parse 'token v1 ... vE' lines, E read off the first line; an optional 'count dim' header is skipped."""
    lines = iter(lines)
    first_line = next(lines, "")
    first = first_line.split()
    has_header = len(first) == 2 and all(field.isdigit() for field in first)
    dim = int(first[1]) if has_header else len(first) - 1
    rows = lines if has_header else itertools.chain([first_line], lines)
    tokens, vectors = [], []
    for number, line in enumerate(rows, start=2 if has_header else 1):
        if line.strip():
            token, vector = _text_row(line, dim, f"{path} line {number}")
            tokens.append(token)
            vectors.append(vector)
    if not vectors:
        raise ValueError(f"{path} holds no word vectors.")
    return tokens, np.stack(vectors)


def _from_text(path: str) -> Embeddings:
    with open_binary(path) as f:
        return _text_rows(io.TextIOWrapper(f, encoding="utf-8-sig", errors="replace"), path)


def _from_word2vec_binary(path: str) -> Embeddings:
    """word2vec binary: 'count dim' line, then per word: UTF-8 token, space, dim little-endian float32."""
    header, _, body = read_bytes(path).partition(b"\n")
    fields = header.split()
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        raise ValueError(f"{path} does not start with a 'count dim' line; is it a word2vec binary file?")
    count, dim = map(int, fields)
    tokens, vectors, position = [], np.empty((count, dim), np.float32), 0
    for n in range(count):
        space = body.find(b" ", position)
        end = space + 1 + 4 * dim
        if space < 0 or end > len(body):
            raise ValueError(
                f"{path} ends after {n} of its {count} vectors; the word2vec binary file is truncated."
            )
        tokens.append(body[position:space].lstrip(b"\n").decode("utf-8", errors="replace"))
        vectors[n] = np.frombuffer(body, "<f4", dim, space + 1)
        position = end
    return tokens, vectors


def _from_npy(path: str, vocab_path: str | None) -> Embeddings:
    """A .npy matrix; its vocabulary from `vocab_path`, else vocab.txt or vocab beside the file."""
    vocab_path = vocab_path or next(
        (p for p in (sibling(path, "vocab.txt"), sibling(path, "vocab")) if exists(p)), None
    )
    if vocab_path is None:
        raise ValueError(
            f"{path} needs a vocabulary: pass --vocab (vocab= in Python) or put vocab.txt (one token a line) "
            "beside it."
        )
    tokens, vectors = load_vocab(vocab_path), load_npy(path)
    if np.ndim(vectors) != 2 or len(tokens) != len(vectors):
        raise ValueError(
            f"{vocab_path} has {len(tokens)} tokens but {path} holds an array of shape {np.shape(vectors)}; "
            "they must have one row per token."
        )
    return list(tokens), vectors


_READERS: dict[str, Callable[[str], Embeddings]] = {
    ".pkl": _from_pickle,
    ".pickle": _from_pickle,
    ".txt": _from_text,
    ".vec": _from_text,
    ".bin": _from_word2vec_binary,
}


def load_embeddings(path_or_url: str, vocab: str | None = None) -> Embeddings:
    """Read word vectors: tokens (V,) and vectors (V, E) float32; the extension (optionally followed by
    .gz, .bz2 or .xz) tells the format: .pkl/.pickle (dict token -> vector, safely unpickled), .txt/.vec
    (word2vec/GloVe text, header optional), .bin (word2vec binary), .npy (matrix; vocabulary from `vocab`
    or vocab.txt/vocab beside it)."""
    kind = suffix(path_or_url)
    if kind not in (*_READERS, ".npy"):
        raise ValueError(
            f"Cannot tell the word-vector format of {path_or_url}; use a .pkl, .txt, .vec, .bin or .npy file."
        )
    if kind != ".npy" and vocab is not None:
        raise ValueError(f"vocab= applies to .npy embeddings only; {path_or_url} names its own tokens.")
    tokens, vectors = _from_npy(path_or_url, vocab) if kind == ".npy" else _READERS[kind](path_or_url)
    return tokens, np.asarray(vectors, dtype=np.float32)
