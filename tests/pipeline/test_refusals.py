"""Unsafe or wrong files and impossible settings are refused before any work: exit code 2, one line on
stderr that starts with "lstm-lrp: error:" and names the problem, no traceback (unless --debug), nothing
created under --output, and no pickle ever runs code."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.run import RunError


class Sentinel:
    """Pickles as a call of open(path, "w"): unpickling it without restriction creates the file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_model):
    """The hostile files, in one directory; returns the placeholders the cases' flags use."""
    import keras

    d = tmp_path_factory.mktemp("refusals")
    sentinel = str(d / "PWNED")
    (d / "evil.pkl").write_bytes(pickle.dumps({"good": Sentinel(sentinel)}))
    (d / "evil_vocab.pkl").write_bytes(pickle.dumps(["<pad>", Sentinel(sentinel)]))
    (d / "arras").mkdir()
    (d / "arras" / "model").write_bytes(pickle.dumps({"Wxh_Left": Sentinel(sentinel)}))
    np.save(d / "arras" / "embeddings.npy", np.zeros((3, 4), np.float32))
    (d / "arras" / "vocab").write_text("a\nb\nc\n", encoding="utf-8")
    np.save(d / "objects.npy", np.array([Sentinel(sentinel), None], dtype=object), allow_pickle=True)
    (d / "cut.pkl").write_bytes(pickle.dumps({"good": [1.0, 2.0]})[:-5])
    (d / "vectors5.txt").write_text("good 1 2 3 4 5\nbad 5 4 3 2 1\n", encoding="utf-8")
    (d / "a_directory").mkdir()
    (d / "reviews.jsonl").write_text('{"text": "good movie"}\n', encoding="utf-8")
    (d / "unknown_key.yaml").write_text("input: reviews.jsonl\nepsilon: 0.1\n", encoding="utf-8")
    for name, setting in YAML_SETTINGS.items():
        (d / f"{name}.yaml").write_text(f"input: reviews.jsonl\n{setting}\n", encoding="utf-8")
    laughs = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    laughs += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    (d / "laughs.yaml").write_text(
        "input: &x\n" + "\n".join(f"  {line}" for line in laughs), encoding="utf-8"
    )
    (d / "proj" / "reviews").mkdir(parents=True)
    (d / "proj" / "reviews" / "corpus.jsonl").write_text('{"text": "good movie"}\n', encoding="utf-8")
    with zipfile.ZipFile(d / "malformed.keras", "w") as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": [{}]}}))

    @keras.saving.register_keras_serializable(package="refusals")
    class Custom(keras.layers.Layer):
        def call(self, x):
            return x

    # Every layer is named: Keras numbers unnamed layers process-wide, which other tests' messages rely on.
    layers = {"lambda": keras.layers.Lambda(lambda t: t * 2, name="doubling"), "custom": Custom(name="mine")}
    for name, extra in [*layers.items(), ("rnn", keras.layers.SimpleRNN(3, name="recurrent"))]:
        stack = [keras.Input((None,), dtype="int32"), keras.layers.Embedding(25, 4, name=f"{name}_embedding")]
        stack += [extra] if name == "rnn" else [extra, keras.layers.LSTM(3, name=f"{name}_lstm")]
        keras.Sequential([*stack, keras.layers.Dense(3, name=f"{name}_dense")], name=name).save(
            d / f"{name}.keras"
        )
    return {"d": str(d), "model": tiny_model.model, "vocab": tiny_model.vocab, "sentinel": sentinel}


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


