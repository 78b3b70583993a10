"""ModelSpec.load: a model without an Embedding layer takes its vectors from --embeddings, and --vocab then
names the rows of a .npy table (not the model's vocabulary)."""

from __future__ import annotations

import keras
import numpy as np

from transforms import ModelSpec


def test_npy_vectors_with_their_vocabulary(tmp_path):
    model = keras.Sequential(
        [keras.Input((None, 4)), keras.layers.Bidirectional(keras.layers.LSTM(3)), keras.layers.Dense(2)]
    )
    model.save(tmp_path / "vectors-in.keras")
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "vectors.npy", vectors)
    (tmp_path / "words.txt").write_text("good\nbad\nfilm\n", encoding="utf-8")
    spec = ModelSpec(
        str(tmp_path / "vectors-in.keras"), str(tmp_path / "vectors.npy"), str(tmp_path / "words.txt")
    )
    loaded = spec.load()
    assert loaded.token_ids == {"good": 0, "bad": 1, "film": 2}
    np.testing.assert_array_equal(loaded.table[:3], vectors)
    assert loaded.unknown_id == loaded.zero_id == 3 and not loaded.table[3].any()
