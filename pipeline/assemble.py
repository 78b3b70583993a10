"""Assemble the explanation pipeline from the transforms: read, tokenise, embed and batch (one step per read
split) -> explain -> check conservation -> write.

The same shape runs on every runner, the DaskRunner included: each multi-output step's outputs are
filtered by kind (the DaskRunner hands every consumer of a step all of its outputs, mixed), and every
write feeds the last step (the DaskRunner computes only the last step and what it depends on). The
DaskRunner also drops what DoFns emit in finish_bundle: WriteResults names its files in process on every
runner, and there, explaining emits each batch's results from its own process call
(ExplainSettings.across_elements).
"""

from __future__ import annotations

from collections.abc import Mapping

import apache_beam as beam

from pipeline.config import RunConfig
from pipeline.runners import on_dask
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
from transforms.records import is_dead_letter
from transforms.schemas import DEAD_LETTER


def dead(element: object) -> bool:
    """Whether a step's output element is a dead letter (not a review, batch or explained batch)."""
    return isinstance(element, dict) and is_dead_letter(element)


def outputs_of(step, main: str) -> tuple[beam.PCollection, beam.PCollection]:
    """A multi-output step's main output and its dead letters, each keeping only its own kind (and its
    element type, hence its coder)."""
    batches, letters = step[main], step[DEAD_LETTER]
    keep = beam.Filter(lambda element: not dead(element)).with_output_types(batches.element_type)
    return (
        batches | f"Keep{main.title()}" >> keep,
        letters
        | f"Keep{main.title()}DeadLetters" >> beam.Filter(dead).with_output_types(letters.element_type),
    )


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
        across_elements=not on_dask(pipeline.options),  # the DaskRunner drops finish_bundle's outputs
    )
    preparation = Preparation(tokenizer, config.oov, config.buckets, config.batch_size)
    read = pipeline | "ReadBatches" >> ReadBatches(
        config.input, model, preparation, config.format, fields, config.split_bytes, exclude=config.output
    )
    batches, read_dead = outputs_of(read, "batches")
    explained, explain_dead = outputs_of(
        batches | "ExplainBatches" >> ExplainBatches(model, settings), "explained"
    )
    checked, check_dead = outputs_of(
        explained | "CheckConservation" >> CheckConservation(config.conservation_tolerance), "checked"
    )
    letters = (read_dead, explain_dead, check_dead) | "CollectDeadLetters" >> beam.Flatten()
    write = WriteResults(directory, config.dtype, metadata)
    _ = {"explained": checked, DEAD_LETTER: letters} | "WriteResults" >> write
