"""ExplainBatches: its rows equal LSTMExplainer.explain called directly on each review, for every target."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from transforms import ExplainBatches, ExplainSettings, ModelSpec
from transforms.explain import chunks, padded_ids
from transforms.schemas import DEAD_LETTER, REVIEWS_SCHEMA, tokens_schema

REVIEWS = {
    "short": (["good", "movie"], 0),
    "long": (["the", "plot", "was", "good", "but", "the", "actor", "was", "bad"], 2),
    "one": (["awful"], 1),
    "oov": (["fun", "xyzzy", "fun"], 0),
    "mid": (["not", "a", "great", "film", "and", "a", "boring", "story"], 2),
}
BATCHES = [["short", "long", "one"], ["oov", "mid"]]


def record(engine, review_id: str, **changes) -> dict:
    tokens, label = REVIEWS[review_id]
    fields = {
        "review_id": review_id,
        "source": f"corpus.jsonl:{review_id}",
        "text": " ".join(tokens),
        "label": label,
        "tokens": tokens,
        "truncated": review_id == "long",
        "ids": engine.ids(tokens),
        "positions": np.arange(len(tokens), dtype=np.int32),
    }
    return {**fields, **changes}


def batches(engine) -> list[list[dict]]:
    return [[record(engine, rid) for rid in batch] for batch in BATCHES]


def explained_rows(batch, dtype: str = "float32") -> list[tuple]:
    """("review", key, row) and ("token", key, row) for every row of an ExplainedBatch, checking schemas
    and that every review row adds up exactly as written."""
    assert batch.reviews.schema.equals(REVIEWS_SCHEMA) and batch.tokens.schema.equals(tokens_schema(dtype))
    for row in batch.reviews.to_pylist():
        booked = row["relevance_sum"] + row["rest"] + row["absorbed"]
        assert row["conservation_residual"] == row["target_score"] - booked
    reviews = [("review", (r["review_id"], r["target_class"]), r) for r in batch.reviews.to_pylist()]
    tokens = [
        ("token", (t["review_id"], t["target_class"], t["method"], t["position"]), t)
        for t in batch.tokens.to_pylist()
    ]
    return reviews + tokens


def expected_rows(engine, review_ids, targets, settings: ExplainSettings, dtype: str) -> dict:
    """The engine's results, one review at a time, keyed as explained_rows keys them."""
    expected = {}
    for rid in review_ids:
        tokens, label = REVIEWS[rid]
        for target in targets(label):
            result = engine.explain(tokens, target, settings.eps, settings.bias_factor, dtype)
            target_class = int(result.target[0])
            expected[("review", (rid, target_class))] = {
                "review_id": rid,
                "source": f"corpus.jsonl:{rid}",
                "n_tokens": len(tokens),
                "truncated": rid == "long",
                "label": label,
                "predicted_class": int(result.logits[0].argmax()),
                "target_class": target_class,
                "target_score": float(result.target_score[0]),
                "logits": result.logits[0].tolist(),
                "relevance_sum": float(result.relevance_sum[0]),
                "rest": float(result.rest[0]),
                "absorbed": float(result.absorbed[0]),
                "conservation_residual": float(result.residual[0]),
            }
            for position, (token, relevance) in enumerate(zip(tokens, result.token_relevance[0])):
                expected[("token", (rid, target_class, "lrp", position))] = {
                    "review_id": rid,
                    "source": f"corpus.jsonl:{rid}",
                    "position": position,
                    "token": token,
                    "relevance": float(relevance),
                    "target_class": target_class,
                    "method": "lrp",
                }
    return expected


