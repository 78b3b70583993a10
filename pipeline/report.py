"""`lstm-lrp report OUTPUT_DIR`: one self-contained HTML page (no scripts, no external assets) of a run.

Per-review heatmaps (Arras et al. 2017, Fig. 1 style: red tokens speak for the explained class, blue against
it, intensity scaled per review and method, the exact value on hover) for the most positive, most negative
and most uncertain reviews and a random sample, each text shown once with how often the corpus holds it;
then the corpus: the tokens most for and most against each class per method, the conservation residuals
beside the absorbed shares, the class distribution, dead letters by reason, and the word-deletion curves
of `lstm-lrp evaluate` when OUTPUT_DIR holds deletion.parquet of the same run.

Statistics are computed by DuckDB over the Parquet files, streaming and within a memory limit, so the
report of a large run needs little memory; only the reviews shown are read whole. Imports no TensorFlow or
Beam. The page is a jinja2 template (pipeline/templates/report.html.j2) with autoescaping.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import jinja2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from markupsafe import Markup

from lrp import files
from pipeline.colours import NEGATIVE_RGB, POSITIVE_RGB, token_colour
from pipeline.flags import FlagParser, add_report_flags
from pipeline.plots import METHOD_LABELS, class_figure, deletion_figure, histogram_figure, method_label, svg
from pipeline.provenance import read_provenance
from pipeline.summary import reason_kind
from transforms.schemas import DEAD_LETTER_DIR, DELETION_FILE, REPORT_FILE, REVIEWS_DIR, SUMMARY, TOKENS_DIR

VIEWS = {"reviews": REVIEWS_DIR, "tokens": TOKENS_DIR}
"""DuckDB view -> the run's dataset it reads (with `dead`, over DEAD_LETTER_DIR, which may be absent)."""
MEMORY_LIMIT = "200MB"
"""DuckDB's memory limit: above it, its aggregations spill to a temporary directory instead of growing."""


class ReportError(ValueError):
    """A directory that is not a run's output, or report flags that do not fit it; the message says why."""


@dataclass(frozen=True)
class ReportOptions:
    """examples: reviews per list; min_count: occurrences for a token's mean to count; top: tokens per
    table; class_names: one per class (default: those given to run); seed: of the random sample."""

    examples: int = 20
    min_count: int = 5
    top: int = 15
    class_names: tuple[str, ...] = ()
    seed: int = 0


# ---------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------


class RunOutput:
    """A run's output directory as DuckDB views `reviews`, `tokens` and `dead` over its Parquet files, with
    summary.json (None if absent) and evaluate's deletion.parquet (None if absent) and its provenance."""

    def __init__(self, output: str) -> None:
        fs, root = files.filesystem(output, "Output", ReportError)
        self.spill = tempfile.TemporaryDirectory(prefix="lstm-lrp-report-")
        settings = {"memory_limit": MEMORY_LIMIT, "threads": 2, "temp_directory": self.spill.name}
        self.db = duckdb.connect(config=settings)
        self.db.execute("SET preserve_insertion_order = false")
        if not files.is_local(fs):
            self.db.register_filesystem(fs)  # DuckDB reads the files through fsspec
        datasets = {name: parquet_files(output, directory) for name, directory in VIEWS.items()}
        if not datasets["reviews"] or not datasets["tokens"]:
            raise ReportError(
                f"{output!r} holds no {REVIEWS_DIR}/ and {TOKENS_DIR}/ Parquet files; is it a run's --output?"
            )
        for name, paths in datasets.items():
            self.db.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({sql_list(paths)})")
        dead = parquet_files(output, DEAD_LETTER_DIR)
        source = (
            f"read_parquet({sql_list(dead)})" if dead else "(SELECT NULL stage, NULL reason, NULL source)"
        )
        self.db.execute(
            f"CREATE VIEW dead AS SELECT stage, reason, source FROM {source} WHERE stage IS NOT NULL"
        )
        if self.value("SELECT count(*) FROM reviews") == 0:
            raise ReportError(f"{output!r} has no explained reviews to report on; see its dead_letter/.")
        self.summary = read_json(fs, f"{root}/{SUMMARY}")
        self.deletion, self.deletion_provenance = read_deletion(fs, f"{root}/{DELETION_FILE}")

    def close(self) -> None:
        self.db.close()
        self.spill.cleanup()

    def value(self, query: str, *parameters) -> object:
        return self.db.execute(query, list(parameters)).fetchone()[0]

    def frame(self, query: str, *parameters) -> pd.DataFrame:
        return self.db.execute(query, list(parameters)).df()


