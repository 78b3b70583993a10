"""lrp.importers model loading: Keras 2 HDF5 (tf-keras), Keras 3 .keras and ArrasL directories -> ModelParts,
checked by the engine's logits against the source framework's own outputs."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import re
import struct
import uuid
import zipfile
from typing import ClassVar

import fsspec
import h5py
import keras
import numpy as np
import pytest
import tf_keras

from lrp import DenseWeights, LSTMExplainer, ModelParts, UnsupportedModelError
from lrp.importers import (
    UnsafePickleError,
    load_model_parts,
    parts_from_keras_model,
    verify_parts,
)
from lrp.importers.keras_model import config_records
from lrp.importers.keras_v3 import archive_config, parts_from_archive
from lrp.reference import random_model

K2 = tf_keras.layers
K3 = keras.layers


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


ACTIVATIONS = {
    "softmax": lambda z: np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True),
    "sigmoid": sigmoid,
    "linear": lambda z: z,
}


def engine_logits(parts, x, lengths=None):
    """The float64 engine's logits (B, C); x: token ids (B, T) with an Embedding, else vectors (B, T, E)."""
    explainer = LSTMExplainer.from_parts(parts, "float64")
    return explainer.predict(x if parts.embedding is None else explainer.embed(x), lengths)


def randomized(model):
    """Give every weight N(0, 0.5) values, so gates leave their linear range (and hard_sigmoid clips)."""
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0.0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


LENGTHS = np.array([7, 4, 1])


def padded_ids(vocab_size=20):
    """Token ids (3, 7) in [1, vocab_size), right-padded with 0 to LENGTHS."""
    ids = np.random.default_rng(2).integers(1, vocab_size, size=(3, 7))
    return np.where(np.arange(7) < LENGTHS[:, None], ids, 0).astype("int32"), LENGTHS


def padded_vectors(dim=6):
    """Vectors (3, 7, dim), zero after LENGTHS (what Masking masks)."""
    x = np.random.default_rng(3).normal(size=(3, 7, dim)).astype("float32")
    return x * (np.arange(7) < LENGTHS[:, None])[..., None], LENGTHS


def full_ids(vocab_size=20):
    return np.random.default_rng(4).integers(0, vocab_size, size=(3, 7)).astype("int32"), None


def tf_keras_bidirectional_embedding():
    """Sequential; Embedding(mask_zero); Bidirectional then hard_sigmoid LSTM; softmax."""
    return tf_keras.Sequential(
        [
            K2.Embedding(20, 5, mask_zero=True, input_shape=(None,)),
            K2.Bidirectional(K2.LSTM(4, return_sequences=True)),
            K2.Dropout(0.5),
            K2.LSTM(3, recurrent_activation="hard_sigmoid"),
            K2.Dense(3, activation="softmax"),
        ]
    )


def tf_keras_functional_vectors():
    """Functional; vector input with Masking; LSTM then Bidirectional; Dense without bias, sigmoid."""
    inputs = tf_keras.Input((None, 6))
    h = K2.LSTM(4, return_sequences=True, recurrent_activation="hard_sigmoid")(K2.Masking()(inputs))
    h = K2.Bidirectional(K2.LSTM(3, recurrent_activation="hard_sigmoid"))(h)
    return tf_keras.Model(inputs, K2.Dense(2, use_bias=False, activation="sigmoid")(h))


def tf_keras_unmasked_embedding():
    """Sequential; Embedding without mask; SpatialDropout1D; LSTM without bias; linear Dense."""
    return tf_keras.Sequential(
        [
            tf_keras.Input((None,), dtype="int32"),
            K2.Embedding(20, 5),
            K2.SpatialDropout1D(0.2),
            K2.LSTM(4, use_bias=False),
            K2.Dense(2),
        ]
    )


def tf_keras_gru_embedding():
    """Sequential; Embedding(mask_zero); Bidirectional hard_sigmoid GRU (reset_after), then LSTM; softmax."""
    return tf_keras.Sequential(
        [
            K2.Embedding(20, 5, mask_zero=True, input_shape=(None,)),
            K2.Bidirectional(K2.GRU(4, return_sequences=True, recurrent_activation="hard_sigmoid")),
            K2.LSTM(3),
            K2.Dense(3, activation="softmax"),
        ]
    )


