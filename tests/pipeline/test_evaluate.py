"""`lstm-lrp evaluate`: word deletion (Arras et al. 2017) on the demo model and corpus — LRP's curve falls
faster than random deletion's — and its outputs and user errors."""

from __future__ import annotations

import json
import pathlib
import re

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.demo import DEMO_MODEL, DEMO_VOCAB
from pipeline.provenance import read_provenance
from transforms.schemas import DELETION_SCHEMA


@pytest.fixture(scope="module")
def curves_file(tmp_path_factory) -> pathlib.Path:
    """deletion.parquet of the demo (evaluate with no corpus or model named)."""
    output = tmp_path_factory.mktemp("evaluate")
    assert main(["evaluate", "--output", str(output)]) == 0
    assert (output / "deletion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return output / "deletion.parquet"


@pytest.fixture(scope="module")
def curves(curves_file):
    """The demo's deletion curves, as a DataFrame."""
    table = pq.read_table(curves_file)
    assert table.schema.equals(DELETION_SCHEMA)
    return table.to_pandas()


def area(curves, method: str, setting: str) -> float:
    """Area under the accuracy curve over k = 0..10 (trapezoid rule, unit steps)."""
    line = curves[(curves.method == method) & (curves.setting == setting)].sort_values("k")
    assert line.k.tolist() == list(range(11))
    accuracy = line.accuracy.to_numpy()
    return float(accuracy.sum() - (accuracy[0] + accuracy[-1]) / 2)


def test_lrp_falls_faster_than_random_on_the_demo(curves):
    assert area(curves, "lrp", "correct") < area(curves, "random", "correct") - 1.0
    assert area(curves, "gi", "correct") < area(curves, "random", "correct")


def test_lrp_repairs_misclassified_reviews_faster_than_random(curves):
    assert area(curves, "lrp", "misclassified") > area(curves, "random", "misclassified")


def test_curves_start_at_the_models_accuracy(curves):
    start = curves[curves.k == 0]
    assert (start[start.setting == "correct"].accuracy == 1.0).all()
    assert (start[start.setting == "misclassified"].accuracy == 0.0).all()
    reviews = curves.drop_duplicates("setting").n_reviews.sum()
    assert reviews == 300 and set(curves.method) == {"lrp", "gi", "sa", "random"}


def test_existing_results_are_kept_unless_overwrite(curves_file, tmp_path, capsys):
    (tmp_path / "deletion.parquet").write_bytes(curves_file.read_bytes())
    assert main(["evaluate", "--output", str(tmp_path)]) == 2
    assert "already holds deletion.parquet; pass --overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["deletion.parquet", "deletion.png"])
def test_overwrite_never_replaces_files_evaluate_did_not_write(tmp_path, capsys, name):
    (tmp_path / name).write_bytes(b"the user's own file")
    assert main(["evaluate", "--output", str(tmp_path), "--overwrite"]) == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert f"holds {name} that lstm-lrp evaluate did not write" in error
    assert (tmp_path / name).read_bytes() == b"the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_corpus_without_labels_is_a_user_error(tmp_path, capsys):
    corpus = tmp_path / "reviews.txt"
    corpus.write_text("a fine film\nnot good at all\n", encoding="utf-8")
    model = ["--model", str(DEMO_MODEL), "--vocab", str(DEMO_VOCAB)]
    assert main(["evaluate", "--input", str(corpus), *model, "--output", str(tmp_path / "out")]) == 2
    *progress, error = capsys.readouterr().err.strip().splitlines()  # progress logs may come first
    assert error.startswith("lstm-lrp: error: None of the 2 usable reviews has a label")
    assert not any(line.startswith(("lstm-lrp: error", "Traceback")) for line in progress), progress


def test_the_readme_quotes_what_evaluate_prints_on_the_demo(curves):
    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    quoted = re.search(
        r"`lstm-lrp evaluate --output DIR` on the demo\s+\((\d+) correctly classified reviews\) prints that "
        r"LRP's accuracy falls from 1\.00 to ([\d.]+) after 3 deletions and\s+([\d.]+) after 10; random "
        r"deletion: ([\d.]+) and ([\d.]+)\.",
        readme,
    )
    assert quoted, "the README's word-deletion sentence"
    correct = curves[curves.setting == "correct"].set_index(["method", "k"])
    assert int(quoted.group(1)) == correct.n_reviews.iloc[0]
    for (method, k), text in zip(
        [("lrp", 3), ("lrp", 10), ("random", 3), ("random", 10)], quoted.groups()[1:]
    ):
        assert f"{correct.accuracy[(method, k)]:.2f}" == text, (method, k)


def test_deletion_curves_carry_the_run_id_of_the_run_they_evaluate(tmp_path):
    import fsspec

    from pipeline.evaluate import deletion_provenance, parse_evaluate_args
    from pipeline.run import run_provenance

    config, _, _ = parse_evaluate_args(["--output", str(tmp_path)])
    fs = fsspec.filesystem("file")
    assert deletion_provenance(config, 2, fs, str(tmp_path))["run_id"]  # no run there: a fresh id
    run = run_provenance(config, 2)
    (tmp_path / "summary.json").write_text(json.dumps(run), encoding="utf-8")
    assert deletion_provenance(config, 2, fs, str(tmp_path))["run_id"] == run["run_id"]
    other = {**run, "model": {**run["model"], "sha256": "0" * 64}}
    (tmp_path / "summary.json").write_text(json.dumps(other), encoding="utf-8")
    assert deletion_provenance(config, 2, fs, str(tmp_path))["run_id"] != run["run_id"]


def test_deletion_parquet_carries_provenance(curves_file):
    provenance = read_provenance(pq.read_schema(curves_file))
    assert provenance["tool"] == "lstm-lrp" and len(provenance["model"]["sha256"]) == 64