def parquet_files(output: str, directory: str) -> list[str]:
    """The Parquet files of OUTPUT/directory/, as URLs DuckDB can open (plain paths for local files)."""
    fs, paths = files.expand(f"{output.rstrip('/')}/{directory}/*.parquet", "Output", ReportError)
    return [files.url(fs, p) for p in paths]


def sql_list(paths: Sequence[str]) -> str:
    """A SQL list of string literals."""
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def read_json(fs: files.FileSystem, path: str) -> dict | None:
    """The JSON file at path, or None when there is none."""
    if not fs.exists(path):
        return None
    with fs.open(path, "r") as f:
        return json.load(f)


def read_deletion(fs: files.FileSystem, path: str) -> tuple[pd.DataFrame | None, dict | None]:
    """deletion.parquet and its provenance record; (None, None) when there is none."""
    if not fs.exists(path):
        return None, None
    with fs.open(path, "rb") as f:
        table = pq.read_table(f)
    return table.to_pandas(), read_provenance(table.schema)


# ---------------------------------------------------------------------------------------------------------
# Reviews
# ---------------------------------------------------------------------------------------------------------

DISTINCT_TEXTS = """
CREATE TEMP TABLE texts AS
WITH firsts AS (
    SELECT review_id, source, min(target_class) AS target_class, any_value(logits) AS logits,
           review_id || chr(0) || source AS key
    FROM reviews GROUP BY review_id, source
), prints AS (
    SELECT f.key, sum(hash(t.position, t.token)) AS print, count(*) AS length
    FROM tokens t JOIN firsts f
      ON t.review_id = f.review_id AND t.source = f.source AND t.target_class = f.target_class
    WHERE t.method = $method
    GROUP BY f.key
), scored AS (
    SELECT f.*, p.print, p.length, list_transform(logits, lambda x: exp(x - list_max(logits))) AS e
    FROM firsts f JOIN prints p USING (key)
)
SELECT arg_min(review_id, key) AS review_id, arg_min(source, key) AS source, count(*) AS copies,
       arg_min(list_transform(e, lambda v: v / list_sum(e)), key) AS p
FROM scored GROUP BY print, length
"""
"""One row per distinct token sequence (texts the corpus repeats are one row, with their number of
copies; a sequence is told by its length and the sum of hash(position, token), which streams): the first
review holding it (by id, then source) and its class probabilities p (softmax of the logits)."""

LISTS = (
    ("positive", "Most positive", "highest probability of {last}", "p[-1] DESC"),
    ("negative", "Most negative", "highest probability of {first}", "p[1] DESC"),
    (
        "uncertain",
        "Most uncertain",
        "smallest gap between the two likeliest classes",
        "list_sort(p, 'DESC')[1] - coalesce(list_sort(p, 'DESC')[2], 0) ASC",
    ),
    ("sample", "Random sample", "drawn at random (seed {seed})", "hash(review_id || source || $seed)"),
)
"""(anchor, title, what it shows, SQL order) of the lists of example reviews."""


def example_lists(run: RunOutput, names: Sequence[str], methods: Sequence[str], options: ReportOptions):
    """[(anchor, title, what, [(review_id, source, copies)])] for the lists of LISTS, over distinct texts."""
    run.db.execute(DISTINCT_TEXTS, {"method": methods[0]})
    lists = []
    for anchor, title, what, order in LISTS:
        query = f"SELECT review_id, source, copies FROM texts ORDER BY {order}, review_id, source LIMIT $n"
        parameters = {"n": options.examples} | ({"seed": str(options.seed)} if "$seed" in order else {})
        rows = list(run.db.execute(query, parameters).fetchall())
        described = what.format(first=names[0], last=names[-1], seed=options.seed)
        lists.append((anchor, title, described, rows))
    return lists


