"""Word deletion (lrp.deletion): deletion order, zeroed vectors, tallies, and the scores of each method."""

from __future__ import annotations

import numpy as np
import pytest

from lrp import LSTMExplainer
from lrp.deletion import (
    DeletionCounts,
    delete_tokens,
    deletion_counts,
    deletion_ranks,
    token_scores,
    without_masked_steps,
)
from lrp.reference import random_model


class BagOfVectors:
    """A stand-in classifier: logits (B, C = E = 2) are the sums of the review's token vectors plus a bias
    that breaks ties for class 1."""

    mask_value = None

    def predict(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        valid = np.arange(x.shape[1])[None, :, None] < np.asarray(lengths)[:, None, None]
        return np.where(valid, x, 0.0).sum(axis=1) + np.array([0.0, 0.5])


def test_ranks_follow_the_scores_and_put_padding_last():
    scores = np.array([[0.5, -1.0, 2.0, 9.0], [3.0, 1.0, 0.0, 0.0]])
    lengths = np.array([3, 2])
    np.testing.assert_array_equal(
        deletion_ranks(scores, lengths, np.array([True, True])), [[1, 2, 0, 3], [0, 1, 2, 3]]
    )
    np.testing.assert_array_equal(
        deletion_ranks(scores, lengths, np.array([False, False])), [[1, 0, 2, 3], [1, 0, 2, 3]]
    )


def test_delete_tokens_zeroes_at_most_the_review():
    x = np.ones((2, 4, 3))
    ranks = np.array([[1, 2, 0, 3], [1, 0, 2, 3]])
    lengths = np.array([3, 2])
    once = delete_tokens(x, ranks, lengths, 1)
    np.testing.assert_array_equal(once[..., 0], [[1, 1, 0, 1], [1, 0, 1, 1]])
    everything = delete_tokens(x, ranks, lengths, 10)
    np.testing.assert_array_equal(everything[..., 0], [[0, 0, 0, 1], [0, 0, 1, 1]])
    assert np.all(x == 1.0), "the input must not change"


def test_steps_a_masking_layer_skips_are_left_out():
    x = np.array(
        [[[1.0, 2.0], [0.0, 0.0], [3.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [5.0, 5.0], [0.0, 0.0], [7, 7]]]
    )
    kept, lengths = without_masked_steps(x, np.array([3, 3]), 0.0)
    np.testing.assert_array_equal(lengths, [2, 1])
    np.testing.assert_array_equal(kept[0], [[1, 2], [3, 0], [0, 0], [0, 0]])
    np.testing.assert_array_equal(kept[1], [[5, 5], [0, 0], [0, 0], [0, 0]])  # step 3 is padding


def test_deleted_words_of_a_masking_model_are_skipped_as_keras_skips_them():
    """Masking(0.0): a deleted (zeroed) word is a step the Keras model skips; the tallies must agree with
    the model's own predictions on the zeroed vectors."""
    import keras

    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [keras.Input((None, 3)), keras.layers.Masking(0.0), keras.layers.LSTM(4), keras.layers.Dense(2)]
    )
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(0.0, 2.0, w.shape).astype("float32") for w in model.get_weights()])
    explainer = LSTMExplainer.from_keras(model, dtype="float64")
    x = rng.normal(size=(300, 6, 3))
    lengths, labels = np.full(300, 6), rng.integers(0, 2, 300)
    scores = {"random": rng.normal(size=(300, 6))}
    counts = deletion_counts(explainer, x, lengths, labels, scores, max_k=3)
    correct = np.asarray(model(x)).argmax(axis=1) == labels
    ranks = deletion_ranks(scores["random"], lengths, correct)
    for k in range(4):
        right = np.asarray(model(delete_tokens(x, ranks, lengths, k))).argmax(axis=1) == labels
        np.testing.assert_array_equal(
            counts.hits[0, :, k], [(correct & right).sum(), (~correct & right).sum()]
        )


