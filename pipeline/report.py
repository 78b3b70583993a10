"""`lstm-lrp report OUTPUT_DIR`: one self-contained HTML page (no scripts, no external assets) of a run.

Per-review heatmaps (Arras et al. 2017, Fig. 1 style: red tokens speak for the explained class, blue against
it, intensity scaled per review and method, the exact value on hover) for the most positive, most negative
and most uncertain reviews and a random sample; then the corpus: top tokens per class and method, the
conservation residuals beside the absorbed shares, the class distribution, dead letters by reason, and the
word-deletion curves of `lstm-lrp evaluate` when OUTPUT_DIR holds deletion.parquet.
"""

from __future__ import annotations

import argparse
import html
import json
import string
from collections.abc import Sequence
from dataclasses import dataclass

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.evaluate import DELETION_FILE
from pipeline.plots import METHOD_LABELS, class_figure, deletion_figure, histogram_figure, method_label, svg
from pipeline.run import FlagParser
from pipeline.summary import reason_kind

NEGATIVE_RGB = (33, 102, 172)  # the ends of ColorBrewer's RdBu scale
POSITIVE_RGB = (178, 24, 43)
REPORT_FILE = "report.html"


class ReportError(ValueError):
    """A directory that is not a run's output, or report flags that do not fit it; the message says why."""


@dataclass(frozen=True)
class RunOutput:
    """What `lstm-lrp run` wrote: reviews (one row per review and target), tokens (Arrow: one row per token,
    target and method), dead letters, summary.json (None if absent) and evaluate's deletion curves."""

    reviews: pd.DataFrame
    tokens: pa.Table
    dead: pd.DataFrame
    summary: dict | None
    deletion: pd.DataFrame | None


@dataclass(frozen=True)
class ReportOptions:
    """examples: reviews per list; min_count: occurrences for a token's mean to count; top: tokens per
    table; class_names: one per class; seed: of the random sample."""

    examples: int = 20
    min_count: int = 5
    top: int = 15
    class_names: tuple[str, ...] = ()
    seed: int = 0


# ---------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------


def read_parquet(fs: fsspec.AbstractFileSystem, pattern: str) -> pa.Table | None:
    """All Parquet files matching pattern, as one table; None when there are none."""
    paths = sorted(fs.glob(pattern))
    if not paths:
        return None
    tables = []
    for path in paths:
        with fs.open(path, "rb") as f:
            tables.append(pq.read_table(f))
    return pa.concat_tables(tables)


def read_json(fs: fsspec.AbstractFileSystem, path: str) -> dict | None:
    """The JSON file at path, or None when there is none."""
    if not fs.exists(path):
        return None
    with fs.open(path, "r") as f:
        return json.load(f)


def read_output(output: str) -> RunOutput:
    """Read a run's output directory; ReportError if it holds no explained reviews."""
    fs, _, (root,) = fsspec.core.get_fs_token_paths(output)
    reviews, tokens = (
        read_parquet(fs, f"{root}/reviews/*.parquet"),
        read_parquet(fs, f"{root}/tokens/*.parquet"),
    )
    if reviews is None or tokens is None:
        raise ReportError(f"{output!r} holds no reviews/ and tokens/ Parquet files; is it a run's --output?")
    if reviews.num_rows == 0:
        raise ReportError(f"{output!r} has no explained reviews to report on; see its dead_letter/.")
    dead = read_parquet(fs, f"{root}/dead_letter/*.parquet")
    deletion = read_parquet(fs, f"{root}/{DELETION_FILE}")
    return RunOutput(
        reviews.to_pandas(),
        tokens,
        pd.DataFrame(columns=["stage", "reason", "source"]) if dead is None else dead.to_pandas(),
        read_json(fs, f"{root}/summary.json"),
        None if deletion is None else deletion.to_pandas(),
    )


# ---------------------------------------------------------------------------------------------------------
# Choosing reviews
# ---------------------------------------------------------------------------------------------------------


def ordered_methods(methods) -> list[str]:
    """Method names in the order of METHOD_LABELS (LRP first), any others after them alphabetically."""
    known = list(METHOD_LABELS)
    return sorted(methods, key=lambda m: (known.index(m) if m in known else len(known), m))