def heatmap(tokens: pd.DataFrame) -> list[dict]:
    """The coloured tokens of one review, target and method (rows sorted by position)."""
    values = tokens["relevance"].to_numpy(np.float64)
    scale = float(np.abs(values).max(initial=0.0))
    spans = []
    for token, value in zip(tokens["token"], values):
        background, colour = token_colour(value, scale)
        spans.append({"token": token, "style": f"background:{background};color:{colour}", "value": value})
    return spans


def label_name(names: Sequence[str], label: float) -> str:
    """The name of a label, or the label itself when the model has no such class."""
    index = int(label)
    return names[index] if 0 <= index < len(names) else str(index)


def review_card(rows: pd.DataFrame, tokens: pd.DataFrame, copies: int, names: Sequence[str]) -> dict:
    """What the template shows of a review: its prediction (probability and logits) and label, then per
    explained target the score, what biases and stabilisers absorbed, the residual and one heatmap per
    method."""
    first = rows.iloc[0]
    logits = np.asarray(first["logits"], np.float64)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    predicted = int(first["predicted_class"])
    label = None if pd.isna(first["label"]) else int(first["label"])
    targets = []
    for _, row in rows.sort_values("target_class").iterrows():
        target = int(row["target_class"])
        lines = dict(tuple(tokens[tokens["target_class"] == target].groupby("method")))
        targets.append(
            {
                "name": names[target],
                "index": target,
                "score": row["target_score"],
                "absorbed": row["absorbed"],
                "residual": row["conservation_residual"],
                "lines": [
                    (method, method_label(method), heatmap(lines[method].sort_values("position")))
                    for method in ordered_methods(lines)
                ],
            }
        )
    return {
        "review_id": first["review_id"],
        "source": first["source"],
        "copies": copies,
        "predicted": names[predicted],
        "probability": p[predicted],
        "logits": ", ".join(f"{v:+.3f}" for v in logits),
        "label": None if label is None else label_name(names, label),
        "correct": label == predicted,
        "n_tokens": int(first["n_tokens"]),
        "truncated": bool(first["truncated"]),
        "targets": targets,
    }


def examples(run: RunOutput, names: Sequence[str], methods: Sequence[str], options: ReportOptions) -> list:
    """The lists of review cards; only the reviews shown are read whole."""
    lists = example_lists(run, names, methods, options)
    chosen = pd.DataFrame(
        sorted({(r, s) for *_, rows in lists for r, s, _ in rows}), columns=["review_id", "source"]
    )
    run.db.register("chosen", chosen)
    semi = "SEMI JOIN chosen c ON x.review_id = c.review_id AND x.source = c.source"
    reviews = run.frame(f"SELECT x.* FROM reviews x {semi}")
    tokens = run.frame(f"SELECT x.* FROM tokens x {semi}")
    run.db.unregister("chosen")
    by_review = dict(tuple(tokens.groupby(["review_id", "source"])))
    rows = dict(tuple(reviews.groupby(["review_id", "source"])))
    return [
        {
            "anchor": anchor,
            "title": title,
            "what": what,
            "cards": [
                review_card(rows[(r, s)], by_review.get((r, s), tokens.iloc[:0]), copies, names)
                for r, s, copies in chosen_rows
            ],
        }
        for anchor, title, what, chosen_rows in lists
    ]


# ---------------------------------------------------------------------------------------------------------
# Corpus view
# ---------------------------------------------------------------------------------------------------------


def ordered_methods(methods) -> list[str]:
    """Method names in the order of METHOD_LABELS (LRP first), any others after them alphabetically."""
    known = list(METHOD_LABELS)
    return sorted(methods, key=lambda m: (known.index(m) if m in known else len(known), m))


RANKINGS = (
    ("for", "mean", "DESC", True),
    ("against", "mean", "ASC", True),
    ("for", "total", "DESC", False),
    ("against", "total", "ASC", False),
)
"""(direction, statistic, SQL order, whether only tokens seen at least min_count times rank)."""