def tf_keras_gru_vectors():
    """Functional; vector input with Masking; GRU without reset_after, then Bidirectional GRU without bias."""
    inputs = tf_keras.Input((None, 6))
    h = K2.GRU(4, return_sequences=True, reset_after=False)(K2.Masking()(inputs))
    h = K2.Bidirectional(K2.GRU(3, use_bias=False, recurrent_activation="hard_sigmoid"))(h)
    return tf_keras.Model(inputs, K2.Dense(2)(h))


TF_KERAS_CASES = {
    "bidirectional-embedding-softmax.h5": (tf_keras_bidirectional_embedding, padded_ids),
    "gru-embedding.h5": (tf_keras_gru_embedding, padded_ids),
    "gru-vectors.hdf5": (tf_keras_gru_vectors, padded_vectors),
    "functional-masking-nobias.hdf5": (tf_keras_functional_vectors, padded_vectors),
    "unmasked-embedding.h5": (tf_keras_unmasked_embedding, full_ids),
}


def recurrent_activations(parts) -> set[str]:
    return {direction.recurrent_activation for layer in parts.layers for direction in layer.directions}


def dense_activation(model) -> str:
    return [layer for layer in model.layers if type(layer).__name__ == "Dense"][-1].get_config()["activation"]


def assert_logits_match(model, framework, parts, x, lengths):
    """Engine logits == the model's with a linear Dense; activation(engine logits) == the model's output."""
    activation = dense_activation(model)
    probabilities = np.asarray(model(x, training=False))
    model.layers[-1].activation = framework.activations.linear
    logits = engine_logits(parts, x, lengths)
    np.testing.assert_allclose(logits, np.asarray(model(x, training=False)), atol=1e-5)
    np.testing.assert_allclose(ACTIVATIONS[activation](logits), probabilities, atol=1e-5)


@pytest.mark.parametrize("name", TF_KERAS_CASES)
def test_tf_keras_hdf5_files_that_keras_3_refuses(tmp_path, name):
    build, inputs = TF_KERAS_CASES[name]
    model, path = randomized(build()), str(tmp_path / name)
    model.save(path)
    with pytest.raises(Exception):  # noqa: B017 - whatever Keras 3 raises, it cannot load these files
        keras.models.load_model(path, compile=False)
    parts, in_memory = load_model_parts(path), parts_from_keras_model(model)
    assert "hard_sigmoid" not in recurrent_activations(parts)  # tf-keras's is "hard_sigmoid_keras2"
    assert recurrent_activations(in_memory) == recurrent_activations(parts)
    assert_logits_match(model, tf_keras, parts, *inputs())
    np.testing.assert_array_equal(engine_logits(in_memory, *inputs()), engine_logits(parts, *inputs()))


def keras_2_2_layout(source, target):
    """Rewrite a tf-keras HDF5 file the way Keras 2.2 laid it out: byte-string attributes, the Sequential
    config as a bare list of layers, weight names without the cell scope ('lstm/kernel:0')."""
    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        config = json.loads(src.attrs["model_config"])
        dst.attrs["model_config"] = json.dumps({**config, "config": config["config"]["layers"]}).encode()
        dst.attrs["keras_version"] = b"2.2.4"
        layer_names = list(src["model_weights"].attrs["layer_names"])
        dst.create_group("model_weights").attrs["layer_names"] = [name.encode() for name in layer_names]
        for layer in layer_names:
            old, new = src["model_weights"][layer], dst["model_weights"].create_group(layer)
            names = [re.sub(r"/(lstm|gru)_cell(_\d+)?/", "/", name) for name in old.attrs["weight_names"]]
            for name, old_name in zip(names, old.attrs["weight_names"], strict=True):
                new[name] = old[old_name][()]
            new.attrs["weight_names"] = [name.encode() for name in names]


