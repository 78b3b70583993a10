"""`lstm-lrp run --model PATH --vocab VOCAB` on PyTorch weights (a torch.save zip written without torch): the
corpus explained end to end with the logits of PyTorch's equations, and a model outside the family refused
before any work with one line that names its parameters."""

from __future__ import annotations

import contextlib
import dataclasses
import io

import numpy as np
import pytest
from torch_files import Architecture, classifier_state, torch_forward, write_torch_zip

from pipeline.cli import main


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def vocabulary(tiny_model) -> list[str]:
    with open(tiny_model.vocab, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


@pytest.fixture(scope="module")
def arch(vocabulary) -> Architecture:
    return Architecture(
        vocab_size=len(vocabulary), embed=6, units=5, layers=2, recurrent="encoder", head="out"
    )


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_pytorch_state_dict_is_explained_end_to_end(
    tmp_path, corpus, tiny_model, vocabulary, arch, read_output, kind
):
    arch = dataclasses.replace(arch, kind=kind)
    state = classifier_state(arch, seed=3)
    write_torch_zip(tmp_path / "classifier.pt", state)
    argv = ["run", *corpus.flags(), "--model", str(tmp_path / "classifier.pt"), "--vocab", tiny_model.vocab]
    code, stdout, stderr = run_main(
        [*argv, "--dtype", "float64", "--bias-factor", "1", "--output", str(tmp_path / "o")]
    )
    assert code == 0 and f"Explained {len(corpus.explained)} of" in stdout, stderr
    output = read_output(tmp_path / "o")
    reviews = output.sorted("reviews")
    assert sorted(reviews.review_id) == sorted(corpus.explained) and reviews.conserved.all()
    index = {token: n for n, token in enumerate(vocabulary)}
    for row in reviews.itertuples():
        ids = np.array([[index.get(t, 1) for t in corpus.text(row.review_id).lower().split()]])
        expected = torch_forward(arch, state, ids, [ids.shape[1]])[0]
        np.testing.assert_allclose(np.asarray(row.logits), expected, rtol=0, atol=1e-5, err_msg=row.review_id)
        assert row.predicted_class == np.argmax(expected)


def test_a_state_dict_outside_the_family_is_refused_by_name(tmp_path, corpus, tiny_model, arch):
    state = classifier_state(arch) | {"attention.weight": np.ones((1, 10), np.float32)}
    write_torch_zip(tmp_path / "attention.pt", state)
    argv = ["run", *corpus.flags(), "--model", str(tmp_path / "attention.pt"), "--vocab", tiny_model.vocab]
    code, stdout, stderr = run_main([*argv, "--output", str(tmp_path / "o")])
    assert code == 2 and stdout == "" and stderr.count("\n") == 1 and "Traceback" not in stderr
    assert "the head is ambiguous among 'attention', 'out'" in stderr and "attention.weight (1, 10)" in stderr
    assert not (tmp_path / "o").exists()
