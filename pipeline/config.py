"""Run settings: defaults, YAML config files and their validation. Imports neither TensorFlow nor the
engine: every refusal here comes before the model is loaded."""

from __future__ import annotations

import dataclasses
import math
import pathlib
import reprlib
import typing
from dataclasses import dataclass

import pydantic
import yaml

from lrp.choices import DTYPES, check_methods
from lrp.files import unreadable
from pipeline.demo import DEMO_CORPUS, DEMO_MODEL, DEMO_VOCAB
from transforms.bucket import DEFAULT_BUCKETS, check_buckets
from transforms.read import FORMATS, SPLIT_BYTES
from transforms.steps import OOV_POLICIES
from transforms.tokenize import TokenizerSpec

PATH_KEYS = ("input", "model", "embeddings", "vocab")
CONFIG_BYTES = 1_000_000
"""Largest config file read."""
CONFIG_VALUES = 10_000
"""Most values a config file may hold once YAML aliases are expanded (a "billion laughs" holds 10**9)."""


class ConfigError(ValueError):
    """A setting that cannot work; the message names it and what is allowed."""


@dataclass(frozen=True)
class RunConfig:
    """Everything `lstm-lrp run` needs. Field names are the YAML keys (flags use dashes)."""

    input: tuple[str, ...] = ()
    format: str = "auto"
    id_field: str = "id"
    text_field: str = "text"
    label_field: str = "label"
    model: str | None = None
    embeddings: str | None = None
    vocab: str | None = None
    output: str = "lrp-output"
    eps: float = 1e-3
    bias_factor: float = 0.0
    dtype: str = "float32"
    target: str = "predicted"
    lowercase: bool = True
    tokenizer: str = "whitespace"
    oov: str = "zero"
    max_length: int | None = None
    over_length: str = "truncate"
    buckets: tuple[int, ...] = DEFAULT_BUCKETS
    batch_size: int = 256
    max_batch_tokens: int = 65_536
    engine_streams: int = 2
    split_bytes: int = SPLIT_BYTES
    conservation_tolerance: float = 1e-4
    overwrite: bool = False
    method: tuple[str, ...] = ("lrp",)
    class_names: tuple[str, ...] = ()
    config: str | None = None
    """The config file the settings came from (--config; not a YAML key)."""

    def validate(self) -> RunConfig:
        """Raise ConfigError for impossible values; return self."""
        checks = [
            (
                bool(self.input),
                "no --input given; pass --input FILE_OR_GLOB or a --config file that names one",
            ),
            (self.model is not None, "no --model given"),
            (
                all(self.input) and self.model != "" and self.output != "",
                "--input, --model and --output must not be empty",
            ),
            (self.format in FORMATS, f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}"),
            (self.eps >= 0, f"--eps must be >= 0, got {self.eps}"),
            (self.dtype in DTYPES, f"--dtype must be {' or '.join(DTYPES)}, got {self.dtype}"),
            (self.oov in OOV_POLICIES, f"--oov must be one of {', '.join(OOV_POLICIES)}, got {self.oov!r}"),
            (
                self.over_length in ("truncate", "dead-letter"),
                f"--over-length must be truncate or dead-letter, got {self.over_length!r}",
            ),
            (self.max_length is None or self.max_length >= 1, "--max-length must be at least 1"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.max_batch_tokens >= 1, "--max-batch-tokens must be at least 1"),
            (self.engine_streams >= 1, "--engine-streams must be at least 1"),
            (self.split_bytes >= 0, "--split-bytes must be at least 0 (0: read files whole)"),
            (self.conservation_tolerance >= 0, "--conservation-tolerance must be >= 0"),
            (self.target in ("predicted", "label", "all") or is_index(self.target), self.target_message()),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message + ".")
        try:
            check_buckets(self.buckets)
            check_methods(self.method)
            TokenizerSpec(self.tokenizer).splitter()
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return self

    def target_message(self) -> str:
        return f"--target must be predicted, label, all or a class index, got {self.target!r}"

    @property
    def target_value(self) -> str | int:
        return int(self.target) if is_index(self.target) else self.target


def is_index(text: str) -> bool:
    """Whether text is a class index in ASCII digits (str.isdigit also takes "²" and "٣")."""
    return text.isascii() and text.isdigit()


DEMO = RunConfig(input=(str(DEMO_CORPUS),), model=str(DEMO_MODEL), vocab=str(DEMO_VOCAB))
"""What `lstm-lrp run` does with no arguments: the bundled demo corpus and model (configs/demo.yaml)."""


NUMBERS = {
    "eps": float,
    "bias_factor": float,
    "conservation_tolerance": float,
    "max_length": int,
    "batch_size": int,
    "max_batch_tokens": int,
    "engine_streams": int,
    "split_bytes": int,
}
"""Numeric settings and their types (YAML reads 1e-3, without a dot, as a string)."""


