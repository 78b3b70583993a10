"""Fixtures shared by the transform and pipeline tests: tiny random Keras 3 models, one per session, saved as
.keras with their vocabulary file (Embedding(mask_zero=True) -> Bidirectional(LSTM) -> Dense, three classes;
and a GRU model), and the engine called directly on reviews, which the Beam code must reproduce."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
WORDS = ("good", "bad", "great", "awful", "movie", "film", "plot", "actor", "boring", "fun", "the", "a", "is")
WORDS += ("was", "not", "very", "and", "but", "Loud", "quiet", "story", "ending")
VOCAB = ("<pad>", "<unk>", *WORDS)
"""id 0 pads (mask_zero), id 1 is the model's OOV id; "Loud" is the only capitalised entry."""
CLASSES = 3


@dataclass(frozen=True)
class TinyModel:
    """Paths of the session's model and vocabulary files."""

    model: str
    vocab: str

    def flags(self) -> list[str]:
        return ["--model", self.model, "--vocab", self.vocab]


def save_tiny_model(directory: pathlib.Path, recurrent: list) -> TinyModel:
    """Embedding(mask_zero) over VOCAB -> the `recurrent` Keras layers -> Dense(CLASSES), with random
    weights, saved as tiny.keras + vocab.txt in `directory`."""
    import keras

    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(len(VOCAB), 4, mask_zero=True),
            *recurrent,
            keras.layers.Dense(CLASSES),
        ]
    )
    rng = np.random.default_rng(7)
    model.set_weights([rng.normal(0.0, 0.8, w.shape).astype("float32") for w in model.get_weights()])
    model.save(directory / "tiny.keras")
    (directory / "vocab.txt").write_text("".join(f"{t}\n" for t in VOCAB), encoding="utf-8")
    return TinyModel(str(directory / "tiny.keras"), str(directory / "vocab.txt"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> TinyModel:
    """A random 3-class bidirectional LSTM over VOCAB."""
    import keras

    return save_tiny_model(
        tmp_path_factory.mktemp("tiny-model"), [keras.layers.Bidirectional(keras.layers.LSTM(3))]
    )


@pytest.fixture(scope="session")
def tiny_gru_model(tmp_path_factory) -> TinyModel:
    """A random 3-class GRU model over VOCAB: Bidirectional(GRU) (reset_after) -> GRU (reset_after=False,
    hard_sigmoid)."""
    import keras

    layers = keras.layers
    recurrent = [
        layers.Bidirectional(layers.GRU(3, return_sequences=True)),
        layers.GRU(3, reset_after=False, recurrent_activation="hard_sigmoid"),
    ]
    return save_tiny_model(tmp_path_factory.mktemp("tiny-gru-model"), recurrent)


class Engine:
    """LSTMExplainer called directly, one review at a time, as the reference for the Beam stages."""

    def __init__(self, tiny: TinyModel) -> None:
        from lrp import LSTMExplainer

        self.explainers = {
            dtype: LSTMExplainer.from_file(tiny.model, dtype=dtype, vocab=tiny.vocab)
            for dtype in ("float32", "float64")
        }
        self.vocab = self.explainers["float32"].vocab

    def ids(self, tokens: list[str]) -> np.ndarray:
        """Vocabulary ids, the model's OOV id (1) for unknown tokens."""
        return np.array([self.vocab.get(t, 1) for t in tokens], dtype=np.int32)

    def explain(
        self,
        tokens: list[str],
        target=None,
        eps: float = 1e-3,
        bias_factor: float = 0.0,
        dtype: str = "float32",
    ):
        """The engine's Explanation of one review (batch of one, unpadded)."""
        explainer = self.explainers[dtype]
        x = explainer.embed(self.ids(tokens)[None, :])
        return explainer.explain(x, None, target, eps, bias_factor)


@pytest.fixture(scope="session")
def engine(tiny_model) -> Engine:
    return Engine(tiny_model)


@pytest.fixture(scope="session")
def gru_engine(tiny_gru_model) -> Engine:
    return Engine(tiny_gru_model)


@pytest.fixture(scope="session")
def loaded_model(tiny_model):
    """The transforms' LoadedModel of the tiny model (float32)."""
    from transforms import ModelSpec

    return ModelSpec(tiny_model.model, vocab=tiny_model.vocab).load()


@pytest.fixture
def repo_pythonpath(monkeypatch) -> dict[str, str]:
    """PYTHONPATH with the repository first, for subprocesses and Beam worker processes; returns the env."""
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    return dict(os.environ)


@dataclass(frozen=True)
class DemoRun:
    """`python -m pipeline run` with no arguments, run in the empty directory `cwd`: what it printed."""

    cwd: pathlib.Path
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> DemoRun:
    """The bundled demo, run once per session as a user would (the README's examples query its output)."""
    cwd = tmp_path_factory.mktemp("demo")
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline", "run"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return DemoRun(cwd, completed.returncode, completed.stdout, completed.stderr)


def source_of_line(path, n: int) -> str:
    """The `source` ReadCorpus gives line n (1-based) of a text or JSONL file: "path@BYTE_OFFSET"."""
    data = pathlib.Path(path).read_bytes()
    offset = 0
    for _ in range(n - 1):
        offset = data.index(b"\n", offset) + 1
    return f"{path}@{offset}"


@pytest.fixture(scope="session")
def line_source():
    """source_of_line(path, n): the source of line n of a text or JSONL file."""
    return source_of_line


def bundle_outputs(dofn, element) -> list:
    """Everything a DoFn emits for one element in one bundle (setup to teardown), without a pipeline;
    finish_bundle's windowed values unwrapped."""
    import apache_beam as beam

    def unwindowed(output):
        if isinstance(output, beam.pvalue.TaggedOutput):
            return beam.pvalue.TaggedOutput(output.tag, output.value.value)
        return output.value

    dofn.setup()
    dofn.start_bundle()
    outputs = list(dofn.process(element)) + [unwindowed(o) for o in dofn.finish_bundle() or ()]
    dofn.teardown()
    return outputs