MODEL = ["--model", "{model}", "--vocab", "{vocab}"]
YAML_SETTINGS = {
    "tokenizer_number": "tokenizer: 5",
    "id_field_mapping": "id_field: {a: 1}",
    "overwrite_string": 'overwrite: "false"',
    "input_number": "input: 5",
}
CASES = {
    # unsafe files: a pickle that would run code, on every path that reads one
    "pickle as embeddings": (
        ["--model", "{model}", "--embeddings", "{d}/evil.pkl"],
        ["evil.pkl refers to the global io.open", "re-save it as plain data"],
    ),
    "pickle as vocabulary": (
        ["--model", "{model}", "--vocab", "{d}/evil_vocab.pkl"],
        ["evil_vocab.pkl refers to the global io.open"],
    ),
    "pickle as ArrasL model": (["--model", "{d}/arras"], ["arras/model refers to the global io.open"]),
    "pickle inside .npy": (
        ["--model", "{model}", "--embeddings", "{d}/objects.npy", "--vocab", "{vocab}"],
        ["objects.npy is not a .npy array of numbers (Object arrays cannot be loaded"],
    ),
    "truncated pickle": (
        ["--model", "{model}", "--embeddings", "{d}/cut.pkl"],
        ["cut.pkl is not a readable pickle"],
    ),
    # unsupported models
    "Lambda layer": (["--model", "{d}/lambda.keras"], ["Layer 'doubling' (Lambda) is not supported"]),
    "custom layer": (["--model", "{d}/custom.keras"], ["Layer 'mine' (Custom) is not supported"]),
    "SimpleRNN model": (["--model", "{d}/rnn.keras"], ["Layer 'recurrent' (SimpleRNN) is not supported"]),
    "malformed .keras": (
        ["--model", "{d}/malformed.keras"],
        ["Cannot load the model from", "malformed.keras"],
    ),
    "not a model": (["--model", "{d}/reviews.jsonl"], ["Cannot tell the model format of", "reviews.jsonl"]),
    # missing or unreadable paths, each named
    "missing model": (["--model", "{d}/none.keras"], ["Cannot read", "none.keras", "No such file"]),
    "missing vocabulary": (["--model", "{model}", "--vocab", "{d}/none.txt"], ["Cannot read", "none.txt"]),
    "unreadable vocabulary": (
        ["--model", "{model}", "--vocab", "{d}/a_directory"],
        ["Cannot read", "a_directory", "Is a directory"],
    ),
    "missing embeddings": (
        ["--model", "{model}", "--embeddings", "{d}/none.vec"],
        ["Cannot read", "none.vec"],
    ),
    "missing input": ([*MODEL, "--input", "{d}/none-*.jsonl"], ["none-*.jsonl", "matches no readable file"]),
    "input is a directory": ([*MODEL, "--input", "{d}/a_directory"], ["a_directory", "matches no readable"]),
    "unknown input protocol": (
        [*MODEL, "--input", "nosuch://bucket/r.jsonl"],
        ["Input 'nosuch://bucket/r.jsonl' cannot be opened (Protocol not known: nosuch)"],
    ),
    "unknown output protocol": (
        [*MODEL, "--output", "nosuch://bucket/out"],
        ["Output 'nosuch://bucket/out' cannot be opened (Protocol not known: nosuch)"],
    ),
    "missing config": (["--config", "{d}/none.yaml"], ["Cannot read config file", "none.yaml"]),
    # wrong files
    "embedding dimension": (
        ["--model", "{model}", "--embeddings", "{d}/vectors5.txt"],
        ["vectors5.txt have 5 dimensions but the model expects 4"],
    ),
    "unknown config key": (
        ["--config", "{d}/unknown_key.yaml"],
        ["Unknown key(s) epsilon", "unknown_key.yaml"],
    ),
    # impossible flag values
    "eps < 0": ([*MODEL, "--eps", "-0.1"], ["--eps must be >= 0"]),
    "eps inf": ([*MODEL, "--eps", "inf"], ["eps must be finite"]),
    "eps not a number": ([*MODEL, "--eps", "small"], ["Argument --eps: invalid float value: 'small'"]),
    "empty buckets": ([*MODEL, "--buckets", ""], ["Buckets must be positive and strictly increasing"]),
    "unsorted buckets": ([*MODEL, "--buckets", "16,8,32"], ["strictly increasing", "got [16, 8, 32]"]),
    "batch size 0": ([*MODEL, "--batch-size", "0"], ["--batch-size must be at least 1"]),
    "batch size not a number": ([*MODEL, "--batch-size", "many"], ["--batch-size: invalid int value"]),
    "max length 0": ([*MODEL, "--max-length", "0"], ["--max-length must be at least 1"]),
    "class outside the model": ([*MODEL, "--target", "3"], ["--target 3 is not a class of the model (0..2)"]),
    "misspelt flag": ([*MODEL, "--ouput", "{d}/o"], ["Unknown flag --ouput; did you mean --output?"]),
    "output is a file": ([*MODEL, "--output", "{d}/reviews.jsonl"], ["is a file; give a directory"]),
    # hostile use (issue 10)
    "unknown runner": (
        [*MODEL, "--runner", "NoSuchRunner"],
        ["--runner NoSuchRunner: Unexpected pipeline runner: NoSuchRunner"],
    ),
    "bad Beam option value": (
        [*MODEL, "--direct_num_workers=abc"],
        ["Beam pipeline option argument --direct_num_workers: invalid int value: 'abc'"],
    ),
    "unicode digit target": (
        [*MODEL, "--target", "²"],
        ["--target must be predicted, label, all or a class index"],
    ),
    "YAML number as tokenizer": (
        ["--config", "{d}/tokenizer_number.yaml"],
        ["tokenizer_number.yaml': tokenizer must be a string; got 5 (an integer)."],
    ),
    "YAML mapping as id field": (
        ["--config", "{d}/id_field_mapping.yaml"],
        ["id_field must be a string; got {'a': 1} (a mapping)."],
    ),
    "YAML string as boolean": (
        ["--config", "{d}/overwrite_string.yaml"],
        ["overwrite must be a boolean (true or false); got 'false' (a string)."],
    ),
    "YAML number as input": (
        ["--config", "{d}/input_number.yaml"],
        ["input must be a string or a list of strings; got 5 (an integer)."],
    ),
    "YAML billion laughs": (["--config", "{d}/laughs.yaml"], ["expands to more than 10,000 values"]),
    "glob characters in output": ([*MODEL, "--output", "{d}/results[v2]"], ["has glob characters"]),
    "output would replace the input": (
        [*MODEL, "--input", "{d}/proj/reviews/corpus.jsonl", "--output", "{d}/proj", "--overwrite"],
        ["corpus.jsonl' matches only files under --output", "which a run never reads"],
    ),
    "output would replace the vocabulary": (
        ["--model", "{model}", "--vocab", "{d}/proj/reviews/corpus.jsonl", "--output", "{d}/proj"],
        ["would overwrite the --vocab"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_before_any_work_with_one_line_and_exit_2(case, files, tmp_path):
    flags, fragments = CASES[case]
    argv = [flag.format(**files) for flag in flags]
    if "--input" not in argv and "--config" not in argv:
        argv += ["--input", f"{files['d']}/reviews.jsonl"]
    if "--output" not in argv:
        argv += ["--output", str(tmp_path / "out")]
    code, stdout, stderr = run_main(["run", *argv])
    assert (code, stdout) == (2, ""), stderr
    assert stderr.startswith("lstm-lrp: error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr, (fragment, stderr)
    assert not (tmp_path / "out").exists()
    assert not os.path.exists(files["sentinel"])


def test_debug_shows_the_error_itself(files, tmp_path):
    argv = ["run", "--model", files["model"], "--embeddings", f"{files['d']}/evil.pkl", "--debug"]
    with pytest.raises(RunError, match=r"refers to the global io\.open"):
        main([*argv, "--input", f"{files['d']}/reviews.jsonl", "--output", str(tmp_path / "out")])
    assert not os.path.exists(files["sentinel"]) and not (tmp_path / "out").exists()


def test_a_malicious_pickle_is_refused_by_the_command_and_never_runs(files, tmp_path, repo_pythonpath):
    """`python -m pipeline run --embeddings evil.pkl`: exit code 2, one error line, no traceback; the payload
    is live (plain pickle.loads runs it), yet the sentinel file is never created."""
    command = [sys.executable, "-m", "pipeline", "run", "--model", files["model"]]
    command += ["--embeddings", f"{files['d']}/evil.pkl", "--input", f"{files['d']}/reviews.jsonl"]
    command += ["--output", str(tmp_path / "out")]
    done = subprocess.run(
        command, cwd=tmp_path, env=repo_pythonpath, capture_output=True, text=True, timeout=120
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("lstm-lrp: error:")]
    assert done.returncode == 2 and done.stdout == "", done.stderr
    assert len(errors) == 1 and "evil.pkl refers to the global io.open" in errors[0]
    assert "Traceback" not in done.stderr
    assert not os.path.exists(files["sentinel"]) and not (tmp_path / "out").exists()
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(Sentinel(str(live)))).close()  # what an unrestricted unpickler would do
    assert live.exists()