@pytest.mark.parametrize("build", [tf_keras_bidirectional_embedding, tf_keras_gru_embedding])
def test_keras_2_2_hdf5_layout(tmp_path, build):
    model = randomized(build())
    model.save(tmp_path / "new.h5")
    keras_2_2_layout(tmp_path / "new.h5", tmp_path / "old.h5")
    with h5py.File(tmp_path / "old.h5") as f:
        names = [name for layer in f["model_weights"].values() for name in layer.attrs["weight_names"]]
    assert len(names) == 12 and not any("_cell" in str(name) for name in names)
    parts = load_model_parts(str(tmp_path / "old.h5"))
    assert "hard_sigmoid" not in recurrent_activations(parts)
    assert_logits_match(model, tf_keras, parts, *padded_ids())


def keras_bidirectional_embedding():
    """Sequential; Embedding(mask_zero); Bidirectional hard_sigmoid LSTM, then LSTM; softmax."""
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            K3.Embedding(20, 5, mask_zero=True),
            K3.Bidirectional(K3.LSTM(4, return_sequences=True, recurrent_activation="hard_sigmoid")),
            K3.LSTM(3),
            K3.Dense(3, activation="softmax"),
        ]
    )


def keras_functional_vectors():
    """Functional; vector input with Masking; stacked LSTMs, hard_sigmoid; Dropout; Dense without bias."""
    inputs = keras.Input((None, 6))
    h = K3.LSTM(4, return_sequences=True)(K3.Masking()(inputs))
    h = K3.Dropout(0.3)(K3.Bidirectional(K3.LSTM(3, recurrent_activation="hard_sigmoid"))(h))
    return keras.Model(inputs, K3.Dense(2, use_bias=False)(h))


def keras_gru_embedding():
    """Sequential; Embedding(mask_zero); Bidirectional hard_sigmoid GRU without reset_after; LSTM; GRU."""
    gru = K3.GRU(4, return_sequences=True, recurrent_activation="hard_sigmoid", reset_after=False)
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            K3.Embedding(20, 5, mask_zero=True),
            K3.Bidirectional(gru),
            K3.LSTM(3, return_sequences=True),
            K3.GRU(3),
            K3.Dense(3, activation="softmax"),
        ]
    )


def keras_gru_vectors():
    """Functional; vector input with Masking; Bidirectional GRU (reset_after, no bias), hard_sigmoid GRU."""
    inputs = keras.Input((None, 6))
    h = K3.Bidirectional(K3.GRU(4, return_sequences=True, use_bias=False))(K3.Masking()(inputs))
    h = K3.GRU(3, recurrent_activation="hard_sigmoid")(h)
    return keras.Model(inputs, K3.Dense(2)(h))


KERAS_CASES = {
    "bidirectional-embedding.keras": (keras_bidirectional_embedding, padded_ids),
    "gru-embedding.keras": (keras_gru_embedding, padded_ids),
    "gru-vectors.keras": (keras_gru_vectors, padded_vectors),
    "functional-vectors.keras": (keras_functional_vectors, padded_vectors),
    "keras3-legacy.h5": (keras_functional_vectors, padded_vectors),
}


@pytest.mark.parametrize("name", KERAS_CASES)
def test_keras_3_round_trip(tmp_path, name):
    build, inputs = KERAS_CASES[name]
    model, path = randomized(build()), str(tmp_path / name)
    model.save(path)
    parts = load_model_parts(path)
    assert "hard_sigmoid" in recurrent_activations(parts)
    assert_logits_match(model, keras, parts, *inputs())


def keras_repeated_layers():
    """Sequential with two of each recurrent layer class (their state groups are counted: lstm, lstm_1)."""
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            K3.Embedding(20, 5),
            K3.LSTM(4, return_sequences=True),
            K3.Bidirectional(K3.GRU(3, return_sequences=True)),
            K3.LSTM(3, return_sequences=True),
            K3.Bidirectional(K3.LSTM(2)),
            K3.Dense(2),
        ]
    )


@pytest.mark.parametrize(
    "build", [*(b for n, (b, _) in KERAS_CASES.items() if n.endswith(".keras")), keras_repeated_layers]
)
def test_keras_archives_are_read_without_keras_as_keras_reads_them(tmp_path, build):
    """model.weights.h5 read with h5py gives exactly the parts Keras's own loading gives."""
    model = randomized(build())
    model.save(tmp_path / "m.keras")
    records = config_records(archive_config(str(tmp_path / "m.keras"), "m.keras"))
    read = parts_from_archive(str(tmp_path / "m.keras"), records, "m.keras", None)
    assert read is not None
    loaded = parts_from_keras_model(keras.saving.load_model(tmp_path / "m.keras"), source="m.keras")
    assert same_parts(read, loaded)


