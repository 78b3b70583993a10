"""lrp.importers word vectors, vocabularies and the restricted unpickler."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import uuid

import fsspec
import numpy as np
import pytest

from lrp.importers import (
    UnsafePickleError,
    check_embedding_dim,
    load_embeddings,
    load_vocab,
    safe_load_pickle,
)

TOKENS = ["the", "café", "<unk>"]
VECTORS = np.arange(12, dtype=np.float32).reshape(3, 4) / 7 - 0.5


def glove_text(header: bool) -> str:
    lines = [f"{t} {' '.join(repr(float(v)) for v in row)}" for t, row in zip(TOKENS, VECTORS, strict=True)]
    return "\n".join(([f"{len(TOKENS)} {VECTORS.shape[1]}"] if header else []) + lines) + "\n"


def word2vec_binary() -> bytes:
    """The word2vec C tool's layout: 'count dim' line; per word, token, space, float32s, newline."""
    rows = [
        t.encode() + b" " + row.astype("<f4").tobytes() + b"\n"
        for t, row in zip(TOKENS, VECTORS, strict=True)
    ]
    return f"{len(TOKENS)} {VECTORS.shape[1]}\n".encode() + b"".join(rows)


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


FORMATS = {
    "vectors.pkl": lambda: pickle.dumps(dict(zip(TOKENS, VECTORS, strict=True))),
    "glove.txt": lambda: glove_text(header=False).encode(),
    "fasttext.vec": lambda: glove_text(header=True).encode(),
    "fasttext.vec.gz": lambda: gzip.compress(glove_text(header=True).encode()),
    "word2vec.bin": word2vec_binary,
}


@pytest.mark.parametrize("name", FORMATS)
def test_embedding_formats(tmp_path, name):
    (tmp_path / name).write_bytes(FORMATS[name]())
    tokens, vectors = load_embeddings(str(tmp_path / name))
    assert tokens == TOKENS and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, VECTORS, rtol=1e-6)


@pytest.mark.parametrize("vocab_name", ["vocab.txt", "vocab"])
def test_npy_with_the_vocabulary_beside_it(tmp_path, vocab_name):
    (tmp_path / "embeddings.npy").write_bytes(npy_bytes(VECTORS.astype(np.float64)))
    vocab = "\n".join(TOKENS).encode() if vocab_name == "vocab.txt" else pickle.dumps(TOKENS, protocol=2)
    (tmp_path / vocab_name).write_bytes(vocab)
    tokens, vectors = load_embeddings(str(tmp_path / "embeddings.npy"))
    assert tokens == TOKENS and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, VECTORS)


def test_npy_with_a_vocab_argument_of_the_wrong_length(tmp_path):
    (tmp_path / "e.npy").write_bytes(npy_bytes(VECTORS))
    (tmp_path / "words.txt").write_text("a\nb\n")
    with pytest.raises(
        ValueError, match=r"words\.txt has 2 tokens but .*e\.npy holds an array of shape \(3, 4\)"
    ):
        load_embeddings(str(tmp_path / "e.npy"), vocab=str(tmp_path / "words.txt"))


def test_npy_without_a_vocabulary(tmp_path):
    (tmp_path / "e.npy").write_bytes(npy_bytes(VECTORS))
    with pytest.raises(ValueError, match="needs a vocabulary: pass --vocab"):
        load_embeddings(str(tmp_path / "e.npy"))


@pytest.mark.parametrize("second_line", ["b 1 2", "not a number"])
def test_malformed_text_line_is_located(tmp_path, second_line):
    (tmp_path / "bad.txt").write_text(f"a 1 2 3\n{second_line}\n")
    with pytest.raises(ValueError, match=r"bad\.txt line 2: expected a token and 3 numbers"):
        load_embeddings(str(tmp_path / "bad.txt"))


def test_truncated_word2vec_binary(tmp_path):
    (tmp_path / "cut.bin").write_bytes(word2vec_binary()[:-10])
    with pytest.raises(ValueError, match="ends after 2 of its 3 vectors"):
        load_embeddings(str(tmp_path / "cut.bin"))