def matches(expected: dict, tolerance: float):
    """A matcher: exactly the expected keys, each once; numbers within tolerance, everything else equal."""

    def match(actual: list[tuple]) -> None:
        keys = [(kind, key) for kind, key, _ in actual]
        if sorted(keys) != sorted(expected) or len(set(keys)) != len(keys):
            raise BeamAssertException(f"rows {sorted(keys)} != expected {sorted(expected)}")
        for kind, key, row in actual:
            want = expected[(kind, key)]
            if row.keys() != want.keys():
                raise BeamAssertException(f"{kind} {key}: columns {list(row)} != {list(want)}")
            for column, value in row.items():
                if isinstance(value, float) or column == "logits":
                    close = np.allclose(value, want[column], rtol=tolerance, atol=tolerance)
                else:
                    close = value == want[column] and type(value) is type(want[column])
                if not close:
                    raise BeamAssertException(f"{kind} {key} {column}: {value!r} != {want[column]!r}")

    return match


TARGETS = {
    "predicted": lambda label: [None],
    "label": lambda label: [label],
    "all": lambda label: [0, 1, 2],
    1: lambda label: [1],
}


def test_rows_equal_the_engine_for_every_target(tiny_model, engine):
    model = ModelSpec(tiny_model.model, vocab=tiny_model.vocab)
    with BeamTestPipeline() as p:
        inputs = p | beam.Create(batches(engine))
        for target, targets in TARGETS.items():
            settings = ExplainSettings(target=target)
            out = inputs | f"Explain {target}" >> ExplainBatches(model, settings)
            expected = expected_rows(engine, REVIEWS, targets, settings, "float32")
            rows = out.explained | f"Rows {target}" >> beam.FlatMap(explained_rows)
            assert_that(rows, matches(expected, 1e-5), label=f"Rows {target}")
            assert_that(out[DEAD_LETTER], equal_to([]), label=f"No dead letters {target}")


def test_float64_with_bias_and_small_engine_calls(tiny_model, engine):
    """float64 to 1e-9, token relevances float64 too, eps and bias_factor passed on, and batches cut into
    several engine calls by max_batch_tokens."""
    model = ModelSpec(tiny_model.model, vocab=tiny_model.vocab, dtype="float64")
    settings = ExplainSettings(eps=0.01, bias_factor=0.5, target="all", max_batch_tokens=9)
    expected = expected_rows(engine, REVIEWS, TARGETS["all"], settings, "float64")
    for (kind, _), row in expected.items():  # logits are float32 in reviews/
        if kind == "review":
            row["logits"] = np.float32(row["logits"]).tolist()
    with BeamTestPipeline() as p:
        out = p | beam.Create(batches(engine)) | ExplainBatches(model, settings)
        rows = out.explained | beam.FlatMap(explained_rows, "float64")
        assert_that(rows, matches(expected, 1e-9))


def test_a_failing_review_is_dead_lettered_alone(tiny_model, engine):
    """An id outside the vector table fails its batch; the halves are retried and only that review is lost."""
    broken = [record(engine, "short"), record(engine, "one", ids=np.array([10_000], np.int32))]
    broken += [record(engine, "long"), record(engine, "mid")]
    model = ModelSpec(tiny_model.model, vocab=tiny_model.vocab)
    expected = expected_rows(
        engine, ["short", "long", "mid"], TARGETS["predicted"], ExplainSettings(), "float32"
    )
    with BeamTestPipeline() as p:
        out = p | beam.Create([broken]) | ExplainBatches(model)
        assert_that(out.explained | beam.FlatMap(explained_rows), matches(expected, 1e-5), label="Rows")
        letters = out[DEAD_LETTER] | beam.Map(
            lambda d: (d["review_id"], d["stage"], d["reason"].split(":")[0], d["raw"])
        )
        assert_that(letters, equal_to([("one", "explain", "explaining failed", "awful")]), label="Dead")


def test_target_label_needs_a_label_among_the_classes(tiny_model, engine):
    batch = [record(engine, "short"), record(engine, "one", label=None), record(engine, "mid", label=3)]
    model = ModelSpec(tiny_model.model, vocab=tiny_model.vocab)
    settings = ExplainSettings(target="label")
    expected = expected_rows(engine, ["short"], TARGETS["label"], settings, "float32")
    with BeamTestPipeline() as p:
        out = p | beam.Create([batch]) | ExplainBatches(model, settings)
        assert_that(out.explained | beam.FlatMap(explained_rows), matches(expected, 1e-5), label="Rows")
        assert_that(
            out[DEAD_LETTER] | beam.Map(lambda d: (d["review_id"], d["stage"], d["reason"])),
            equal_to(
                [
                    ("one", "explain", "review has no label to explain (--target label)"),
                    ("mid", "explain", "label 3 is outside the model's classes 0..2"),
                ]
            ),
            label="Dead",
        )


