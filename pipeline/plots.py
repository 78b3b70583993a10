"""Figures of `lstm-lrp evaluate` and `lstm-lrp report`: matplotlib Figures drawn without pyplot (no GUI
backend, no global figure state), saved as inline SVG or PNG."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

METHOD_LABELS = {"lrp": "LRP", "gi": "Gradient × Input", "sa": "Sensitivity Analysis", "random": "Random"}
METHOD_COLORS = {"lrp": "#c0392b", "gi": "#d68910", "sa": "#2874a6", "random": "#7f8c8d"}
SETTING_TITLES = {
    "correct": "Correctly classified: most relevant deleted first",
    "misclassified": "Misclassified: least relevant deleted first",
}
STYLE = {
    "svg.fonttype": "none",  # text stays text: small files, drawn in the page's fonts
    "svg.hashsalt": "lstm-lrp",  # stable element ids
    "font.size": 10,
    "font.family": ["DejaVu Sans", "sans-serif"],
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
}
styled = matplotlib.rc_context(STYLE)
"""Decorator: draw or save a figure in the house style."""


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def outside_legend(figure: Figure) -> None:
    """One legend for the figure, right of its axes, so that it never covers what they show (constrained
    layout makes room for it)."""
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right upper", frameon=False, fontsize=9)


@styled
def deletion_figure(curves: pd.DataFrame) -> Figure:
    """Accuracy against k, one panel per setting and one line per method (rows of deletion.parquet)."""
    settings = [s for s in SETTING_TITLES if s in set(curves["setting"])]
    figure = Figure(figsize=(5.4 * len(settings), 3.6), layout="constrained")
    for ax, setting in zip(figure.subplots(1, len(settings), squeeze=False)[0], settings):
        rows = curves[curves["setting"] == setting]
        for method, line in rows.groupby("method", sort=False):
            line = line.sort_values("k")
            ax.plot(
                line["k"],
                line["accuracy"],
                "--" if method == "random" else "-",
                marker="o",
                markersize=3.5,
                color=METHOD_COLORS.get(method),
                label=method_label(method),
            )
        ax.set_title(f"{SETTING_TITLES[setting]}\n({rows['n_reviews'].iloc[0]} reviews)")
        ax.set_xlabel("tokens deleted (k)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    outside_legend(figure)
    return figure


@styled
def histogram_figure(values: np.ndarray, xlabel: str, bins: int = 40) -> Figure:
    """A histogram of values, with their median marked."""
    figure = Figure(figsize=(5.4, 3.0), layout="constrained")
    ax = figure.subplots()
    ax.hist(values, bins=bins, color="#5d6d7e", edgecolor="white", linewidth=0.5)
    ax.axvline(float(np.median(values)), color="#c0392b", linewidth=1.2, label="median")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("reviews")
    outside_legend(figure)
    return figure


@styled
def class_figure(names: Sequence[str], predicted: Sequence[int], labels: Sequence[int] | None) -> Figure:
    """Reviews per class: predicted, and labelled beside it when the corpus has labels."""
    figure = Figure(figsize=(5.4, 3.0), layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(names))
    width = 0.4 if labels is not None else 0.6
    offset = width / 2 if labels is not None else 0.0
    ax.bar(positions - offset, predicted, width, color="#2874a6", label="predicted")
    if labels is not None:
        ax.bar(positions + offset, labels, width, color="#aab7b8", label="label")
    ax.set_xticks(positions, names)
    ax.set_ylabel("reviews")
    outside_legend(figure)
    return figure


@styled
def svg(figure: Figure) -> str:
    """The figure as an inline <svg> element: no XML prologue, no metadata."""
    buffer = io.StringIO()
    figure.savefig(
        buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None}
    )
    text = buffer.getvalue()
    return text[text.index("<svg") :]


@styled
def save_png(figure: Figure, file) -> None:
    """Write the figure as PNG to an open binary file."""
    figure.savefig(file, format="png", dpi=120)