def test_counts_on_a_classifier_worked_out_by_hand():
    # Review 0 (label 0, logits 3 vs 2.5: correct): a strong token for class 0, two weak ones for class 1.
    # Review 1 (label 1, logits 2 vs 1.5: misclassified): a token for class 0 outweighs one for class 1.
    x = np.array([[[3.0, 0.0], [0.0, 1.0], [0.0, 1.0]], [[0.0, 1.0], [2.0, 0.0], [0.0, 0.0]]])
    lengths, labels = np.array([3, 2]), np.array([0, 1])
    relevance = np.array([[3.0, -1.0, -1.0], [1.0, -2.0, 0.0]])  # evidence for the true class
    reversed_ = -relevance
    counts = deletion_counts(BagOfVectors(), x, lengths, labels, {"exact": relevance, "worst": reversed_}, 3)
    np.testing.assert_array_equal(counts.reviews, [1, 1])
    # exact: deleting the strong token flips review 0; deleting the class-0 token first fixes review 1.
    np.testing.assert_array_equal(counts.hits[0], [[1, 0, 0, 0], [0, 1, 1, 1]])
    # worst: review 0 holds until its strong token goes last; review 1 is fixed only once both are gone.
    np.testing.assert_array_equal(counts.hits[1], [[1, 1, 1, 0], [0, 0, 1, 1]])


def test_counts_add_over_batches_and_rows_hold_accuracies():
    rng = np.random.default_rng(0)
    x, lengths = rng.normal(size=(6, 5, 2)), np.array([5, 4, 3, 5, 2, 1])
    labels = np.array([0, 1, 0, 1, 1, 0])
    scores = {"a": rng.normal(size=(6, 5)), "b": rng.normal(size=(6, 5))}
    whole = deletion_counts(BagOfVectors(), x, lengths, labels, scores, 4)
    halves = [
        deletion_counts(BagOfVectors(), x[s], lengths[s], labels[s], {m: v[s] for m, v in scores.items()}, 4)
        for s in (slice(0, 3), slice(3, 6))
    ]
    summed = halves[0] + halves[1]
    np.testing.assert_array_equal(summed.hits, whole.hits)
    np.testing.assert_array_equal(summed.reviews, whole.reviews)
    rows = whole.rows()
    assert len(rows) == 2 * 2 * 5 and set(rows[0]) == {"method", "k", "accuracy", "n_reviews", "setting"}
    at_zero = {(r["method"], r["setting"]): r["accuracy"] for r in rows if r["k"] == 0}
    assert at_zero == {("a", "correct"): 1.0, ("a", "misclassified"): 0.0} | {
        ("b", "correct"): 1.0,
        ("b", "misclassified"): 0.0,
    }


def test_rows_leave_out_an_empty_setting():
    counts = DeletionCounts(("lrp",), np.array([[[2, 1], [0, 0]]]), np.array([2, 0]))
    assert [r["setting"] for r in counts.rows()] == ["correct", "correct"]
    with pytest.raises(ValueError, match="same methods"):
        _ = counts + DeletionCounts(("gi",), counts.hits, counts.reviews)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_token_scores_explain_the_true_class(kind):
    rng = np.random.default_rng(1)
    explainer = LSTMExplainer(*random_model(rng, 3, 4, 1, True, 2, kinds=kind), dtype="float64")
    x, lengths, labels = rng.normal(size=(3, 4, 3)), np.array([4, 2, 3]), np.array([1, 0, 1])
    scores = token_scores(explainer, x, lengths, labels, ("lrp", "gi", "sa", "random"), rng, 0.01, 0.0)
    lrp = explainer.explain(x, lengths, labels, 0.01, 0.0).token_relevance
    np.testing.assert_allclose(scores["lrp"], lrp)
    np.testing.assert_allclose(scores["gi"], explainer.attribute(x, lengths, labels, "gi").sum(-1))
    np.testing.assert_allclose(scores["sa"], explainer.attribute(x, lengths, labels, "sa").sum(-1))
    assert scores["random"].shape == (3, 4) and np.all((scores["random"] >= 0) & (scores["random"] < 1))
