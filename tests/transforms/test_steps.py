"""The steps the model computes (transforms.steps): the engine explains exactly what the Keras model computes,
for texts drawn to hold the tokens a model masks (the id-0 token of Embedding(mask_zero=True), tokens whose
vector equals a Masking layer's value), known and unknown alike."""

from __future__ import annotations

import numpy as np
import pytest

from transforms.steps import StepRule, model_steps

WORDS = ["<pad>", "<unk>", "good", "hollow", "bad", "film", "plot", "void", "fun", "dull"]
"""id 0 pads, id 1 is the OOV id; "hollow" (2) and "void" (7) get the mask value as their vector."""
MASKED_WORDS = (3, 7)


def rule(**changes) -> StepRule:
    settings = {"token_ids": {w: i for i, w in enumerate(WORDS)}, "unknown_id": 1, "masked": frozenset({0})}
    return StepRule(**{**settings, **changes})


def test_masked_steps_are_left_out_and_positions_name_the_tokens_place():
    steps = model_steps(["<pad>", "good", "xyzzy", "<pad>", "bad"], rule())
    assert steps.ids.tolist() == [2, 1, 4] and steps.positions.tolist() == [1, 2, 4]
    assert steps.unknown == 1 and steps.reason is None
    skipped = model_steps(["<pad>", "good", "xyzzy", "<pad>", "bad"], rule(oov="skip"))
    assert skipped.ids.tolist() == [2, 4] and skipped.positions.tolist() == [1, 4]


def test_an_unknown_token_whose_vector_is_masked_is_left_out_too():
    steps = model_steps(["xyzzy", "good"], rule(unknown_id=10, masked=frozenset({0, 10})))
    assert steps.ids.tolist() == [2] and steps.positions.tolist() == [1]


@pytest.mark.parametrize(
    ("tokens", "changes", "reason"),
    [
        (["xyzzy", "qqq"], {}, "no token of the review is in the vocabulary (2 unknown)"),
        (["good", "xyzzy"], {"oov": "dead-letter"}, "1 unknown tokens: xyzzy"),
        (["<pad>", "<pad>"], {}, "the model masks every token of the review: <pad> <pad>"),
        (["<pad>", "xyzzy"], {"oov": "skip"}, "the model masks every token of the review: <pad>"),
        ([], {}, "the review has no tokens"),
    ],
)
def test_reviews_the_model_cannot_be_asked_about_get_a_reason(tokens, changes, reason):
    steps = model_steps(tokens, rule(**changes))
    assert steps.reason == reason and len(steps.ids) == len(steps.positions) == 0


def obvious_steps(tokens: list[str], rule: StepRule) -> tuple[list[int], list[int], int, bool]:
    """(ids, positions, unknown, refused) by the rule's words, one token at a time."""
    ids = [rule.token_ids.get(t, -1) for t in tokens]
    unknown = sum(i < 0 for i in ids)
    if unknown == len(tokens) or (unknown and rule.oov == "dead-letter"):
        return [], [], unknown, True
    kept = [(p, rule.unknown_id if i < 0 else i) for p, i in enumerate(ids) if i >= 0 or rule.oov == "zero"]
    steps = [(p, i) for p, i in kept if i not in rule.masked]
    return [i for _, i in steps], [p for p, _ in steps], unknown, not steps


@pytest.mark.parametrize("oov", ["zero", "skip", "dead-letter"])
@pytest.mark.parametrize("masked", [frozenset(), frozenset({0}), frozenset({0, 1, 3})])
def test_steps_equal_the_obvious_rule_on_random_reviews(oov, masked):
    rng = np.random.default_rng(5)
    words = [*WORDS, "xyzzy", "qqq"]
    for _ in range(300):
        tokens = [words[i] for i in rng.integers(0, len(words), rng.integers(1, 8))]
        r = rule(oov=oov, masked=masked)
        steps = model_steps(tokens, r)
        ids, positions, unknown, refused = obvious_steps(tokens, r)
        assert (steps.reason is not None) == refused and steps.unknown == unknown
        assert steps.ids.tolist() == ids and steps.positions.tolist() == positions
        assert steps.ids.dtype == steps.positions.dtype == np.int32


