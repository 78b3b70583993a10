"""Python and notebook use: explain_text tokenises and looks tokens up as `lstm-lrp run` does, results draw
heatmaps in Jupyter, reprs are readable, from_file takes word vectors, demo_paths finds the demo."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

from lrp import LSTMExplainer
from pipeline.colours import contrast
from pipeline.demo import demo_paths
from pipeline.notebook import TextExplainer


@pytest.fixture(scope="module")
def text_explainer(tiny_model) -> TextExplainer:
    return TextExplainer.from_file(tiny_model.model, vocab=tiny_model.vocab)


def test_explain_text_gives_what_the_pipeline_gives(text_explainer, direct_run, corpus):
    tokens = direct_run.sorted("tokens")
    ids = sorted(set(tokens["review_id"]))
    results = text_explainer.explain_text([corpus.text(i) for i in ids])
    for review_id, result in zip(ids, results):
        rows = tokens[tokens["review_id"] == review_id].sort_values("position")
        assert list(result.tokens) == rows["token"].tolist()
        np.testing.assert_allclose(result.relevance, rows["relevance"], rtol=1e-4, atol=1e-6)
        assert result.target == rows["target_class"].iloc[0]


def test_a_text_the_pipeline_would_dead_letter_is_refused_by_name(text_explainer):
    with pytest.raises(ValueError, match=r"Text 1 \('xyzzy plugh'\) cannot be explained: no token"):
        text_explainer.explain_text(["good movie", "xyzzy plugh"])


def test_results_render_as_heatmaps_in_a_notebook(text_explainer):
    results = text_explainer.explain_text(["a <b>good</b> movie", "Boring plot"])
    page = results._repr_html_()
    assert page.count("<div") == 2 and "<b>good</b>" not in page and "&lt;b&gt;good&lt;/b&gt;" in page
    for background, ink in re.findall(r"background:#([0-9a-f]{6});color:#([0-9a-f]{6})", page):
        rgb = [tuple(int(c[i : i + 2], 16) for i in (0, 2, 4)) for c in (background, ink)]
        assert contrast(*rgb) >= 4.5
    assert results[1].tokens == ("boring", "plot")  # lowercased, as the CLI does by default
    assert np.isclose(results[1].probabilities.sum(), 1.0)


def test_reprs_are_readable(text_explainer):
    (result,) = text_explainer.explain_text("good film")
    assert re.fullmatch(
        r"TextExplanation\('class \d', p=0\.\d{3}, 2 tokens; most relevant: .+\)", repr(result)
    )
    explainer = text_explainer.loaded.explainer
    units, features = explainer.layers[0].forward.units, explainer.input_dim
    assert repr(explainer) == (
        f"LSTMExplainer({features} features -> Bidirectional LSTM({units}) -> Dense(3), "
        f"vocabulary of {len(explainer.token_ids)} tokens, float32)"
    )
    assert repr(text_explainer.loaded) == f"LoadedModel(explainer={explainer!r}, oov_id=1, mask_zero=True)"
    assert repr(text_explainer).startswith(f"TextExplainer({explainer!r}, tokenizer='whitespace'")
    ids = np.array([[2, 3, 4]])
    text = repr(explainer.explain(explainer.embed(ids)))
    assert text.startswith(
        f"Explanation(1 reviews, up to 3 steps of {explainer.input_dim} features, 3 classes; targets ["
    )
    assert "array" not in text and len(text) < 200


def test_from_file_takes_word_vectors(tiny_model, tmp_path):
    own = LSTMExplainer.from_file(tiny_model.model, vocab=tiny_model.vocab)
    tokens = sorted(own.token_ids, key=own.token_ids.get)
    lines = [f"{t} {' '.join(repr(float(v)) for v in own.embedding[own.token_ids[t]])}" for t in tokens[2:]]
    (tmp_path / "vectors.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    explainer = LSTMExplainer.from_file(tiny_model.model, embeddings=str(tmp_path / "vectors.txt"))
    words = ["good", "movie", "unheard-of"]
    ids = np.array([[explainer.token_ids.get(w, explainer.oov_id) for w in words]])
    assert np.all(explainer.embed(ids)[0, 2] == 0), "unknown tokens are zero vectors, as in the pipeline"
    mine = explainer.explain(explainer.embed(ids)[:, :2])
    theirs = own.explain(own.embed(np.array([[own.token_ids[w] for w in words[:2]]])))
    np.testing.assert_allclose(mine.relevance, theirs.relevance, rtol=1e-5, atol=1e-7)


def test_demo_paths_are_absolute_and_exist():
    paths = demo_paths()
    assert all(pathlib.Path(p).is_absolute() and pathlib.Path(p).exists() for p in paths)