def softmax(logits: np.ndarray) -> np.ndarray:
    """(N, C) logits -> (N, C) class probabilities."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def review_scores(reviews: pd.DataFrame) -> pd.DataFrame:
    """One row per review id (ids shared by several reviews are left out: tokens/ cannot tell them apart)
    with p_first, p_last (probabilities of the first and last class) and margin (top-two gap)."""
    first = reviews.drop_duplicates(["review_id", "source"])
    unique = first[~first["review_id"].duplicated(keep=False)]
    if unique.empty:
        raise ReportError(
            "No review id is unique, so no review can be shown; run with --id-field naming unique ids."
        )
    p = softmax(np.stack(unique["logits"].to_numpy()).astype(np.float64))
    top_two = np.sort(p, axis=1)[:, -2:] if p.shape[1] > 1 else np.zeros((len(p), 2))
    return pd.DataFrame(
        {"p_first": p[:, 0], "p_last": p[:, -1], "margin": top_two[:, 1] - top_two[:, 0]},
        index=unique["review_id"].to_numpy(),
    )


def example_lists(scores: pd.DataFrame, names: Sequence[str], options: ReportOptions) -> list[tuple]:
    """(anchor, title, what it shows, review ids) for the most positive, most negative and most uncertain
    reviews and a random sample."""
    n = options.examples
    rng = np.random.default_rng(options.seed)
    sample = rng.choice(scores.index.to_numpy(), size=min(n, len(scores)), replace=False)
    positive, negative = scores.nlargest(n, "p_last").index, scores.nlargest(n, "p_first").index
    return [
        ("positive", "Most positive", f"highest probability of {names[-1]}", positive),
        ("negative", "Most negative", f"highest probability of {names[0]}", negative),
        (
            "uncertain",
            "Most uncertain",
            "smallest gap between the two likeliest classes",
            scores.nsmallest(n, "margin").index,
        ),
        ("sample", "Random sample", f"{len(sample)} reviews drawn at random (seed {options.seed})", sample),
    ]


# ---------------------------------------------------------------------------------------------------------
# Heatmaps
# ---------------------------------------------------------------------------------------------------------


def token_colour(value: float, scale: float) -> tuple[str, str]:
    """Background and text colour of a token: white -> red (positive) or blue (negative), linear in
    |value| / scale, the review's largest |relevance|; white text on dark backgrounds."""
    share = min(abs(value) / scale, 1.0) if scale > 0 else 0.0
    end = POSITIVE_RGB if value > 0 else NEGATIVE_RGB
    rgb = (round(255 + share * (c - 255)) for c in end)
    return "#{:02x}{:02x}{:02x}".format(*rgb), "#fff" if share > 0.6 else "#1b1b1b"


def heatmap(review_id: str, target: int, method: str, tokens: pd.DataFrame) -> str:
    """One line of coloured tokens (rows of one review, target and method, sorted by position)."""
    values = tokens["relevance"].to_numpy(np.float64)
    scale = float(np.abs(values).max(initial=0.0))
    spans = []
    for token, value in zip(tokens["token"], values):
        background, colour = token_colour(value, scale)
        style = f"background:{background};color:{colour}"
        spans.append(f'<span style="{style}" title="{value:+.6g}">{html.escape(token)}</span>')
    review, method = html.escape(review_id), html.escape(method)
    attributes = f'data-review="{review}" data-target="{target}" data-method="{method}"'
    return f'<div class="heatmap" {attributes}>{" ".join(spans)}</div>'


def label_name(names: Sequence[str], label: float) -> str:
    """The name of a label, or the label itself when the model has no such class."""
    index = int(label)
    return names[index] if 0 <= index < len(names) else str(index)


def review_card(rows: pd.DataFrame, tokens: pd.DataFrame, names: Sequence[str]) -> str:
    """A review: its prediction and label, then per explained target the score, the residual and one
    heatmap per method."""
    first = rows.iloc[0]
    predicted, label = names[first["predicted_class"]], first["label"]
    verdict = ""
    if not pd.isna(label):
        kind = "ok" if int(label) == first["predicted_class"] else "bad"
        verdict = f'<span class="tag {kind}">label {html.escape(label_name(names, label))}</span>'
    truncated = '<span class="tag">truncated</span>' if first["truncated"] else ""
    parts = [
        f'<article class="review" data-review-id="{html.escape(first["review_id"])}">',
        f'<div class="meta"><span class="rid" title="{html.escape(first["source"])}">'
        f"{html.escape(first['review_id'])}</span>"
        f'<span class="tag pred">predicted {html.escape(predicted)}</span>{verdict}'
        f'<span class="dim">{first["n_tokens"]} tokens</span>{truncated}</div>',
    ]
    for _, row in rows.sort_values("target_class").iterrows():
        target = int(row["target_class"])
        parts.append(
            f'<div class="target">explaining <b>{html.escape(names[target])}</b> · score '
            f"{row['target_score']:+.3f} · absorbed {row['absorbed']:+.3f} · residual "
            f"{row['conservation_residual']:+.2e}</div>"
        )
        lines = dict(tuple(tokens[tokens["target_class"] == target].groupby("method")))
        for method in ordered_methods(lines):
            line = lines[method]
            parts.append(
                f'<div class="line"><span class="method">{html.escape(method_label(method))}</span>'
                f"{heatmap(first['review_id'], target, method, line.sort_values('position'))}</div>"
            )
    parts.append("</article>")
    return "\n".join(parts)