def test_settings_are_validated():
    with pytest.raises(ValueError, match="eps"):
        ExplainSettings(eps=-1.0)
    with pytest.raises(ValueError, match="Unknown target"):
        ExplainSettings(target="best")


def test_padded_ids_and_chunks():
    records = [{"ids": np.arange(n, dtype=np.int32) + 1} for n in (3, 1, 5, 2)]
    ids, lengths = padded_ids(records, fill=-7)
    assert lengths.tolist() == [3, 1, 5, 2]
    assert ids.tolist() == [[1, 2, 3, -7, -7], [1, -7, -7, -7, -7], [1, 2, 3, 4, 5], [1, 2, -7, -7, -7]]
    sizes = [[len(r["ids"]) for r in chunk] for chunk in chunks(records, max_tokens=9)]
    assert sizes == [[1, 2, 3], [5]]
    assert [[len(r["ids"]) for r in c] for c in chunks(records, max_tokens=4)] == [[1, 2], [3], [5]]
    assert [len(c) for c in chunks(records, max_tokens=1_000)] == [4]


@pytest.mark.parametrize("streams", [1, 3])
def test_calls_in_flight_keep_rows_and_counts(tiny_model, engine, streams):
    """With up to `streams` engine calls in flight (one per chunk of max_batch_tokens), every review is
    explained once, as alone, and the metrics count every call on the bundle's thread."""
    model = ModelSpec(tiny_model.model, vocab=tiny_model.vocab)
    settings = ExplainSettings(max_batch_tokens=9, streams=streams)
    expected = expected_rows(engine, REVIEWS, TARGETS["predicted"], settings, "float32")
    p = BeamTestPipeline()
    out = p | beam.Create(batches(engine)) | ExplainBatches(model, settings)
    assert_that(out.explained | beam.FlatMap(explained_rows), matches(expected, 1e-5))
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    chunked = [chunk for batch in batches(engine) for chunk in chunks(batch, 9)]
    assert counters["explain_batches"] == len(chunked) == 4
    assert counters["padded_tokens"] == sum(len(c) * max(len(r["ids"]) for r in c) for c in chunked)


@pytest.mark.parametrize("across_elements", [True, False])
def test_calls_across_elements_or_each_batch_in_its_own_process(tiny_model, engine, across_elements):
    """By default calls still in flight when a batch's process returns come out later (the last when the
    bundle finishes); without across_elements (the DaskRunner, which drops what finish_bundle emits) each
    batch's explained reviews come out of its own process call, and finish_bundle emits nothing."""
    from transforms.explain import ExplainBatch
    from transforms.model import SharedModel

    model = SharedModel(ModelSpec(tiny_model.model, vocab=tiny_model.vocab))
    dofn = ExplainBatch(
        model, ExplainSettings(max_batch_tokens=9, streams=3, across_elements=across_elements)
    )
    dofn.setup()
    dofn.start_bundle()
    emitted = [list(dofn.process(batch)) for batch in batches(engine)]
    emitted.append(list(dofn.finish_bundle() or ()))
    dofn.teardown()
    ids = [sorted(review_id for output in outputs for review_id in ids_of(output)) for outputs in emitted]
    if across_elements:
        assert ids[-1], "the calls in flight at the end come out of finish_bundle"
    else:
        assert ids == [sorted(batch) for batch in BATCHES] + [[]]


def ids_of(output) -> list[str]:
    """The review ids of an ExplainedBatch that a DoFn emitted (in process or, windowed, in finish_bundle)."""
    batch = getattr(output, "value", output)
    return batch.reviews.column("review_id").to_pylist()