def same_parts(a, b) -> bool:
    """Whether two ModelParts hold equal fields, arrays compared exactly."""

    def same(x, y) -> bool:
        if dataclasses.is_dataclass(x):
            return type(x) is type(y) and all(
                same(getattr(x, f.name), getattr(y, f.name)) for f in dataclasses.fields(x)
            )
        if isinstance(x, (tuple, list)):
            return len(x) == len(y) and all(map(same, x, y))
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            return np.array_equal(x, y)
        return x == y

    return same(a, b)


def test_in_memory_keras_model_and_its_padding_conventions():
    parts = parts_from_keras_model(randomized(keras_bidirectional_embedding()))
    assert (parts.oov_id, parts.tokens, parts.embedding.shape) == (None, None, (20, 5))
    assert (parts.mask_zero, parts.mask_value) == (True, None)


def test_the_oov_id_has_one_default_none():
    """ModelParts and LSTMExplainer agree: no OOV id unless one is given (importers find it in the
    vocabulary), and from_parts carries it over."""
    layers, dense = random_model(np.random.default_rng(3), 4, 3, 1, False, 2)
    parts = ModelParts(tuple(layers), dense)
    assert parts.oov_id is None and LSTMExplainer(layers, dense).oov_id is None
    assert LSTMExplainer.from_parts(parts).oov_id is None
    assert LSTMExplainer.from_parts(dataclasses.replace(parts, oov_id=3)).oov_id == 3


@pytest.mark.parametrize("saved", [False, True])
def test_how_the_model_masks_is_recorded(tmp_path, saved):
    """mask_zero of the Embedding, and the value of a Masking layer (not only 0), in memory and saved."""
    models = {
        "plain": [keras.Input((None,), dtype="int32"), K3.Embedding(9, 4), K3.LSTM(3)],
        "masking": [keras.Input((None, 4)), K3.Masking(0.25), K3.LSTM(3)],
    }
    found = {}
    for name, stack in models.items():
        model = keras.Sequential([*stack, K3.Dense(2)])
        model.save(tmp_path / f"{name}.keras")
        parts = load_model_parts(str(tmp_path / f"{name}.keras")) if saved else parts_from_keras_model(model)
        found[name] = (parts.mask_zero, parts.mask_value)
    assert found == {"plain": (False, None), "masking": (False, 0.25)}


def text_vectorization_model():
    vectorize = K3.TextVectorization(output_mode="int")
    vectorize.adapt(["the cat sat", "the dog ran"])
    return keras.Sequential(
        [keras.Input((1,), dtype="string"), vectorize, K3.Embedding(8, 4), K3.LSTM(3), K3.Dense(2)]
    )


def test_text_vectorization_vocabulary_and_vocab_file_override(tmp_path):
    text_vectorization_model().save(tmp_path / "tv.keras")
    parts = load_model_parts(str(tmp_path / "tv.keras"))
    assert parts.tokens[:3] == ("", "[UNK]", "the") and len(parts.tokens) == 7
    assert parts.oov_id == 1
    (tmp_path / "vocab.txt").write_text("<pad>\n<unk>\nthe\ncat\n")
    parts = load_model_parts(str(tmp_path / "tv.keras"), vocab=str(tmp_path / "vocab.txt"))
    assert (parts.tokens, parts.oov_id) == (("<pad>", "<unk>", "the", "cat"), 1)


def test_vocabulary_longer_than_the_embedding_is_refused(tmp_path):
    keras_bidirectional_embedding().save(tmp_path / "m.keras")
    (tmp_path / "vocab.txt").write_text("\n".join(f"w{n}" for n in range(21)))
    with pytest.raises(ValueError, match=r"21 tokens .* only 20 rows"):
        load_model_parts(str(tmp_path / "m.keras"), vocab=str(tmp_path / "vocab.txt"))