def examples_section(run: RunOutput, names: Sequence[str], options: ReportOptions) -> str:
    """The four lists of review cards."""
    lists = example_lists(review_scores(run.reviews), names, options)
    wanted = pa.array(sorted({i for *_, ids in lists for i in ids}), pa.string())
    tokens = run.tokens.filter(pc.is_in(run.tokens["review_id"], value_set=wanted)).to_pandas()
    by_review = dict(tuple(tokens.groupby("review_id")))
    rows = dict(tuple(run.reviews[run.reviews["review_id"].isin(wanted.to_pylist())].groupby("review_id")))
    blocks = []
    for anchor, title, what, ids in lists:
        cards = "\n".join(review_card(rows[i], by_review.get(i, tokens.iloc[:0]), names) for i in ids)
        blocks.append(
            f'<h3 id="{anchor}">{title} <span class="dim">— {html.escape(what)}</span></h3>\n{cards}'
        )
    return "\n".join(blocks)


# ---------------------------------------------------------------------------------------------------------
# Corpus view
# ---------------------------------------------------------------------------------------------------------


def token_statistics(tokens: pa.Table) -> pd.DataFrame:
    """Per (method, target_class, token): mean, total and count of the relevance."""
    grouped = tokens.group_by(["method", "target_class", "token"]).aggregate(
        [("relevance", "mean"), ("relevance", "sum"), ("relevance", "count")]
    )
    return grouped.to_pandas().rename(
        columns={"relevance_mean": "mean", "relevance_sum": "total", "relevance_count": "count"}
    )


def bar(value: float, scale: float) -> str:
    """An inline bar, red right of the axis for positive values, blue left of it for negative ones."""
    width = 0.0 if scale <= 0 else 50 * min(abs(value) / scale, 1.0)
    side = "pos" if value >= 0 else "neg"
    return f'<span class="bar"><span class="{side}" style="width:{width:.1f}%"></span></span>'


def token_table(title: str, rows: pd.DataFrame, key: str) -> str:
    """A ranked table of tokens with mean, total and count; a bar shows the ranking column."""
    scale = float(rows[key].abs().max()) if len(rows) else 0.0
    body = "".join(
        f"<tr><td>{html.escape(r.token)}</td><td>{bar(getattr(r, key), scale)}</td>"
        f"<td class='num'>{r.mean:+.4f}</td><td class='num'>{r.total:+.3f}</td>"
        f"<td class='num'>{r.count}</td></tr>"
        for r in rows.itertuples()
    )
    empty = "<tr><td colspan='5' class='dim'>no token often enough</td></tr>"
    return (
        f"<table class='tokens'><caption>{title}</caption><thead><tr><th>token</th><th></th><th>mean</th>"
        f"<th>total</th><th>count</th></tr></thead><tbody>{body or empty}</tbody></table>"
    )


def tokens_section(tokens: pa.Table, names: Sequence[str], options: ReportOptions) -> str:
    """Top tokens by mean (count >= min_count) and by total relevance, per method and explained class."""
    stats = token_statistics(tokens)
    methods = ordered_methods(stats["method"].unique())
    blocks = []
    for n, method in enumerate(methods):
        tables = []
        for target in sorted(stats.loc[stats["method"] == method, "target_class"].unique()):
            rows = stats[(stats["method"] == method) & (stats["target_class"] == target)]
            frequent = rows[rows["count"] >= options.min_count]
            tables.append(
                f"<div class='pair'><h4>explaining {html.escape(names[target])}</h4>"
                + token_table(
                    f"by mean, count ≥ {options.min_count}", frequent.nlargest(options.top, "mean"), "mean"
                )
                + token_table("by total", rows.nlargest(options.top, "total"), "total")
                + "</div>"
            )
        opened = " open" if n == 0 else ""
        blocks.append(
            f"<details{opened}><summary>{html.escape(method_label(method))}</summary>"
            f"<div class='pairs'>{''.join(tables)}</div></details>"
        )
    return "\n".join(blocks)