def token_tables(run: RunOutput, names: Sequence[str], methods: Sequence[str], options: ReportOptions):
    """Per method and explained class, the tokens most for and most against it by mean relevance (among
    those seen at least min_count times) and by total relevance."""
    run.db.execute(
        "CREATE TEMP TABLE token_stats AS SELECT method, target_class, token, avg(relevance) AS mean, "
        "sum(relevance) AS total, count(*) AS count FROM tokens GROUP BY ALL"
    )
    ranked = []
    for direction, statistic, order, frequent in RANKINGS:
        where = "WHERE count >= $min_count" if frequent else ""
        query = (
            f"SELECT *, '{direction}' AS direction, '{statistic}' AS statistic FROM token_stats {where} "
            f"QUALIFY row_number() OVER (PARTITION BY method, target_class ORDER BY {statistic} {order}, "
            "token) <= $top"
        )
        parameters = {"top": options.top} | ({"min_count": options.min_count} if frequent else {})
        ranked.append(run.db.execute(query, parameters).df())
    stats = pd.concat(ranked)
    blocks = []
    for method in methods:
        classes = []
        for target in sorted(stats.loc[stats["method"] == method, "target_class"].unique()):
            rows = stats[(stats["method"] == method) & (stats["target_class"] == target)]
            tables = []
            for direction, statistic, order, frequent in RANKINGS:
                table = rows[(rows["direction"] == direction) & (rows["statistic"] == statistic)]
                table = table.sort_values(statistic, ascending=order == "ASC")
                scale = float(table[statistic].abs().max()) if len(table) else 0.0
                caption = f"most {direction}, by {statistic}" + (
                    f", count ≥ {options.min_count}" if frequent else ""
                )
                tables.append(
                    {
                        "caption": caption,
                        "rows": [{**r, "bar": bar(r[statistic], scale)} for r in table.to_dict("records")],
                    }
                )
            classes.append({"name": names[int(target)], "tables": tables})
        blocks.append({"label": method_label(method), "classes": classes})
    return blocks


def bar(value: float, scale: float) -> dict:
    """An inline bar: red right of the axis for positive values, blue left of it for negative ones."""
    width = 0.0 if scale <= 0 else 50 * min(abs(value) / scale, 1.0)
    return {"side": "pos" if value >= 0 else "neg", "width": f"{width:.1f}"}


def residual_figures(run: RunOutput, summary: dict) -> list[dict]:
    """The books: the distribution of conservation residuals (reviews over the tolerance were
    dead-lettered) and, beside it, of the share of each target score absorbed by biases and stabilisers."""
    settings = summary.get("settings", {})
    books = run.frame(
        "SELECT conservation_residual AS r, abs(absorbed) AS a, abs(target_score) AS s FROM reviews"
    )
    residual = books["r"].to_numpy(np.float64)
    absorbed, score = books["a"].to_numpy(np.float64), books["s"].to_numpy(np.float64)
    share = np.divide(absorbed, score, out=np.zeros_like(score), where=score > 0)
    note = (
        f"median |residual| {np.median(np.abs(residual)):.2e}, max {np.abs(residual).max():.2e}; "
        f"{summary.get('conservation_violations', '?')} reviews over the tolerance "
        f"{settings.get('conservation_tolerance', '?')} dead-lettered."
    )
    share_note = (
        f"median {np.median(share):.1%}, p95 {np.percentile(share, 95):.1%}, max {share.max():.1%}: "
        f"what eps {settings.get('eps', '?')} and bias_factor {settings.get('bias_factor', '?')} leave on "
        "biases and stabilisers."
    )
    residuals = histogram_figure(residual, "target logit − (Σ relevance + rest + absorbed)")
    shares = histogram_figure(share, "|absorbed| / |target logit|")
    return [
        {"title": "Conservation residuals", "svg": Markup(svg(residuals)), "note": note},
        {"title": "Absorbed share", "svg": Markup(svg(shares)), "note": share_note},
    ]


def class_counts(run: RunOutput, classes: int) -> tuple[np.ndarray, np.ndarray | None, float | None, int]:
    """Reviews per predicted class, per label of the model's classes (None without labels), the accuracy
    on those labels and how many there are."""
    counts = run.frame(
        "SELECT any_value(predicted_class) AS predicted, any_value(label) AS label "
        "FROM reviews GROUP BY review_id, source"
    )
    predicted = np.bincount(counts["predicted"].astype(int), minlength=classes)
    labelled = counts[counts["label"].between(0, classes - 1)]
    if labelled.empty:
        return predicted, None, None, 0
    labels = np.bincount(labelled["label"].astype(int), minlength=classes)
    accuracy = float((labelled["label"].astype(int) == labelled["predicted"]).mean())
    return predicted, labels, accuracy, len(labelled)


