"""Run settings: defaults < config file < flags, path resolution, and validation (no pipelines run here)."""

from __future__ import annotations

import dataclasses
import pathlib
import re
import subprocess
import sys
import time

import pytest

from pipeline.config import DEMO, ConfigError, RunConfig, build_config, coerce, load_config_file
from pipeline.run import parse_run_args

REPO = pathlib.Path(__file__).resolve().parents[2]


def write(path: pathlib.Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_no_arguments_is_the_demo_and_so_is_configs_demo_yaml():
    config, beam_args = parse_run_args([])
    assert config == DEMO and beam_args == []
    assert build_config(load_config_file(str(REPO / "configs" / "demo.yaml")), {}, use_demo=False) == DEMO
    for path in (DEMO.model, DEMO.vocab, *DEMO.input):
        assert pathlib.Path(path).is_file(), path


def test_flags_without_an_input_or_model_change_the_demo():
    config, _ = parse_run_args(["--output", "elsewhere", "--batch-size", "7", "--no-lowercase"])
    assert config == dataclasses.replace(DEMO, output="elsewhere", batch_size=7, lowercase=False)


def test_sst_config_loads_and_names_the_shared_file():
    settings = load_config_file(str(REPO / "configs" / "sst.yaml"))
    assert settings["input"] == (str((REPO / ".." / "shared" / "data" / "sst_test.jsonl").resolve()),)
    assert settings["buckets"] == (8, 16, 24, 32, 48, 64) and settings["batch_size"] == 512
    with pytest.raises(ConfigError, match="no --model given"):
        build_config(settings, {}, use_demo=False)


def test_config_file_then_flags(tmp_path):
    (tmp_path / "conf").mkdir()
    config_file = write(
        tmp_path / "conf" / "run.yaml",
        "input: [data/a.jsonl, /abs/b.jsonl, 'memory://c.jsonl']\n"
        "model: models/m.keras\nvocab: gs://bucket/vocab.txt\noutput: out\n"
        "eps: 1e-3\nbatch_size: 8\nbuckets: 4,8\ntarget: 1\nlowercase: false\n",
    )
    argv = ["--config", config_file, "--batch-size", "16", "--runner=DirectRunner", "--direct_num_workers=2"]
    config, beam_args = parse_run_args(argv)
    conf = (tmp_path / "conf").resolve()
    assert config.input == (str(conf / "data" / "a.jsonl"), "/abs/b.jsonl", "memory://c.jsonl")
    assert config.model == str(conf / "models" / "m.keras") and config.vocab == "gs://bucket/vocab.txt"
    assert config.output == "out"  # relative to the working directory, not the file
    assert (config.eps, config.batch_size, config.buckets) == (1e-3, 16, (4, 8))
    assert (config.target, config.target_value, config.lowercase) == ("1", 1, False)
    assert beam_args == ["--runner=DirectRunner", "--direct_num_workers=2"]
    assert parse_run_args([*argv, "--input", "x.jsonl", "y.jsonl"])[0].input == ("x.jsonl", "y.jsonl")


def test_unknown_keys_are_named(tmp_path):
    path = write(tmp_path / "bad.yaml", "input: a.jsonl\nbatchsize: 3\nepsilon: 1\n")
    with pytest.raises(ConfigError, match=r"Unknown key\(s\) batchsize, epsilon in .*bad.yaml"):
        load_config_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "must hold a mapping"),
        ("input: [a\n", "is not valid YAML"),
        ("eps: small\n", "eps must be a number; got 'small'"),
        ("batch_size: 2.5\n", "batch_size must be an integer"),
        ("buckets: 8,x\n", "buckets must be integers"),
    ],
)
def test_bad_config_files(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config_file(write(tmp_path / "c.yaml", text))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="Cannot read config file"):
        load_config_file(str(tmp_path / "absent.yaml"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"input": ()}, "no --input given"),
        ({"model": None}, "no --model given"),
        ({"output": ""}, "--input, --model and --output must not be empty"),
        ({"input": ("a.jsonl", "")}, "--input, --model and --output must not be empty"),
        ({"format": "xml"}, "--format must be one of"),
        ({"eps": -1.0}, "--eps must be >= 0"),
        ({"dtype": "float16"}, "--dtype must be float32 or float64"),
        ({"oov": "drop"}, "--oov must be one of"),
        ({"over_length": "cut"}, "--over-length must be truncate or dead-letter"),
        ({"max_length": 0}, "--max-length must be at least 1"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"max_batch_tokens": 0}, "--max-batch-tokens must be at least 1"),
        ({"split_bytes": -1}, "--split-bytes must be at least 0"),
        ({"conservation_tolerance": -1e-3}, "--conservation-tolerance must be >= 0"),
        ({"target": "-1"}, "--target must be predicted, label, all or a class index"),
        ({"target": "best"}, "--target must be predicted, label, all or a class index"),
        ({"buckets": (16, 8)}, "strictly increasing"),
        ({"tokenizer": "spaces"}, "Unknown tokenizer 'spaces'"),
        ({"tokenizer": "regex:[a-"}, "is not a regular expression"),
    ],
)
def test_validation(changes, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(DEMO, **changes).validate()


def test_valid_targets_and_defaults():
    for target, value in (("predicted", "predicted"), ("label", "label"), ("all", "all"), ("2", 2)):
        assert dataclasses.replace(DEMO, target=target).validate().target_value == value
    assert RunConfig().input == () and RunConfig().output == "lrp-output"


def test_coerce():
    assert coerce("input", "a.jsonl,b.jsonl") == ("a.jsonl", "b.jsonl")
    assert coerce("input", ["a,b.jsonl"]) == ("a,b.jsonl",)
    assert coerce("buckets", "8, 16,") == (8, 16) and coerce("buckets", [4, "8"]) == (4, 8)
    assert coerce("target", 3) == "3"
    assert (
        coerce("eps", "1e-2") == 0.01
        and coerce("batch_size", 4.0) == 4
        and coerce("max_length", None) is None
    )
    for name, value in (("eps", True), ("split_bytes", "many"), ("max_length", [3])):
        with pytest.raises(ConfigError, match=name):
            coerce(name, value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('overwrite: "false"\n', "overwrite must be a boolean (true or false); got 'false' (a string)."),
        ("lowercase: 0\n", "lowercase must be a boolean (true or false); got 0 (an integer)."),
        ("tokenizer: 5\n", "tokenizer must be a string; got 5 (an integer)."),
        ("id_field: {a: 1}\n", "id_field must be a string; got {'a': 1} (a mapping)."),
        ("model: [a, b]\n", "model must be a string; got ('a', 'b') (a list)."),
        ("input: [a, 1]\n", "input must be a string or a list of strings; got ('a', 1) (a list)."),
        ("method: {lrp: 1}\n", "method must be a string or a list of strings; got {'lrp': 1} (a mapping)."),
        ("target: true\n", "target must be a string; got True (a boolean)."),
        ("buckets: [8, [16]]\n", "buckets must be integers like 8,16,32"),
    ],
)
def test_every_value_has_its_declared_type(tmp_path, text, message):
    with pytest.raises(ConfigError, match=f"c.yaml': {re.escape(message)}"):
        load_config_file(write(tmp_path / "c.yaml", text))


def test_yaml_aliases_that_expand_too_far_are_refused_at_once(tmp_path):
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    laughs = write(tmp_path / "laughs.yaml", "input:\n" + "".join(f"  {line}\n" for line in lines))
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to more than 10,000 values"):
        load_config_file(laughs)
    assert time.perf_counter() - started < 5  # not minutes: the values are counted, never expanded
    with pytest.raises(ConfigError, match="expands to more than"):
        load_config_file(write(tmp_path / "loop.yaml", "input: &x [a, *x]\n"))
    small = write(tmp_path / "small.yaml", "input: &x [a.jsonl]\nmethod: [lrp]\n")
    assert load_config_file(small)["input"] == (str(tmp_path / "a.jsonl"),)


def test_settings_are_checked_without_tensorflow(repo_pythonpath):
    """Flag and config validation import neither TensorFlow nor the engine."""
    code = (
        "import sys\n"
        "from pipeline.config import ConfigError\n"
        "from pipeline.run import parse_run_args\n"
        "parse_run_args(['--batch-size', '3', '--target', '1'])\n"
        "try:\n"
        "    parse_run_args(['--target', '²'])\n"
        "except ConfigError:\n"
        "    pass\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=repo_pythonpath, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