def figure_block(title: str, figure_svg: str, note: str, wide: bool = False) -> str:
    """A captioned figure with a note under it; wide ones take the page's width."""
    kind = " class='wide'" if wide else ""
    return f"<figure{kind}><figcaption>{title}</figcaption>{figure_svg}<p class='dim'>{note}</p></figure>"


def residual_block(reviews: pd.DataFrame, summary: dict | None) -> str:
    """The books: the distribution of conservation residuals (reviews over the tolerance were
    dead-lettered) and, beside it, of the share of each target score absorbed by biases and stabilisers."""
    residual = reviews["conservation_residual"].to_numpy(np.float64)
    summary = summary or {}
    settings = summary.get("settings", {})
    note = (
        f"median |residual| {np.median(np.abs(residual)):.2e}, max {np.abs(residual).max():.2e}; "
        f"{summary.get('conservation_violations', '?')} reviews over the tolerance "
        f"{settings.get('conservation_tolerance', '?')} dead-lettered."
    )
    histogram = histogram_figure(residual, "target logit − (Σ relevance + rest + absorbed)")
    score = reviews["target_score"].abs().to_numpy(np.float64)
    absorbed = reviews["absorbed"].abs().to_numpy(np.float64)
    share = np.divide(absorbed, score, out=np.zeros_like(score), where=score > 0)
    share_note = (
        f"median {np.median(share):.1%}, p95 {np.percentile(share, 95):.1%}, max {share.max():.1%}: "
        f"what eps {settings.get('eps', '?')} and bias_factor {settings.get('bias_factor', '?')} leave on "
        "biases and stabilisers."
    )
    shares = histogram_figure(share, "|absorbed| / |target logit|")
    return figure_block("Conservation residuals", svg(histogram), note) + figure_block(
        "Absorbed share", svg(shares), share_note
    )


def class_block(reviews: pd.DataFrame, names: Sequence[str]) -> str:
    """Predicted classes (and labels of the model's classes where the corpus has them), with accuracy."""
    first = reviews.drop_duplicates(["review_id", "source"])
    predicted = np.bincount(first["predicted_class"], minlength=len(names))
    labelled = first[first["label"].between(0, len(names) - 1)]
    labels = np.bincount(labelled["label"].astype(int), minlength=len(names)) if len(labelled) else None
    note = "no labels of the model's classes in the corpus"
    if labels is not None:
        accuracy = (labelled["label"].astype(int) == labelled["predicted_class"]).mean()
        note = f"accuracy {accuracy:.1%} on {len(labelled)} labelled reviews"
    return figure_block("Predicted classes", svg(class_figure(names, predicted, labels)), note)