def class_figure_block(names: Sequence[str], counts: tuple) -> dict:
    """Predicted classes (and labels of the model's classes where the corpus has them), with accuracy."""
    predicted, labels, accuracy, labelled = counts
    note = "no labels of the model's classes in the corpus"
    if labels is not None:
        note = f"accuracy {accuracy:.1%} on {labelled} labelled reviews"
    return {
        "title": "Predicted classes",
        "svg": Markup(svg(class_figure(names, predicted, labels))),
        "note": note,
    }


def dead_letters(run: RunOutput) -> tuple[int, list[tuple[str, int, str]]]:
    """The number of dead letters and (reason kind, count, an example source), most frequent first."""
    grouped = run.frame("SELECT stage, reason, count(*) AS n, min(source) AS example FROM dead GROUP BY ALL")
    kinds: dict[str, list] = {}
    for stage, reason, n, example in grouped.itertuples(index=False):
        entry = kinds.setdefault(reason_kind(stage, reason), [0, example])
        entry[0] += n
        entry[1] = min(entry[1], example)
    rows = sorted(((kind, n, example) for kind, (n, example) in kinds.items()), key=lambda r: (-r[1], r[0]))
    return sum(n for _, n, _ in rows), rows


def deletion_left_out(run: RunOutput) -> str | None:
    """Why evaluate's curves in the directory are not shown (they are of another run, or do not say which),
    or None when they are this run's (or there are none)."""
    if run.deletion is None:
        return None
    run_id = (run.summary or {}).get("run_id")
    evaluated = (run.deletion_provenance or {}).get("run_id")
    if run_id is not None and evaluated == run_id:
        return None
    if evaluated is None:
        why = f"{DELETION_FILE} in this directory does not say which run it evaluated"
    elif run_id is None:
        why = f"this directory's summary.json has no run id to match {DELETION_FILE} (run {evaluated})"
    else:
        why = f"{DELETION_FILE} in this directory is from run {evaluated}, not from this run ({run_id})"
    return f"{why}, so its curves are left out; run lstm-lrp evaluate again into it."


def deletion_section(run: RunOutput) -> dict | None:
    """evaluate's word-deletion curves (plot and table) when they belong to this run; else why not (None
    when there are none)."""
    if run.deletion is None:
        return None
    left_out = deletion_left_out(run)
    if left_out:
        return {"left_out": left_out}
    deletion = run.deletion
    table = deletion.pivot_table(index=["setting", "method"], columns="k", values="accuracy", sort=False)
    return {
        "left_out": None,
        "figure": {
            "title": "Accuracy after deleting k tokens",
            "svg": Markup(svg(deletion_figure(deletion))),
            "note": (
                "Arras et al. (2017): the faster accuracy falls when the most relevant tokens of correctly "
                "classified reviews are deleted (and rises when the least relevant of misclassified ones "
                "are), the better the explanation."
            ),
        },
        "ks": list(table.columns),
        "rows": [
            (setting, method_label(method), list(values)) for (setting, method), values in table.iterrows()
        ],
    }


