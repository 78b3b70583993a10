"""PyTorch classifiers (nn.Embedding -> nn.LSTM / nn.GRU -> nn.Linear) from .safetensors and torch.save zip
files written here without torch: the zip reader, the architecture recovery and its refusals, the model
spec file, and the logits checked against a numpy forward pass from PyTorch's equations and against Keras."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pathlib
import pickle
import re

import fsspec
import keras
import numpy as np
import pytest
from torch_files import (
    Architecture,
    Parameter,
    Stored,
    TorchPickler,
    classifier_state,
    torch_forward,
    write_archive,
    write_safetensors,
    write_torch_zip,
)

from lrp import LSTMExplainer, UnsupportedModelError
from lrp.importers import UnsafePickleError, load_model_parts
from lrp.importers.torch_state import parts_from_state_dict, read_state_dict
from lrp.importers.torch_zip import load_torch_zip

LENGTHS = np.array([6, 3, 1, 5])


def padded_ids(vocab_size: int) -> np.ndarray:
    """Token ids (4, 6) in [1, vocab_size), right-padded with 0 to LENGTHS."""
    ids = np.random.default_rng(5).integers(1, vocab_size, size=(len(LENGTHS), LENGTHS.max()))
    return np.where(np.arange(LENGTHS.max()) < LENGTHS[:, None], ids, 0)


def write_vocab(path, size: int) -> str:
    tokens = ["<pad>", "<unk>", *(f"w{n}" for n in range(2, size))]
    path.write_text("".join(f"{t}\n" for t in tokens), encoding="utf-8")
    return str(path)


def write_weights(tmp_path, state, fmt: str) -> str:
    path = tmp_path / f"model.{fmt}"
    (write_safetensors if fmt == "safetensors" else write_torch_zip)(path, state)
    return str(path)


def engine_logits(path: str, vocab: str | None, ids: np.ndarray) -> np.ndarray:
    explainer = LSTMExplainer.from_file(path, vocab=vocab, dtype="float64")
    return explainer.predict(explainer.embed(ids), LENGTHS)


# --- the torch.save zip reader ---------------------------------------------------------------------------


def bfloat16_words(values: np.ndarray) -> np.ndarray:
    """The bfloat16 words of float32 values that bfloat16 holds exactly."""
    return (np.asarray(values, np.float32).view(np.uint32) >> 16).astype(np.uint16)


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_zip_reader_honours_dtype_shape_stride_offset_and_byte_order(tmp_path, byteorder):
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(2, 3)).astype(np.float32)
    shared = np.arange(10, dtype=np.float64)
    exact = np.array([1.5, -2.0, 0.15625, 384.0], np.float32)
    saved = {
        "float32": matrix,
        "float16": rng.normal(size=(4,)).astype(np.float16),
        "int64": np.array([[1, -2], [3, 2**40]], np.int64),
        "bool": np.array([True, False, True]),
        "transposed": Stored(matrix.ravel(), 0, (3, 2), (1, 3)),
        "head_of_shared": Stored(shared, 0, (2, 2), (2, 1)),
        "tail_of_shared": Stored(shared, 6, (4,), (1,)),
        "broadcast": Stored(shared, 1, (2, 3), (0, 2)),
        "bfloat16": Stored(bfloat16_words(exact), 0, (2, 2), (2, 1), "BFloat16Storage"),
        "empty": np.zeros((0, 3), np.float32),
        "scalar": np.array(2.5, np.float32),
        "parameter": Parameter(Stored.of(matrix)),
    }
    write_torch_zip(tmp_path / "m.pt", saved, archive="archive", byteorder=byteorder)
    got = load_torch_zip((tmp_path / "m.pt").read_bytes(), "m.pt")
    expected = {
        "float32": matrix,
        "float16": saved["float16"],
        "int64": saved["int64"],
        "bool": saved["bool"],
        "transposed": matrix.T,
        "head_of_shared": shared[:4].reshape(2, 2),
        "tail_of_shared": shared[6:],
        "broadcast": np.array([[1.0, 3.0, 5.0]] * 2),
        "bfloat16": exact.reshape(2, 2),
        "empty": saved["empty"],
        "scalar": saved["scalar"],
        "parameter": matrix,
    }
    assert list(got) == list(expected)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype and got[name].dtype.isnative, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_a_checkpoint_that_holds_the_state_dict_gives_it(tmp_path):
    state = classifier_state(Architecture())
    write_torch_zip(tmp_path / "ckpt.pth", {"epoch": 3, "model_state_dict": state, "best": 0.9})
    got = read_state_dict(str(tmp_path / "ckpt.pth"))
    assert list(got) == list(state) and all(np.array_equal(got[k], v) for k, v in state.items())
    write_torch_zip(tmp_path / "two.pth", {"model": state, "ema": state})
    with pytest.raises(ValueError, match=r"two\.pth holds a OrderedDict, not one state dict of tensors"):
        read_state_dict(str(tmp_path / "two.pth"))


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def torch_pickle(saved) -> tuple[bytes, dict[str, bytes]]:
    buffer = io.BytesIO()
    pickler = TorchPickler(buffer, "little")
    pickler.dump(saved)
    return buffer.getvalue(), pickler.records


def test_a_pickle_that_would_run_code_is_refused_unexecuted(tmp_path):
    marker = tmp_path / "ran"
    data, records = torch_pickle({"weight": Stored.of(np.ones(3, np.float32)), "x": RunsCode(marker)})
    write_archive(tmp_path / "hostile.pt", data, records)
    with pytest.raises(
        UnsafePickleError, match=r"hostile\.pt refers to the global posix\.system; only state"
    ):
        load_model_parts(str(tmp_path / "hostile.pt"))
    assert not marker.exists()


class Classifier:
    """Stands for an nn.Module saved whole with torch.save(model)."""


@pytest.mark.parametrize(
    ("data", "records", "error", "message"),
    [
        (
            pickle.dumps(Classifier()),
            {},
            UnsafePickleError,
            "refers to the global test_import_torch.Classifier",
        ),
        (b"Pos.system\n.", {}, UnsafePickleError, "persistent id 'os.system', not a tensor storage"),
        (
            *torch_pickle({"w": Stored(np.zeros(4, np.float32), 2, (3,), (1,))}),
            ValueError,
            "reaches element 4",
        ),
        (
            torch_pickle({"w": Stored.of(np.zeros(4, np.float32))})[0],
            {},
            ValueError,
            "lacks the tensor data model/data/0",
        ),
        (
            torch_pickle({"w": Stored.of(np.zeros(4, np.float32))})[0],
            {"0": b"1234"},
            ValueError,
            "fewer than 4",
        ),
        (*torch_pickle({"w": Stored(np.zeros(4, np.float32), 0, (2,), (-1,))}), ValueError, "invalid layout"),
    ],
    ids=[
        "whole-model",
        "persistent-id",
        "out-of-bounds",
        "missing-record",
        "short-record",
        "negative-stride",
    ],
)
def test_archives_that_are_not_state_dicts_are_refused(tmp_path, data, records, error, message):
    write_archive(tmp_path / "bad.pt", data, records)
    with pytest.raises(error, match=message):
        read_state_dict(str(tmp_path / "bad.pt"))


def test_files_that_are_not_torch_zips_are_refused(tmp_path):
    (tmp_path / "legacy.pt").write_bytes(pickle.dumps({"w": [1.0]}))
    with pytest.raises(
        ValueError, match=r"legacy\.pt is not the zip archive torch\.save writes.*safetensors"
    ):
        load_model_parts(str(tmp_path / "legacy.pt"))
    (tmp_path / "bad.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(ValueError, match=r"bad\.safetensors is not a readable safetensors file"):
        load_model_parts(str(tmp_path / "bad.safetensors"))


# --- logits: numpy forward from PyTorch's equations, Keras ---------------------------------------------

LSTM_CASES = {
    "bidirectional": Architecture(),
    "two-layers-no-bias-nested-names": Architecture(
        layers=2, bidirectional=False, bias=False, embedding="emb", recurrent="encoder.rnn", head="classifier"
    ),
    "bidirectional-two-layers": Architecture(layers=2, embedding="embed", recurrent="rnn", head="out"),
}
GRU_CASES = {name: dataclasses.replace(arch, kind="gru") for name, arch in LSTM_CASES.items()}


CASES = {f"lstm-{n}": a for n, a in LSTM_CASES.items()} | {f"gru-{n}": a for n, a in GRU_CASES.items()}


@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
@pytest.mark.parametrize("name", CASES)
def test_logits_equal_pytorch_equations(tmp_path, name, fmt):
    arch = CASES[name]
    state = classifier_state(arch)
    path = write_weights(tmp_path, state, fmt)
    ids = padded_ids(arch.vocab_size)
    logits = engine_logits(path, write_vocab(tmp_path / "vocab.txt", arch.vocab_size), ids)
    np.testing.assert_allclose(logits, torch_forward(arch, state, ids, LENGTHS), rtol=0, atol=1e-10)


def keras_model(parts) -> keras.Model:
    """A Keras 3 model (Embedding(mask_zero) -> [Bidirectional] LSTM/GRU layers -> Dense) with the imported
    weights in Keras's layout: LSTM gates i, f, c, o; GRU gates z, r, h with reset_after's (2, 3H) bias."""
    layers = [
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(*parts.embedding.shape, mask_zero=True),
    ]
    weights = [parts.embedding]
    for n, layer in enumerate(parts.layers):
        sequences, units = n < len(parts.layers) - 1, layer.forward.units
        if layer.kind == "lstm":
            cell = keras.layers.LSTM(units, return_sequences=sequences)
        else:
            cell = keras.layers.GRU(units, return_sequences=sequences, reset_after=True)
        layers.append(cell if layer.backward is None else keras.layers.Bidirectional(cell))
        for d in layer.directions:
            bias = d.bias if layer.kind == "lstm" else np.stack([d.bias, d.recurrent_bias])
            weights += [d.kernel, d.recurrent_kernel, bias]
    layers.append(keras.layers.Dense(parts.dense.classes, use_bias=parts.dense.bias is not None))
    weights += [parts.dense.kernel] + ([] if parts.dense.bias is None else [parts.dense.bias])
    model = keras.Sequential(layers)
    model.set_weights(weights)
    return model


@pytest.mark.parametrize("name", CASES)
def test_converted_weights_give_keras_the_pytorch_logits(name):
    """Keras i, f, c, o = PyTorch i, f, g, o; Keras z, r, h = PyTorch r, z, n reordered, b_hn kept inside
    the reset gate (reset_after=True)."""
    arch = CASES[name]
    state = classifier_state(arch)
    parts = parts_from_state_dict(state)
    assert {layer.kind for layer in parts.layers} == {arch.kind}
    ids = padded_ids(arch.vocab_size)
    got = np.asarray(keras_model(parts)(ids, training=False))
    np.testing.assert_allclose(got, torch_forward(arch, state, ids, LENGTHS), rtol=0, atol=2e-5)


def test_lstm_biases_are_summed_and_kernels_transposed():
    arch = Architecture(bidirectional=False)
    state = classifier_state(arch)
    direction = parts_from_state_dict(state).layers[0].forward
    np.testing.assert_array_equal(direction.kernel, state["lstm.weight_ih_l0"].T)
    np.testing.assert_array_equal(direction.recurrent_kernel, state["lstm.weight_hh_l0"].T)
    np.testing.assert_allclose(
        direction.bias, state["lstm.bias_ih_l0"].astype(float) + state["lstm.bias_hh_l0"], rtol=0, atol=0
    )


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_conservation_with_eps_0_and_bias_factor_1(tmp_path, kind):
    arch = dataclasses.replace(LSTM_CASES["bidirectional-two-layers"], kind=kind)
    path = write_weights(tmp_path, classifier_state(arch), "pt")
    explainer = LSTMExplainer.from_file(path, dtype="float64")
    result = explainer.explain(
        explainer.embed(padded_ids(arch.vocab_size)), LENGTHS, eps=0.0, bias_factor=1.0
    )
    assert np.abs(result.residual).max() <= 1e-9


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_padded_batch_with_lengths_equals_each_review_alone(tmp_path, kind):
    """pack_padded_sequence semantics: the backward direction starts at each review's last token."""
    arch = dataclasses.replace(LSTM_CASES["bidirectional-two-layers"], kind=kind)
    explainer = LSTMExplainer.from_file(
        write_weights(tmp_path, classifier_state(arch), "safetensors"), "float64"
    )
    ids = padded_ids(arch.vocab_size)
    batch = explainer.explain(explainer.embed(ids), LENGTHS, target=1, bias_factor=1.0)
    for row, length in enumerate(LENGTHS):
        alone = explainer.explain(explainer.embed(ids[row : row + 1, :length]), target=1, bias_factor=1.0)
        np.testing.assert_allclose(batch.logits[row], alone.logits[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(batch.relevance[row, :length], alone.relevance[0], rtol=0, atol=1e-12)
        assert not batch.relevance[row, length:].any()


# --- recovering the architecture, and refusing what is outside the family -------------------------------


def refused(state, match: str, **kwargs):
    with pytest.raises(UnsupportedModelError, match=match) as caught:
        parts_from_state_dict(state, source="model.pt", **kwargs)
    message = str(caught.value)
    assert "\n" not in message and "Parameters found: " in message and "model spec file" in message
    for name, value in state.items():
        assert f"{name} {tuple(value.shape)}" in message
    return message


def with_extra(arch: Architecture, **extra) -> dict[str, np.ndarray]:
    state = classifier_state(arch)
    state.update({name.replace("__", "."): np.ones(shape, np.float32) for name, shape in extra.items()})
    return state


def test_an_attention_module_is_refused_by_name():
    state = with_extra(Architecture(), attention__weight=(1, 8), attention__bias=(1,))
    refused(state, r"the head is ambiguous among 'attention', 'fc'")


def test_a_second_linear_layer_is_refused_by_name():
    state = classifier_state(Architecture(head="fc1", classes=16))
    state.update({"fc2.weight": np.ones((3, 16), np.float32), "fc2.bias": np.ones(3, np.float32)})
    refused(state, r"fc2\.weight, fc2\.bias belong to no embedding, LSTM or head")


def test_an_lstm_projection_is_refused():
    refused(
        with_extra(Architecture(), lstm__weight_hr_l0=(4, 4)), r"lstm\.weight_hr_l0 is an LSTM projection"
    )


def test_a_head_over_pooled_outputs_is_refused():
    state = classifier_state(Architecture(units=4, head_input=("forward", "backward", "forward", "backward")))
    refused(state, r"no head: expected a Linear over 8 features \(weight \(C, 8\)\)")


def test_a_vanilla_rnn_and_a_model_without_recurrence_are_refused():
    rnn = classifier_state(Architecture(), seed=1)
    rnn = {k: (v[: len(v) // 4] if "_l0" in k else v) for k, v in rnn.items()}
    refused(rnn, r"lstm has 4 gate rows for 4 units: not an LSTM \(4 H\) or GRU \(3 H\)")
    cnn = {
        "embedding.weight": np.ones((12, 5)),
        "conv.weight": np.ones((8, 5, 3)),
        "fc.weight": np.ones((3, 8)),
    }
    refused(cnn, r"exactly one nn\.LSTM or nn\.GRU .* is needed, found none")


def test_two_recurrent_modules_and_missing_directions_are_refused():
    state = classifier_state(Architecture(recurrent="lstm1")) | classifier_state(
        Architecture(recurrent="lstm2")
    )
    refused(state, r"found several \('lstm1', 'lstm2'\)")
    state = classifier_state(Architecture(layers=2))
    del state["lstm.weight_ih_l1_reverse"], state["lstm.weight_hh_l1_reverse"]
    del state["lstm.bias_ih_l1_reverse"], state["lstm.bias_hh_l1_reverse"]
    refused(state, r"lstm has weights for layer 0, layer 0 reverse, layer 1: not every layer 0\.\.1 in 2")


def test_module_prefixes_are_found_not_fixed():
    arch = Architecture(embedding="model.emb", recurrent="model.encoder", head="model.classifier.2")
    parts = parts_from_state_dict(classifier_state(arch))
    assert parts.embedding.shape == (12, 5) and parts.dense.kernel.shape == (8, 3)


def test_a_vocabulary_tells_the_embedding_from_a_head_of_the_same_width():
    """Embedding (12, 8) and a bias-free head (3, 8) both fit each role; the vocabulary's size decides."""
    arch = Architecture(embed=8, units=4, bias=False)
    state = classifier_state(arch)
    refused(state, r"the head is ambiguous among 'embedding', 'fc'")
    parts = parts_from_state_dict(state, tokens=[f"w{n}" for n in range(12)])
    assert parts.embedding.shape == (12, 8) and parts.dense.classes == 3


# --- the model spec file -------------------------------------------------------------------------------


def test_a_spec_file_names_what_cannot_be_told_apart(tmp_path):
    arch = Architecture(embed=8, units=4, bias=False)
    state = classifier_state(arch)
    write_torch_zip(tmp_path / "model.pt", state)
    spec = {"weights": "model.pt", "embedding": "embedding", "head": "fc"}
    (tmp_path / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    parts = load_model_parts(str(tmp_path / "spec.json"))
    assert parts.dense.classes == 3
    ids = padded_ids(arch.vocab_size)
    logits = engine_logits(str(tmp_path / "spec.json"), None, ids)
    np.testing.assert_allclose(logits, torch_forward(arch, state, ids, LENGTHS), rtol=0, atol=1e-10)


@pytest.mark.parametrize("reads", [("backward",), ("forward",), ("backward", "forward")])
def test_head_input_in_a_yaml_spec(tmp_path, reads):
    """A head over h_n[-1] (the last layer's backward state), h_n[-2] or [backward, forward]."""
    arch = Architecture(layers=2, head_input=reads)
    state = classifier_state(arch)
    write_safetensors(tmp_path / "weights.safetensors", state)
    if len(reads) == 1:
        refused(state, "a head over one direction's h_n needs head_input in a model spec file")
    (tmp_path / "model.yaml").write_text(
        f"weights: weights.safetensors\nhead_input: [{', '.join(reads)}]\n", encoding="utf-8"
    )
    ids = padded_ids(arch.vocab_size)
    logits = engine_logits(str(tmp_path / "model.yaml"), None, ids)
    np.testing.assert_allclose(logits, torch_forward(arch, state, ids, LENGTHS), rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("weights: model.pt\nheads: fc\n", "unknown keys heads; the keys are weights, embedding"),
        ("embedding: emb\n", "must be a mapping with a 'weights' key"),
        ("weights: model.pt\nhead_input: [left]\n", "head_input must list the directions"),
        ("weights: model.pt\nhead_input: [[forward]]\n", "head_input must list the directions"),
        ("weights: null\n", "weights must be a string, got None"),
        ("weights: [model.pt\n", "is not a YAML or JSON model spec"),
        ("weights: model.pt\npadding_idx: 0\n", "unknown keys padding_idx; the keys are weights"),
        ("weights: model.h5\n", r"model\.h5 is not a \.safetensors, \.pt or \.pth file"),
        ("weights: model.pt\nhead: attention\n", r"the spec's head 'attention' is not a Linear over 8"),
    ],
)
def test_bad_spec_files_are_refused(tmp_path, text, message):
    write_torch_zip(tmp_path / "model.pt", classifier_state(Architecture()))
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_model_parts(str(tmp_path / "spec.yaml"))


# --- with torch installed: its own files and forward pass --------------------------------------------------


def test_torch_reads_our_files_and_we_read_its_files_and_match_its_forward(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    embedding, lstm, fc = (
        torch.nn.Embedding(12, 5),
        torch.nn.LSTM(5, 4, 2, bidirectional=True),
        torch.nn.Linear(8, 3),
    )
    model = torch.nn.ModuleDict({"embedding": embedding, "lstm": lstm, "fc": fc})
    torch.save(model.state_dict(), tmp_path / "torch.pt")
    ours = read_state_dict(str(tmp_path / "torch.pt"))
    assert {k: v.numpy().tolist() for k, v in model.state_dict().items()} == {
        k: v.tolist() for k, v in ours.items()
    }
    write_torch_zip(tmp_path / "ours.pt", ours)
    loaded = torch.load(tmp_path / "ours.pt", weights_only=True)
    assert all(np.array_equal(loaded[k].numpy(), v) for k, v in ours.items())
    ids = padded_ids(12)
    with torch.no_grad():
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            embedding(torch.as_tensor(ids)), torch.as_tensor(LENGTHS), batch_first=True, enforce_sorted=False
        )
        _, (h_n, _) = lstm(packed)
        expected = fc(torch.cat([h_n[-2], h_n[-1]], dim=1)).double().numpy()
    np.testing.assert_allclose(engine_logits(str(tmp_path / "torch.pt"), None, ids), expected, atol=1e-5)


def test_the_readme_spec_file_example(tmp_path):
    readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    (tmp_path / "spec.yaml").write_text(
        re.search(r"```yaml\n(.*?)```", readme, re.S).group(1), encoding="utf-8"
    )
    arch = Architecture(
        embedding="encoder.emb", recurrent="encoder.rnn", head="classifier", head_input=("backward",)
    )
    state = classifier_state(arch)
    write_torch_zip(tmp_path / "classifier.pt", state)
    ids = padded_ids(arch.vocab_size)
    logits = engine_logits(
        str(tmp_path / "spec.yaml"), write_vocab(tmp_path / "vocab.txt", arch.vocab_size), ids
    )
    np.testing.assert_allclose(logits, torch_forward(arch, state, ids, LENGTHS), rtol=0, atol=1e-10)


def test_a_vocabulary_longer_than_the_embedding_is_refused():
    with pytest.raises(
        ValueError, match=r"The vocabulary has 13 tokens but the Embedding of m\.pt has only 12 rows"
    ):
        parts_from_state_dict(
            classifier_state(Architecture()), tokens=[f"w{n}" for n in range(13)], source="m.pt"
        )


def test_weights_and_spec_files_at_urls(tmp_path):
    """A spec at an fsspec URL names its weights relative to itself."""
    arch = Architecture(kind="gru", bidirectional=False)
    state = classifier_state(arch)
    write_safetensors(tmp_path / "w.safetensors", state)
    directory = f"memory://torch-{os.getpid()}"
    with fsspec.open(f"{directory}/w.safetensors", "wb") as f:
        f.write((tmp_path / "w.safetensors").read_bytes())
    with fsspec.open(f"{directory}/spec.yml", "w") as f:
        f.write("weights: w.safetensors\nrecurrent: lstm\n")
    ids = padded_ids(arch.vocab_size)
    for path in (f"{directory}/w.safetensors", f"{directory}/spec.yml"):
        logits = engine_logits(path, None, ids)
        np.testing.assert_allclose(logits, torch_forward(arch, state, ids, LENGTHS), rtol=0, atol=1e-10)


def test_a_model_without_an_embedding_takes_vectors():
    arch = Architecture(kind="gru")
    state = classifier_state(arch)
    vectors = state.pop("embedding.weight")
    parts = parts_from_state_dict(state)
    assert parts.embedding is None
    ids = padded_ids(arch.vocab_size)
    logits = LSTMExplainer.from_parts(parts, "float64").predict(vectors[ids], LENGTHS)
    expected = torch_forward(arch, state | {"embedding.weight": vectors}, ids, LENGTHS)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-10)