def coerce_number(name: str, value: object) -> float | int | None:
    """A numeric setting as its type; ConfigError for anything else, NaN and infinity included (None stays
    None: no limit)."""
    kind = NUMBERS[name]
    if value is None:
        return None
    try:
        number = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number) or (kind is int and not number.is_integer()):
        raise ConfigError(f"{name} must be {'an integer' if kind is int else 'a number'}; got {value!r}.")
    if math.isinf(number):
        raise ConfigError(f"{name} must be finite; got {value!r}.")
    return kind(number)


def coerce(name: str, value: object) -> object:
    """A YAML or flag value as RunConfig's field `name` declares it (lists as tuples, "a,b" split, numbers
    from text); ConfigError naming the key, the value and the expected type for anything else."""
    if name in NUMBERS:
        return coerce_number(name, value)
    if name in ("input", "method", "buckets", "class_names") and isinstance(value, str):
        value = value.split(",")
    if isinstance(value, list | tuple):
        value = tuple(value)
    if name in ("method", "class_names") and isinstance(value, tuple):
        value = tuple(m.strip() if isinstance(m, str) else m for m in value)
    if name == "buckets" and isinstance(value, tuple):
        try:
            value = tuple(
                b if isinstance(b, int) else int(b) for b in value if not isinstance(b, str) or b.strip()
            )
        except (TypeError, ValueError):
            raise ConfigError(f"buckets must be integers like 8,16,32; got {short(value)}.") from None
    if name == "target" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    try:
        return TYPES[name].validate_python(value, strict=True)
    except pydantic.ValidationError:
        expected = EXPECTED[typing.cast(str, FIELDS[name].type)]
        raise ConfigError(f"{name} must be {expected}; got {short(value)} ({kind(value)}).") from None


FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
TYPES = {name: pydantic.TypeAdapter(hint) for name, hint in typing.get_type_hints(RunConfig).items()}
"""Each setting's declared type, checked strictly: a boolean is true or false, not "false"."""
EXPECTED = {
    "bool": "a boolean (true or false)",
    "str": "a string",
    "str | None": "a string",
    "int | None": "an integer",
    "tuple[str, ...]": "a string or a list of strings",
    "tuple[int, ...]": "a list of integers",
}
KINDS = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    tuple: "a list",
    dict: "a mapping",
}


SHORT = reprlib.Repr()
SHORT.maxstring = SHORT.maxother = 60
SHORT.maxlist = SHORT.maxtuple = 5


def short(value: object) -> str:
    """value's repr, shortened for a one-line message."""
    return SHORT.repr(value)


def kind(value: object) -> str:
    return "null" if value is None else KINDS.get(type(value), type(value).__name__)


def expanded_size(value: object, seen: dict[int, int]) -> int:
    """How many values `value` holds once YAML aliases are expanded, counted without expanding them (each
    shared object once, in `seen`); a recursive structure counts as too many."""
    key = id(value)
    if key not in seen:
        seen[key] = CONFIG_VALUES + 1  # while counting: a cycle back to here is too large
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        seen[key] = 1 + sum(expanded_size(child, seen) for child in children)
    return seen[key]


def load_config_file(path: str) -> dict:
    """Settings from a YAML file: unknown keys are an error; relative paths are resolved against the file's
    directory."""
    config_path = pathlib.Path(path)
    try:
        if config_path.stat().st_size > CONFIG_BYTES:
            raise ConfigError(f"Config file {path!r} is larger than {CONFIG_BYTES:,} bytes; is it a config?")
        data = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        too_large = expanded_size(data, {}) > CONFIG_VALUES
    except OSError as e:
        raise ConfigError(unreadable(path, e, "config file")) from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        detail = " ".join(str(e).split())
        raise ConfigError(f"Config file {path!r} is not valid YAML: {detail}.") from None
    except RecursionError:
        too_large = True
    if too_large:
        raise ConfigError(
            f"Config file {path!r} expands to more than {CONFIG_VALUES:,} values (YAML aliases?); "
            "write the settings out."
        )
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path!r} must hold a mapping of settings.")
    known = {name for name in FIELDS if name != "config"}
    unknown = sorted(map(str, set(data) - known))
    if unknown:
        raise ConfigError(
            f"Unknown key(s) {', '.join(unknown)} in {path!r}; known keys: {', '.join(sorted(known))}."
        )
    try:
        settings = {k: coerce(k, v) for k, v in data.items()}
    except ConfigError as e:
        raise ConfigError(f"Config file {path!r}: {e}") from None
    return {k: resolve_paths(v, config_path.parent) if k in PATH_KEYS else v for k, v in settings.items()}


def resolve_paths(value: object, base: pathlib.Path) -> object:
    """Local relative paths (one or a tuple) made relative to base; URLs and absolute paths unchanged."""
    if isinstance(value, tuple):
        return tuple(resolve_paths(v, base) for v in value)
    if value is None or "://" in str(value) or pathlib.Path(str(value)).is_absolute():
        return value
    return str((base / str(value)).resolve())


def build_config(file_settings: dict, flag_settings: dict, use_demo: bool) -> RunConfig:
    """Defaults (the demo's when nothing names an input) < config file < flags."""
    base = DEMO if use_demo else RunConfig()
    settings = {**file_settings, **{k: coerce(k, v) for k, v in flag_settings.items()}}
    return dataclasses.replace(base, **settings).validate()