# ---------------------------------------------------------------------------------------------------------
# Page
# ---------------------------------------------------------------------------------------------------------

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("pipeline", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def class_names(run: RunOutput, given: Sequence[str]) -> tuple[str, ...]:
    """The names of the model's classes: given, else those the run stored, else "class 0", "class 1", ..."""
    classes = run.value("SELECT len(logits) FROM reviews LIMIT 1")
    stored = tuple((run.summary or {}).get("class_names") or ())
    if given and len(given) != classes:
        raise ReportError(f"--class-names names {len(given)} classes but the model has {classes}.")
    names = tuple(given) or stored
    return names if len(names) == classes else tuple(f"class {c}" for c in range(classes))


def render(output: str, run: RunOutput, options: ReportOptions) -> str:
    """The whole page."""
    names = class_names(run, options.class_names)
    summary = run.summary or {}
    settings = summary.get("settings", {})
    methods = ordered_methods(run.frame("SELECT DISTINCT method FROM tokens")["method"])
    counts = class_counts(run, len(names))
    dead, dead_rows = dead_letters(run)
    reviews = run.value("SELECT count(*) FROM (SELECT DISTINCT review_id, source FROM reviews)")
    tokens = run.value(
        "SELECT sum(n) FROM (SELECT any_value(n_tokens) AS n FROM reviews GROUP BY review_id, source)"
    )
    residual = run.value("SELECT median(abs(conservation_residual)) FROM reviews")
    lists = examples(run, names, methods, options)
    deletion = deletion_section(run)
    sections = [("reviews", "Reviews"), *((e["anchor"], e["title"]) for e in lists)]
    sections += [("tokens", "Top tokens"), ("corpus", "Corpus"), ("dead-letters", "Dead letters")]
    sections += [("deletion", "Word deletion")] if deletion is not None else []
    return TEMPLATES.get_template("report.html.j2").render(
        output=output,
        run_id=summary.get("run_id"),
        tool_version=summary.get("tool_version"),
        started_at=summary.get("started_at"),
        model=(summary.get("model") or {}).get("path", settings.get("model", "?")),
        described=(
            f"input {', '.join(settings.get('input', ['?']))} · "
            f"methods {', '.join(method_label(m) for m in methods)} · eps {settings.get('eps', '?')} · "
            f"bias_factor {settings.get('bias_factor', '?')} · target {settings.get('target', '?')}"
        ),
        cards=[
            (f"{reviews:,}", "reviews explained"),
            (f"{int(tokens):,}", "tokens"),
            ("no labels" if counts[2] is None else f"{counts[2]:.1%}", "accuracy"),
            (f"{residual:.1e}", "median |residual|"),
            (f"{dead:,}", "dead letters"),
        ],
        sections=sections,
        positive=f"rgb{POSITIVE_RGB}",
        negative=f"rgb{NEGATIVE_RGB}",
        lists=lists,
        token_blocks=token_tables(run, names, methods, options),
        figures=[*residual_figures(run, summary), class_figure_block(names, counts)],
        dead=dead,
        dead_rows=dead_rows,
        deletion=deletion,
    )


# ---------------------------------------------------------------------------------------------------------
# Command
# ---------------------------------------------------------------------------------------------------------


def parse_report_args(argv: list[str]) -> tuple[str, str, ReportOptions]:
    """Flags -> output directory, page path and options; ReportError for impossible values."""
    parser = FlagParser(prog="lstm-lrp report")
    add_report_flags(parser)
    args = parser.parse_args(argv)
    for flag, value in (("--examples", args.examples), ("--min-count", args.min_count), ("--top", args.top)):
        if value < 1:
            raise ReportError(f"{flag} must be at least 1, got {value}.")
    names = tuple(n.strip() for n in args.class_names.split(",")) if args.class_names else ()
    page = args.html or f"{args.output_dir.rstrip('/')}/{REPORT_FILE}"
    return args.output_dir, page, ReportOptions(args.examples, args.min_count, args.top, names, args.seed)


def write_atomically(page: str, text: str) -> None:
    """Write `page` beside its place, then rename it there: a page is never half written."""
    fs, path = files.filesystem(page, "Page", ReportError)
    folder, name = path.rsplit("/", 1) if "/" in path else (".", path)
    partial = f"{folder}/.{name}.partial"
    try:
        with fs.open(partial, "w", encoding="utf-8") as f:
            f.write(text)
        fs.mv(partial, path)
    except BaseException:
        if fs.exists(partial):
            fs.rm(partial)
        raise


def report(argv: list[str]) -> str:
    """Write the report the flags ask for; returns what to print."""
    output, page, options = parse_report_args(argv)
    run = RunOutput(output)
    try:
        text, left_out = render(output, run, options), deletion_left_out(run)
    finally:
        run.close()
    write_atomically(page, text)
    return f"Report: {page} ({len(text) / 1e6:.1f} MB)" + (f"\nWord deletion: {left_out}" if left_out else "")