def masking_models(directory):
    """name -> (saved model, vocabulary file, embeddings file or None): Embedding(mask_zero) with a uni-
    directional LSTM; Embedding -> Masking(0) -> Bidirectional(LSTM) with known tokens whose vector is zero;
    and a model over vectors, Masking(0.25), with word vectors equal to 0.25 for two tokens."""
    import keras

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    vocab = directory / "vocab.txt"
    vocab.write_text("".join(f"{w}\n" for w in WORDS), encoding="utf-8")
    ids = keras.Input((None,), dtype="int32")
    stacks = {
        "mask_zero": [ids, keras.layers.Embedding(len(WORDS), 4, mask_zero=True), keras.layers.LSTM(3)],
        "masking_zero": [
            ids,
            keras.layers.Embedding(len(WORDS), 4),
            keras.layers.Masking(0.0),
            keras.layers.Bidirectional(keras.layers.LSTM(3)),
        ],
        "masking_vectors": [keras.Input((None, 4)), keras.layers.Masking(0.25), keras.layers.LSTM(3)],
    }
    models = {}
    for name, stack in stacks.items():
        model = keras.Sequential([*stack, keras.layers.Dense(2)])
        weights = [rng.normal(0.0, 0.8, w.shape).astype("float32") for w in model.get_weights()]
        if name == "masking_zero":
            weights[0][list(MASKED_WORDS)] = 0.0
        model.set_weights(weights)
        model.save(directory / f"{name}.keras")
        models[name] = (str(directory / f"{name}.keras"), str(vocab), None)
    vectors = rng.normal(0.0, 0.8, (len(WORDS), 4)).astype("float32")
    vectors[list(MASKED_WORDS)] = 0.25
    lines = [f"{w} {' '.join(map(str, v))}\n" for w, v in zip(WORDS, vectors)]
    (directory / "vectors.txt").write_text("".join(lines), encoding="utf-8")
    models["masking_vectors"] = (models["masking_vectors"][0], None, str(directory / "vectors.txt"))
    return models


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return masking_models(tmp_path_factory.mktemp("masking"))


@pytest.mark.parametrize("name", ["mask_zero", "masking_zero", "masking_vectors"])
def test_predict_equals_the_keras_models_prediction_on_texts_with_masked_tokens(models, name):
    import keras

    from transforms import ModelSpec

    path, vocab, embeddings = models[name]
    loaded = ModelSpec(path, embeddings=embeddings, vocab=vocab).load()
    keras_model = keras.saving.load_model(path)
    rng = np.random.default_rng(11)
    pool = [*WORDS, "<pad>", "hollow", "void", "unseen", "words"]
    compared = 0
    for _ in range(40):
        tokens = list(rng.choice(pool, size=rng.integers(1, 10)))
        steps = model_steps(tokens, loaded.rule("zero"))
        if steps.reason is not None:
            continue
        ids = np.array([[loaded.token_ids.get(t, loaded.unknown_id) for t in tokens]])
        keras_input = ids if embeddings is None else loaded.table[ids]  # the model over vectors
        expected = np.asarray(keras_model(keras_input, training=False))
        got = loaded.explainer.predict(loaded.table[steps.ids][None])
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=" ".join(tokens))
        explained = loaded.explainer.explain(loaded.table[steps.ids][None])
        np.testing.assert_allclose(explained.logits, expected, rtol=1e-5, atol=1e-5)
        compared += 1
    assert compared >= 25
    zero_row = {len(WORDS)} if name == "masking_zero" else set()  # the table's row for padding
    assert loaded.masked == ({0} if name == "mask_zero" else {*MASKED_WORDS, *zero_row})
