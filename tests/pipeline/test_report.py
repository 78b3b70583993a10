"""`lstm-lrp report`: the HTML page of a run's output — heatmaps for chosen reviews, self-contained, the
corpus view, the deletion curves when present — and, where Chromium is installed, a rendered screenshot."""

from __future__ import annotations

import glob
import itertools
import json
import pathlib
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.demo import DEMO_CORPUS, DEMO_MODEL, DEMO_VOCAB
from pipeline.run import run

CHROMIUM = pathlib.Path("/usr/bin/chromium")
REVIEWS = 24


class Page(HTMLParser):
    """Collects the heatmaps (review, target, method) -> [(token, title)] and every tag's attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.heatmaps: dict[tuple[str, int, str], list[tuple[str, str]]] = {}
        self.tags: list[tuple[str, dict]] = []
        self.current: list | None = None
        self.title: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "div" and "data-review" in attributes:
            key = (attributes["data-review"], int(attributes["data-target"]), attributes["data-method"])
            self.current = self.heatmaps[key] = []  # a review in several lists: its heatmaps are identical
        elif tag == "span" and self.current is not None:
            self.title = attributes["title"]

    def handle_data(self, data):
        if self.title is not None:
            self.current.append((data, self.title))
            self.title = None

    def handle_endtag(self, tag):
        if tag == "div":
            self.current = None


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> pathlib.Path:
    """A run over the first REVIEWS demo reviews plus two broken lines, with all three methods."""
    root = tmp_path_factory.mktemp("report")
    with open(DEMO_CORPUS, encoding="utf-8") as f:
        lines = list(itertools.islice(f, REVIEWS))
    lines += ['{"id": "blank", "text": "   ", "label": 1}\n', "not json\n"]
    corpus = root / "reviews.jsonl"
    corpus.write_text("".join(lines), encoding="utf-8")
    out = root / "out"
    model = ["--model", str(DEMO_MODEL), "--vocab", str(DEMO_VOCAB)]
    run(["--input", str(corpus), *model, "--output", str(out), "--method", "lrp,gi,sa", "--target", "all"])
    return out


def read(output: pathlib.Path, name: str) -> pd.DataFrame:
    return pq.read_table(glob.glob(f"{output}/{name}/*.parquet")).to_pandas()


def write_report(output: pathlib.Path, *flags: str) -> str:
    page = output.parent / "report.html"
    assert main(["report", str(output), "--html", str(page), *flags]) == 0
    return page.read_text(encoding="utf-8")


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def test_heatmaps_show_each_token_with_its_relevance(output):
    page = parse(write_report(output, "--examples", str(REVIEWS)))
    tokens = read(output, "tokens")
    for review_id in ("demo-0001", "demo-0005", "demo-0017"):
        for (target, method), rows in tokens[tokens.review_id == review_id].groupby(
            ["target_class", "method"]
        ):
            shown = page.heatmaps[(review_id, target, method)]
            rows = rows.sort_values("position")
            assert [token for token, _ in shown] == rows.token.tolist()
            np.testing.assert_allclose([float(t) for _, t in shown], rows.relevance, rtol=1e-5, atol=1e-9)
    assert {method for _, _, method in page.heatmaps} == {"lrp", "gi", "sa"}
    assert {target for _, target, _ in page.heatmaps} == {0, 1}


def test_lists_rank_reviews_by_prediction(output):
    text = write_report(output, "--examples", "3", "--class-names", "negative,positive")
    reviews = read(output, "reviews").drop_duplicates("review_id")
    logits = np.stack(reviews.logits.to_numpy())
    margin = logits[:, 1] - logits[:, 0]
    expected = {
        "positive": reviews.review_id.iloc[np.argmax(margin)],
        "negative": reviews.review_id.iloc[np.argmin(margin)],
        "uncertain": reviews.review_id.iloc[np.argmin(np.abs(margin))],
    }
    for anchor, review_id in expected.items():
        section = text.split(f'<h3 id="{anchor}">')[1].split("<h3")[0]
        assert re.findall(r'<article class="review" data-review-id="([^"]+)"', section)[0] == review_id
        assert section.count("<article") == 3
    assert "predicted positive" in text or "predicted negative" in text


def test_page_is_self_contained(output):
    page = parse(write_report(output))
    for tag, attributes in page.tags:
        for name in ("src", "href", "xlink:href", "data"):
            value = attributes.get(name) or ""
            assert not re.match(r"\s*(https?:)?//", value), f"<{tag} {name}={value!r}> loads from outside"
        assert not (tag == "link" and attributes.get("rel") == "stylesheet")
        assert tag != "script"
    assert sum(tag == "svg" for tag, _ in page.tags) == 3, "residuals, absorbed share, class distribution"


def test_corpus_view(output):
    text = write_report(output, "--min-count", "3", "--top", "5")
    assert text.count("<details") == 3, "top tokens for each method"
    assert "by mean, count ≥ 3" in text
    assert re.search(r"<td>tokenize: text has no tokens</td><td class='num'>1</td>", text)
    assert re.search(r"<td>read: line is not valid JSON</td><td class='num'>1</td>", text)
    assert "Conservation residuals" in text and "Predicted classes" in text
    assert re.search(r"Absorbed share</figcaption>.*median [0-9.]+%, p95 [0-9.]+%, max [0-9.]+%", text, re.S)
    assert "Word deletion" not in text


def test_deletion_curves_when_present(output, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(output, copy)
    rows = [
        {"method": m, "k": k, "accuracy": a, "n_reviews": 20, "setting": "correct"}
        for m, slope in (("lrp", 0.08), ("random", 0.02))
        for k, a in enumerate(1 - slope * np.arange(11))
    ]
    pd.DataFrame(rows).to_parquet(copy / "deletion.parquet")
    page = parse(write_report(copy))
    assert sum(tag == "svg" for tag, _ in page.tags) == 4
    assert "Word deletion" in (copy.parent / "report.html").read_text(encoding="utf-8")


def test_user_errors_are_one_line(tmp_path, output, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert main(["report", str(output), "--html", str(tmp_path / "r.html"), "--class-names", "a,b,c"]) == 2
    assert "--class-names names 3 classes but the model has 2" in capsys.readouterr().err


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed")
def test_chromium_renders_the_page(output, tmp_path):
    from PIL import Image

    write_report(output)
    page, shot = output.parent / "report.html", tmp_path / "page.png"
    quiet = [
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
    ]
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", *quiet]
    command += [f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2000"]
    subprocess.run([*command, page.as_uri()], capture_output=True, timeout=90, check=False)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (2000, 1200)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200, "a blank or near-blank page"
    reddish = (pixels[..., 0] > 150) & (pixels[..., 1] < 120) & (pixels[..., 2] < 120)
    assert reddish.sum() > 500, "no strongly positive heatmap tokens visible"


def test_summary_settings_reach_the_header(output):
    settings = json.loads((output / "summary.json").read_text())["settings"]
    text = write_report(output)
    assert f"bias_factor {settings['bias_factor']}" in text and "methods LRP, Gradient × Input" in text