def test_keras_file_with_a_lambda_is_refused_and_never_run(tmp_path, monkeypatch):
    sentinel = tmp_path / "lambda-ran"
    monkeypatch.setenv("LRP_TEST_SENTINEL", str(sentinel))
    touch = lambda x: open(os.environ["LRP_TEST_SENTINEL"], "w").close() or x  # noqa: E731
    model = keras.Sequential([keras.Input((None, 3)), K3.Lambda(touch), K3.LSTM(2), K3.Dense(1)])
    model.save(tmp_path / "lambda.keras")
    sentinel.unlink()
    with pytest.raises(UnsupportedModelError, match=r"'lambda' \(Lambda\) is not supported"):
        load_model_parts(str(tmp_path / "lambda.keras"))
    assert not sentinel.exists()


def sequential(*layers, input_shape=(None, 6)):
    return keras.Sequential([keras.Input(input_shape), *layers])


def functional_with_attention():
    inputs = keras.Input((None, 6))
    sequence = K3.LSTM(4, return_sequences=True)(inputs)
    attended = K3.Attention(name="bad")([sequence, sequence])
    return keras.Model(inputs, K3.Dense(2)(K3.LSTM(3)(attended)))


def functional_with_return_state():
    inputs = keras.Input((None, 6))
    output, _, _ = K3.LSTM(3, return_state=True, name="bad")(inputs)
    return keras.Model(inputs, K3.Dense(2)(output))


UNSUPPORTED = {
    "SimpleRNN": lambda: sequential(K3.SimpleRNN(3, name="bad"), K3.Dense(2)),
    "Conv1D": lambda: sequential(K3.Conv1D(4, 2, name="bad"), K3.LSTM(3), K3.Dense(2)),
    "Attention": functional_with_attention,
    "TimeDistributed": lambda: sequential(
        K3.LSTM(3, return_sequences=True), K3.TimeDistributed(K3.Dense(2), name="bad")
    ),
    "LayerNormalization": lambda: sequential(K3.LSTM(3), K3.LayerNormalization(name="bad"), K3.Dense(2)),
    "merge_mode='sum'": lambda: sequential(
        K3.Bidirectional(K3.LSTM(3), merge_mode="sum", name="bad"), K3.Dense(2)
    ),
    "wraps a SimpleRNN": lambda: sequential(K3.Bidirectional(K3.SimpleRNN(3), name="bad"), K3.Dense(2)),
    "forward and a backward layer of different kinds": lambda: sequential(
        K3.Bidirectional(K3.LSTM(3), backward_layer=K3.GRU(3, go_backwards=True), name="bad"), K3.Dense(2)
    ),
    "has go_backwards=True": lambda: sequential(K3.GRU(3, go_backwards=True, name="bad"), K3.Dense(2)),
    "has activation='sigmoid'": lambda: sequential(K3.GRU(3, activation="sigmoid", name="bad"), K3.Dense(2)),
    "return_state=True": functional_with_return_state,
    "stateful=True": lambda: keras.Sequential(
        [keras.Input(batch_shape=(2, 5, 6)), K3.LSTM(3, stateful=True, name="bad"), K3.Dense(2)]
    ),
    "go_backwards=True": lambda: sequential(K3.LSTM(3, go_backwards=True, name="bad"), K3.Dense(2)),
    "activation='relu'": lambda: sequential(K3.LSTM(3, activation="relu", name="bad"), K3.Dense(2)),
    "cannot follow layer 'head'": lambda: sequential(
        K3.LSTM(3), K3.Dense(4, name="head"), K3.Dense(2, name="bad")
    ),
    "ends the model": lambda: sequential(K3.LSTM(3, name="bad")),
    "last recurrent layer but has return_sequences=True": lambda: sequential(
        K3.LSTM(3, return_sequences=True, name="bad"), K3.Dense(2)
    ),
}


@pytest.mark.parametrize("problem", UNSUPPORTED)
def test_unsupported_layers_are_named_with_the_supported_family(problem):
    with pytest.raises(
        UnsupportedModelError, match=rf"Layer 'bad' .*{re.escape(problem)}.*; supported models are"
    ):
        parts_from_keras_model(UNSUPPORTED[problem]())