def test_unknown_embedding_format(tmp_path):
    with pytest.raises(ValueError, match=r"Cannot tell the word-vector format of .*vectors\.csv"):
        load_embeddings(str(tmp_path / "vectors.csv"))


def test_embedding_dimension_mismatch_names_both_numbers():
    with pytest.raises(ValueError, match=r"glove\.txt have 4 dimensions but the model expects 300"):
        check_embedding_dim(VECTORS, 300, "glove.txt")
    check_embedding_dim(VECTORS, 4, "glove.txt")


def memory_url(name: str, data: bytes) -> str:
    url = f"memory://lrp-tests/{uuid.uuid4().hex}/{name}"
    fsspec.filesystem("memory").pipe(url, data)
    return url


def test_embeddings_and_vocab_from_fsspec_urls():
    tokens, vectors = load_embeddings(memory_url("glove.txt", glove_text(header=False).encode()))
    assert tokens == TOKENS
    np.testing.assert_allclose(vectors, VECTORS, rtol=1e-6)
    npy = memory_url("e.npy", npy_bytes(VECTORS))
    fsspec.filesystem("memory").pipe(npy.replace("e.npy", "vocab.txt"), "\n".join(TOKENS).encode())
    assert load_embeddings(npy)[0] == TOKENS
    assert load_vocab(memory_url("vocab", pickle.dumps(TOKENS))) == tuple(TOKENS)


def test_text_vocab_keeps_empty_tokens_and_line_numbers(tmp_path):
    (tmp_path / "vocab.txt").write_bytes("\r\n[UNK]\r\ncafé\r\n".encode())
    assert load_vocab(str(tmp_path / "vocab.txt")) == ("", "[UNK]", "café")


def test_pickled_vocab_must_be_a_list_of_strings(tmp_path):
    (tmp_path / "vocab").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="does not hold a pickled list of token strings"):
        load_vocab(str(tmp_path / "vocab"))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_plain_data_pickles_load_under_every_protocol(tmp_path, protocol):
    data = {"w": np.arange(6.0).reshape(2, 3), "n": np.float32(1.5), "t": ("a", 2, [True, None])}
    (tmp_path / "d.pkl").write_bytes(pickle.dumps(data, protocol=protocol))
    loaded = safe_load_pickle(str(tmp_path / "d.pkl"))
    np.testing.assert_array_equal(loaded["w"], data["w"])
    assert (loaded["n"], loaded["t"]) == (data["n"], data["t"])


class RunsCommand:
    """A pickle payload that would create `sentinel` if it were ever unpickled unrestricted."""

    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


LOADERS = {
    "safe_load_pickle": lambda path: safe_load_pickle(path + "/token2vec.pkl"),
    "load_embeddings": lambda path: load_embeddings(path + "/token2vec.pkl"),
    "load_vocab": lambda path: load_vocab(path + "/vocab"),
    "load_embeddings(npy, vocab)": lambda path: load_embeddings(path + "/e.npy"),
}


@pytest.mark.parametrize("loader", LOADERS)
def test_pickles_that_run_code_are_refused_unexecuted(tmp_path, loader):
    sentinel = tmp_path / "pwned"
    payload = pickle.dumps({"the": RunsCommand(sentinel)})
    for name in ("token2vec.pkl", "vocab"):
        (tmp_path / name).write_bytes(payload)
    (tmp_path / "e.npy").write_bytes(npy_bytes(VECTORS))
    with pytest.raises(UnsafePickleError, match=r"(token2vec\.pkl|vocab) refers to the global posix\.system"):
        LOADERS[loader](str(tmp_path))
    assert not sentinel.exists()


def test_other_globals_are_refused_too(tmp_path):
    (tmp_path / "set.pkl").write_bytes(pickle.dumps({"s": {1, 2}}, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"__builtin__\.set"):
        safe_load_pickle(str(tmp_path / "set.pkl"))