def dead_letter_block(dead: pd.DataFrame) -> str:
    """Dead letters counted by reason (particulars such as counts removed), with an example source."""
    if dead.empty:
        return "<h3>Dead letters</h3><p class='dim'>None: every review read was explained.</p>"
    kinds = [reason_kind(s, r) for s, r in zip(dead["stage"], dead["reason"])]
    grouped = dead.assign(kind=kinds).groupby("kind")
    rows = "".join(
        f"<tr><td>{html.escape(kind)}</td><td class='num'>{len(group)}</td>"
        f"<td class='dim'>{html.escape(str(group['source'].iloc[0]))}</td></tr>"
        for kind, group in sorted(grouped, key=lambda item: -len(item[1]))
    )
    return (
        f"<h3>Dead letters <span class='dim'>— {len(dead)} reviews</span></h3><table class='plain'>"
        "<thead><tr><th>reason</th><th>reviews</th><th>for example</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def deletion_block(deletion: pd.DataFrame) -> str:
    """evaluate's word-deletion curves, plot and table."""
    table = deletion.pivot_table(index=["setting", "method"], columns="k", values="accuracy", sort=False)
    header = "".join(f"<th>k={k}</th>" for k in table.columns)
    rows = "".join(
        f"<tr><td>{html.escape(setting)}</td><td>{html.escape(method_label(method))}</td>"
        + "".join(f"<td class='num'>{v:.3f}</td>" for v in values)
        + "</tr>"
        for (setting, method), values in table.iterrows()
    )
    note = (
        "Arras et al. (2017): the faster accuracy falls when the most relevant tokens of correctly "
        "classified reviews are deleted (and rises when the least relevant of misclassified ones are), the "
        "better the explanation."
    )
    return (
        figure_block("Accuracy after deleting k tokens", svg(deletion_figure(deletion)), note, wide=True)
        + f"<table class='plain'><thead><tr><th>setting</th><th>method</th>{header}</tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


# ---------------------------------------------------------------------------------------------------------
# Page
# ---------------------------------------------------------------------------------------------------------

PAGE = string.Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
:root { --ink: #1b1b1b; --dim: #6b7280; --line: #e5e7eb; --panel: #f8f9fb; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 32px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 20px; margin: 40px 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--ink); }
h3 { font-size: 16px; margin: 28px 0 10px; }
h4 { font-size: 14px; margin: 0 0 6px; }
.dim { color: var(--dim); font-weight: normal; }
.sub { color: var(--dim); margin: 0 0 16px; font-size: 13px; overflow-wrap: anywhere; }
nav a { margin-right: 14px; color: #2166ac; text-decoration: none; font-size: 14px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 18px 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px;
  min-width: 150px; }
.card b { display: block; font-size: 22px; }
.card span { color: var(--dim); font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; }
.legend { display: flex; align-items: center; gap: 14px; background: var(--panel);
  border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; font-size: 13px; }
.scale { width: 260px; height: 14px; border-radius: 3px; flex: none;
  background: linear-gradient(to right, rgb$negative, #fff, rgb$positive); border: 1px solid var(--line); }
.scale-labels { display: flex; justify-content: space-between; width: 260px; font-size: 11px;
  color: var(--dim); }
.review { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; margin: 10px 0; }
.meta { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; font-size: 13px; margin-bottom: 4px; }
.rid { font-weight: 600; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
.tag { border-radius: 10px; padding: 0 8px; background: #eef0f3; font-size: 12px; }
.tag.pred { background: #e0e7ff; } .tag.ok { background: #dcfce7; } .tag.bad { background: #fee2e2; }
.target { font-size: 12px; color: var(--dim); margin: 6px 0 2px; }
.line { display: flex; gap: 10px; align-items: baseline; margin: 3px 0; }
.method { flex: none; width: 128px; font-size: 11px; color: var(--dim); text-align: right;
  white-space: nowrap; }
.heatmap { line-height: 1.9; }
.heatmap span { padding: 1px 3px; border-radius: 3px; white-space: nowrap; }
.heatmap span:hover { outline: 2px solid var(--ink); }
details { margin: 10px 0; } summary { cursor: pointer; font-weight: 600; margin-bottom: 8px; }
.pairs { display: flex; flex-wrap: wrap; gap: 28px; }
.pair { display: flex; flex-wrap: wrap; gap: 16px; }
.pair h4 { width: 100%; }
table { border-collapse: collapse; font-size: 13px; }
caption { text-align: left; font-size: 12px; color: var(--dim); padding-bottom: 4px; }
th { text-align: left; font-weight: 600; border-bottom: 1px solid var(--ink); padding: 3px 8px; }
td { border-bottom: 1px solid var(--line); padding: 2px 8px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: inline-block; position: relative; width: 90px; height: 10px; background: var(--panel); }
.bar span { position: absolute; top: 0; height: 10px; }
.bar .pos { left: 50%; background: rgb$positive; } .bar .neg { right: 50%; background: rgb$negative; }
.figures { display: flex; flex-wrap: wrap; gap: 24px; }
figure { margin: 0; flex: 1 1 460px; max-width: 540px; } figure.wide { max-width: none; }
figcaption { font-weight: 600; margin-bottom: 4px; }
figure svg { max-width: 100%; height: auto; }
footer { margin-top: 48px; font-size: 12px; color: var(--dim); }
</style>
</head>
<body>
<main>
$body
</main>
</body>
</html>
"""
)


def header(output: str, run: RunOutput) -> str:
    """Title, what was run, and the headline numbers."""
    summary = run.summary or {}
    settings = summary.get("settings", {})
    methods = ordered_methods(run.tokens["method"].unique().to_pylist())
    described = (
        f"model {settings.get('model', '?')} · input {', '.join(settings.get('input', ['?']))} · "
        f"methods {', '.join(method_label(m) for m in methods)} · eps {settings.get('eps', '?')} · "
        f"bias_factor {settings.get('bias_factor', '?')} · target {settings.get('target', '?')}"
    )
    reviews = run.reviews.drop_duplicates(["review_id", "source"])
    labelled = reviews.dropna(subset=["label"])
    accuracy = (labelled["label"] == labelled["predicted_class"]).mean() if len(labelled) else None
    cards = [
        (f"{len(reviews):,}", "reviews explained"),
        (f"{int(reviews['n_tokens'].sum()):,}", "tokens"),
        ("no labels" if accuracy is None else f"{accuracy:.1%}", "accuracy"),
        (f"{np.median(np.abs(run.reviews['conservation_residual'])):.1e}", "median |residual|"),
        (f"{len(run.dead):,}", "dead letters"),
    ]
    return (
        f"<h1>Relevance report</h1><p class='sub'>{html.escape(output)}<br>{html.escape(described)}</p>"
        "<nav><a href='#reviews'>Reviews</a><a href='#tokens'>Top tokens</a><a href='#corpus'>Corpus</a>"
        + ("<a href='#deletion'>Word deletion</a>" if run.deletion is not None else "")
        + "</nav><div class='cards'>"
        + "".join(f"<div class='card'><b>{html.escape(v)}</b><span>{k}</span></div>" for v, k in cards)
        + "</div>"
    )


LEGEND = """<div class="legend"><div><div class="scale"></div><div class="scale-labels">
<span>against the class</span><span>0</span><span>for the class</span></div></div>
<div>Each token's colour is its relevance for the explained class:
<b style="color:rgb$positive">red</b> speaks for it, <b style="color:rgb$negative">blue</b> against it.
Intensity is scaled per review and method (the largest |relevance| gets full colour); hover a token for its
exact value.</div></div>"""


def class_names(reviews: pd.DataFrame, given: Sequence[str]) -> tuple[str, ...]:
    """The names of the model's classes: given, or "class 0", "class 1", ..."""
    classes = len(reviews["logits"].iloc[0])
    if given and len(given) != classes:
        raise ReportError(f"--class-names names {len(given)} classes but the model has {classes}.")
    return tuple(given) or tuple(f"class {c}" for c in range(classes))


def render(output: str, run: RunOutput, options: ReportOptions) -> str:
    """The whole page."""
    names = class_names(run.reviews, options.class_names)
    colours = {"positive": str(POSITIVE_RGB), "negative": str(NEGATIVE_RGB)}
    corpus = "".join([residual_block(run.reviews, run.summary), class_block(run.reviews, names)])
    sections = [
        header(output, run),
        string.Template(LEGEND).substitute(colours),
        f"<h2 id='reviews'>Reviews</h2>{examples_section(run, names, options)}",
        f"<h2 id='tokens'>Top tokens</h2>{tokens_section(run.tokens, names, options)}",
        f"<h2 id='corpus'>Corpus</h2><div class='figures'>{corpus}</div>{dead_letter_block(run.dead)}",
    ]
    if run.deletion is not None:
        sections.append(f"<h2 id='deletion'>Word deletion</h2>{deletion_block(run.deletion)}")
    sections.append("<footer>Written by lstm-lrp report. LRP for LSTMs: Arras et al. (2017).</footer>")
    title = f"Relevance report — {output}"
    return PAGE.substitute(colours, title=html.escape(title), body="\n".join(sections))


# ---------------------------------------------------------------------------------------------------------
# Command
# ---------------------------------------------------------------------------------------------------------


def add_report_flags(parser: argparse.ArgumentParser) -> None:
    """The arguments of `lstm-lrp report`."""
    add = parser.add_argument
    add("output_dir", help="a run's --output directory (or URL)")
    add("--html", help=f"the page to write (default OUTPUT_DIR/{REPORT_FILE})")
    add("--examples", type=int, default=20, help="reviews in each list of examples (default 20)")
    add("--min-count", type=int, default=5, help="occurrences for a token's mean to rank (default 5)")
    add("--top", type=int, default=15, help="tokens per table (default 15)")
    add("--class-names", help="comma-separated names of the classes, e.g. negative,positive")
    add("--seed", type=int, default=0, help="seed of the random sample (default 0)")
    add("--debug", action="store_true", help="show tracebacks")


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


def report(argv: list[str]) -> str:
    """Write the report the flags ask for; returns what to print."""
    output, page, options = parse_report_args(argv)
    run = read_output(output)
    text = render(output, run, options)
    with fsspec.open(page, "w", encoding="utf-8") as f:
        f.write(text)
    return f"Report: {page} ({len(text) / 1e6:.1f} MB)"