def test_unsupported_layer_in_an_hdf5_file(tmp_path):
    model = tf_keras.Sequential([tf_keras.Input((None, 6)), K2.SimpleRNN(3, name="bad"), K2.Dense(2)])
    model.save(tmp_path / "rnn.h5")
    with pytest.raises(UnsupportedModelError, match=r"'bad' \(SimpleRNN\) is not supported"):
        load_model_parts(str(tmp_path / "rnn.h5"))


def test_subclassed_model_is_refused():
    class Classifier(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(UnsupportedModelError, match="Classifier is a subclassed model"):
        parts_from_keras_model(Classifier())


def memory_copy(path) -> str:
    """Put a local file into the fsspec memory filesystem; return its memory:// URL."""
    url = f"memory://lrp-tests/{uuid.uuid4().hex}/{os.path.basename(path)}"
    fsspec.filesystem("memory").pipe(url, path.read_bytes())
    return url


@pytest.mark.parametrize("name", ["m.keras", "m.h5"])
def test_models_load_from_fsspec_urls(tmp_path, name):
    framework = keras if name.endswith(".keras") else tf_keras
    model = framework.Sequential(
        [
            framework.Input((None,), dtype="int32"),
            framework.layers.Embedding(9, 3),
            framework.layers.LSTM(2),
            framework.layers.Dense(2),
        ]
    )
    model.save(tmp_path / name)
    local = load_model_parts(str(tmp_path / name))
    for url in (memory_copy(tmp_path / name), (tmp_path / name).as_uri()):
        remote = load_model_parts(url)
        np.testing.assert_array_equal(remote.embedding, local.embedding)
        np.testing.assert_array_equal(remote.layers[0].forward.kernel, local.layers[0].forward.kernel)


def test_verify_parts_against_the_source_model(tmp_path):
    randomized(keras_bidirectional_embedding()).save(tmp_path / "m.keras")
    randomized(text_vectorization_model()).save(tmp_path / "tv.keras")
    randomized(tf_keras_functional_vectors()).save(tmp_path / "m.h5")
    randomized(keras_gru_embedding()).save(tmp_path / "gru.keras")
    randomized(tf_keras_gru_vectors()).save(tmp_path / "gru.h5")
    for path in (str(tmp_path / name) for name in ("m.keras", "tv.keras", "m.h5", "gru.keras", "gru.h5")):
        parts = load_model_parts(path)
        assert verify_parts(parts, path, LSTMExplainer.from_parts(parts))


def test_verify_parts_catches_a_mismatch(tmp_path):
    randomized(tf_keras_unmasked_embedding()).save(tmp_path / "m.h5")
    parts = load_model_parts(str(tmp_path / "m.h5"))
    dense = DenseWeights(parts.dense.kernel, parts.dense.bias + 0.1)
    shifted = LSTMExplainer(parts.layers, dense, embedding=parts.embedding)
    with pytest.raises(ValueError, match=r"logits up to 0\.1"):
        verify_parts(parts, str(tmp_path / "m.h5"), shifted)


class Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 `str` (BINSTRING opcodes, UTF-8 bytes), as ArrasL's files were."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_python2_str(self, obj):
        data = obj.encode("utf-8") if isinstance(obj, str) else obj
        head = (
            pickle.SHORT_BINSTRING + bytes([len(data)])
            if len(data) < 256
            else pickle.BINSTRING + struct.pack("<i", len(data))
        )
        self.write(head + data)
        self.memoize(obj)

    dispatch[str] = save_python2_str
    dispatch[bytes] = save_python2_str


def python2_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def arras_weights(rng, embedding_dim=5, hidden=4, classes=3):
    shapes = {"Wxh": (4 * hidden, embedding_dim), "bxh": (4 * hidden,), "Whh": (4 * hidden, hidden)}
    shapes |= {"bhh": (4 * hidden,), "Why": (classes, hidden)}
    return {
        f"{name}_{side}": rng.normal(size=shape)
        for name, shape in shapes.items()
        for side in ("Left", "Right")
    }


def write_arras(directory, weights, tokens, embedding, dumps=pickle.dumps):
    fs, root = fsspec.core.url_to_fs(directory)
    buffer = io.BytesIO()
    np.save(buffer, embedding)
    for name, data in {
        "model": dumps(weights),
        "vocab": dumps(tokens),
        "embeddings.npy": buffer.getvalue(),
    }.items():
        fs.pipe(f"{root}/{name}", data)


def arras_reference(weights, embedding, ids):
    """The ArrasL forward of one sentence: gate rows i, g, f, o, two biases, Right over the reversed words."""
    x = embedding[ids]

    def final_state(side, xs):
        h = c = np.zeros(weights[f"Whh_{side}"].shape[1])
        for x_t in xs:
            z = weights[f"Wxh_{side}"] @ x_t + weights[f"Whh_{side}"] @ h
            i, g, f, o = np.split(z + weights[f"bxh_{side}"] + weights[f"bhh_{side}"], 4)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        return h

    return weights["Why_Left"] @ final_state("Left", x) + weights["Why_Right"] @ final_state("Right", x[::-1])


@pytest.mark.parametrize("where", ["local", "memory", "python2"])
def test_arras_directory_matches_the_reference_forward(tmp_path, where):
    rng = np.random.default_rng(5)
    weights, embedding = arras_weights(rng), rng.normal(size=(9, 5))
    tokens = ["the", "<unk>", "café", *(f"w{n}" for n in range(6))]
    directory = f"memory://lrp-tests/{uuid.uuid4().hex}" if where == "memory" else str(tmp_path)
    write_arras(directory, weights, tokens, embedding, python2_pickle if where == "python2" else pickle.dumps)
    parts = load_model_parts(directory)
    assert (parts.tokens, parts.oov_id) == (tuple(tokens), 1)
    assert parts.dense.bias is None and np.array_equal(parts.embedding, embedding)  # no row added
    sentences = [[2, 0, 5, 8, 1], [3, 3], [7]]
    ids = np.array([s + [4] * (5 - len(s)) for s in sentences])  # any padding id: masked by the lengths
    expected = [arras_reference(weights, embedding, s) for s in sentences]
    np.testing.assert_allclose(engine_logits(parts, ids, [len(s) for s in sentences]), expected, atol=1e-10)


class RunsCommand:
    """A pickle payload that would create `sentinel` if it were ever unpickled unrestricted."""

    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


def test_arras_model_pickle_that_runs_code_is_refused(tmp_path):
    sentinel = tmp_path / "pwned"
    rng = np.random.default_rng(6)
    write_arras(str(tmp_path), arras_weights(rng), ["a"], rng.normal(size=(1, 5)))
    (tmp_path / "model").write_bytes(pickle.dumps({"Wxh_Left": RunsCommand(sentinel)}))
    with pytest.raises(UnsafePickleError, match=r"model refers to the global posix\.system"):
        load_model_parts(str(tmp_path))
    assert not sentinel.exists()


def test_verify_is_skipped_for_arras(tmp_path):
    rng = np.random.default_rng(7)
    write_arras(str(tmp_path), arras_weights(rng), ["a", "b"], rng.normal(size=(2, 5)))
    parts = load_model_parts(str(tmp_path))
    with pytest.warns(UserWarning, match="Cannot verify"):
        assert not verify_parts(parts, str(tmp_path), LSTMExplainer.from_parts(parts))


def test_unknown_model_format(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match=r"Cannot tell the model format of .*model\.onnx; .* a PyTorch"):
        load_model_parts(str(tmp_path / "model.onnx"))


def test_an_archive_this_reader_does_not_know_is_left_to_keras(tmp_path):
    """No metadata.json, or one from another Keras than 3.x: parts_from_archive declines (None)."""
    randomized(keras_bidirectional_embedding()).save(tmp_path / "m.keras")
    records = config_records(archive_config(str(tmp_path / "m.keras"), "m.keras"))
    with zipfile.ZipFile(tmp_path / "m.keras") as source:
        entries = {name: source.read(name) for name in source.namelist()}
    for name, metadata in (("none.keras", None), ("old.keras", b'{"keras_version": "2.15.0"}')):
        with zipfile.ZipFile(tmp_path / name, "w") as archive:
            for entry, data in entries.items():
                if entry != "metadata.json":
                    archive.writestr(entry, data)
            if metadata is not None:
                archive.writestr("metadata.json", metadata)
        assert parts_from_archive(str(tmp_path / name), records, name, None) is None
    assert parts_from_archive(str(tmp_path / "m.keras"), records, "m.keras", None) is not None
