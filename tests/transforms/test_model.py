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


def test_unknown_tokens_are_dropped_where_a_masking_layer_would_skip_them(tmp_path):
    """Keras skips the all-zero step of an unknown token; Embed drops it: the engine sees what Keras saw."""
    from transforms.embed import EmbedReview
    from transforms.model import SharedModel

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((None, 4)),
            keras.layers.Masking(0.0),
            keras.layers.Bidirectional(keras.layers.LSTM(3)),
            keras.layers.Dense(2),
        ]
    )
    model.save(tmp_path / "masked.keras")
    vectors = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    np.save(tmp_path / "vectors.npy", vectors)
    (tmp_path / "words.txt").write_text("good\nbad\nfilm\n", encoding="utf-8")
    spec = ModelSpec(
        str(tmp_path / "masked.keras"), str(tmp_path / "vectors.npy"), str(tmp_path / "words.txt")
    )
    embed = EmbedReview(SharedModel(spec), oov="zero")
    embed.setup()
    assert embed.rule.unknown_id in embed.rule.masked
    (review,) = embed.process(
        {"tokens": ["good", "zzz", "film"], "source": "s", "text": "", "review_id": "r"}
    )
    assert review["tokens"] == ["good", "film"] and review["ids"].tolist() == [0, 2]
    assert review["positions"].tolist() == [0, 2]
    with_unknown = np.stack([vectors[0], np.zeros(4, np.float32), vectors[2]])[None]
    keras_logits = model.predict(with_unknown, verbose=0)
    engine_logits = embed.model.get().explainer.predict(vectors[[0, 2]][None])
    np.testing.assert_allclose(engine_logits, keras_logits, rtol=1e-5, atol=1e-6)
    assert embed.model.get().masked == {3}
