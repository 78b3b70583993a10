"""Assemble the explanation pipeline from the transforms: read, tokenise, embed and batch (one step per read
split) -> explain -> check conservation -> write."""

from __future__ import annotations

from collections.abc import Mapping

import apache_beam as beam

from pipeline.config import RunConfig
from transforms import (
    CheckConservation,
    ExplainBatches,
    ExplainSettings,
    Fields,
    SharedModel,
    TokenizerSpec,
    WriteResults,
)
from transforms.prepare import Preparation, ReadBatches
from transforms.schemas import DEAD_LETTER


def build(
    pipeline: beam.Pipeline,
    config: RunConfig,
    model: SharedModel,
    directory: str,
    metadata: Mapping[bytes, bytes] | None = None,
) -> None:
    """Add the whole job to `pipeline`, writing Parquet under `directory` with `metadata` in every file."""
    fields = Fields(config.id_field, config.text_field, config.label_field)
    tokenizer = TokenizerSpec(config.tokenizer, config.lowercase, config.max_length, config.over_length)
    settings = ExplainSettings(
        config.eps,
        config.bias_factor,
        config.target_value,
        config.max_batch_tokens,
        config.method,
        config.engine_streams,
    )
    preparation = Preparation(tokenizer, config.oov, config.buckets, config.batch_size)
    read = pipeline | "ReadBatches" >> ReadBatches(
        config.input, model, preparation, config.format, fields, config.split_bytes, exclude=config.output
    )
    explained = read.batches | "ExplainBatches" >> ExplainBatches(model, settings)
    checked = explained.explained | "CheckConservation" >> CheckConservation(config.conservation_tolerance)
    dead = [step[DEAD_LETTER] for step in (read, explained, checked)]
    outputs = {"explained": checked.checked, DEAD_LETTER: dead | "CollectDeadLetters" >> beam.Flatten()}
    _ = outputs | "WriteResults" >> WriteResults(directory, config.dtype, metadata)
