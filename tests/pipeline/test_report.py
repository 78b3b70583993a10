"""`lstm-lrp report`: the HTML page of a run's output — heatmaps for chosen reviews, self-contained, the
corpus view, the deletion curves when present — and, where Chromium is installed, a rendered screenshot."""

from __future__ import annotations

import contextlib
import glob
import io
import itertools
import json
import pathlib
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.colours import contrast, text_rgb, token_rgb
from pipeline.demo import DEMO_CORPUS, DEMO_MODEL, DEMO_VOCAB
from pipeline.provenance import parquet_metadata
from pipeline.run import run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
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
    assert "most for, by mean, count ≥ 3" in text and "most against, by mean, count ≥ 3" in text
    assert re.search(r'<td>tokenize: text has no tokens</td><td class="num">1</td>', text)
    assert re.search(r'<td>read: line is not valid JSON</td><td class="num">1</td>', text)
    assert "Conservation residuals" in text and "Predicted classes" in text
    assert re.search(r"Absorbed share</figcaption>.*median [0-9.]+%, p95 [0-9.]+%, max [0-9.]+%", text, re.S)
    assert "Word deletion" not in text


def deletion_rows() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"method": m, "k": k, "accuracy": a, "n_reviews": 20, "setting": "correct"}
            for m, slope in (("lrp", 0.08), ("random", 0.02))
            for k, a in enumerate(1 - slope * np.arange(11))
        ]
    )


def write_deletion(directory: pathlib.Path, run_id: str | None) -> None:
    """deletion.parquet with the provenance of run_id (none for None)."""
    table = pa.Table.from_pandas(deletion_rows(), preserve_index=False)
    provenance = {"run_id": run_id} if run_id else None
    pq.write_table(
        table.replace_schema_metadata(parquet_metadata(provenance) if provenance else None),
        directory / "deletion.parquet",
    )


def test_deletion_curves_only_of_the_same_run(output, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(output, copy)
    run_id = json.loads((copy / "summary.json").read_text())["run_id"]
    write_deletion(copy, run_id)
    text = write_report(copy)
    assert sum(tag == "svg" for tag, _ in parse(text).tags) == 4
    assert 'href="#deletion"' in text and "left out" not in text
    for evaluated, why in (("0123456789ab", "is from run 0123456789ab"), (None, "does not say which run")):
        write_deletion(copy, evaluated)
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            text = write_report(copy)
        assert why in printed.getvalue() and "Word deletion: " in printed.getvalue()
        assert sum(tag == "svg" for tag, _ in parse(text).tags) == 3, "curves of another run are left out"
        assert why in text and "its curves are left out" in text


def test_user_errors_are_one_line(tmp_path, output, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert main(["report", str(output), "--html", str(tmp_path / "r.html"), "--class-names", "a,b,c"]) == 2
    assert "--class-names names 3 classes but the model has 2" in capsys.readouterr().err
    for argv, message in (
        (["nosuch://run"], "Output 'nosuch://run' cannot be opened (Protocol not known: nosuch)"),
        ([str(output), "--html", "nosuch://r.html"], "Page 'nosuch://r.html' cannot be opened"),
    ):
        assert main(["report", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.strip().count("\n") == 0, err


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
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


def test_every_heatmap_colour_has_contrast_of_at_least_4_5():
    for value in np.linspace(-1, 1, 401):
        background = token_rgb(value, 1.0)
        assert contrast(text_rgb(background), background) >= 4.5, value
    assert contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(21)
    assert contrast((118, 118, 118), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)  # WCAG's grey


def test_cells_use_the_chosen_text_colour(output):
    text = write_report(output)
    styles = re.findall(r'<span style="background:#([0-9a-f]{6});color:#([0-9a-f]{6})"', text)
    assert styles
    for background, ink in styles:
        rgb = [tuple(int(c[i : i + 2], 16) for i in (0, 2, 4)) for c in (background, ink)]
        assert contrast(*rgb) >= 4.5


def test_probability_beside_logits_and_tokens_against_each_class(output):
    text = write_report(output, "--class-names", "negative,positive")
    reviews = read(output, "reviews").drop_duplicates("review_id").set_index("review_id")
    card = text.split('data-review-id="demo-0001"')[1].split("</article>")[0]
    logits = np.asarray(reviews.loc["demo-0001", "logits"], np.float64)
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert f"p = {p.max():.3f} · logits [{logits[0]:+.3f}, {logits[1]:+.3f}]" in card
    assert text.count("most against, by total") == text.count("most for, by total") == 3 * 2


def test_repeated_texts_are_shown_once_with_their_count(tmp_path):
    lines = [
        json.dumps({"id": f"r{n}", "text": "a gripping , beautifully acted film", "label": 1})
        for n in range(5)
    ]
    lines += [json.dumps({"id": "other", "text": "a dull and lifeless film", "label": 0})]
    corpus = tmp_path / "reviews.jsonl"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    run(
        ["--input", str(corpus), "--model", str(DEMO_MODEL), "--vocab", str(DEMO_VOCAB), "--output", str(out)]
    )
    text = write_report(out)
    positive = text.split('<h3 id="positive">')[1].split("<h3")[0]
    assert positive.count("<article") == 2, "five copies of one text and another text"
    assert "5 copies in the corpus" in positive and 'data-review-id="r0"' in positive


def test_user_text_is_escaped(output, tmp_path):
    copy = tmp_path / "<b>out"
    shutil.copytree(output, copy)
    page = tmp_path / "r.html"
    assert main(["report", str(copy), "--html", str(page), "--class-names", "<i>neg</i>,pos"]) == 0
    text = page.read_text(encoding="utf-8")
    assert "<b>out" not in text and "&lt;b&gt;out" in text
    assert "<i>neg</i>" not in text and "&lt;i&gt;neg&lt;/i&gt;" in text


def test_class_names_given_to_run_name_the_classes(tmp_path):
    out = tmp_path / "out"
    model = ["--model", str(DEMO_MODEL), "--vocab", str(DEMO_VOCAB)]
    summary = run(["--input", str(DEMO_CORPUS), *model, "--output", str(out), "--class-names", "neg,pos"])
    assert summary["class_names"] == ["neg", "pos"]
    text = write_report(out, "--examples", "2")
    assert "predicted pos" in text or "predicted neg" in text
    assert "class 0" not in text


def test_sections_are_linked(output):
    text = write_report(output)
    anchors = set(re.findall(r' id="([^"]+)"', text))
    links = set(re.findall(r'<a href="#([^"]+)"', text))
    assert {
        "reviews",
        "positive",
        "negative",
        "uncertain",
        "sample",
        "tokens",
        "corpus",
        "dead-letters",
    } <= links
    assert links <= anchors


def test_legends_do_not_cover_the_plots():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from pipeline.plots import class_figure, deletion_figure, histogram_figure

    curves = deletion_rows()
    figures = [
        class_figure(["a", "b"], [3, 9], [4, 8]),
        histogram_figure(np.arange(50.0), "x"),
        deletion_figure(curves),
    ]
    for figure in figures:
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        renderer = canvas.get_renderer()
        (legend,) = figure.legends
        box = legend.get_window_extent(renderer)
        for ax in figure.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), figure


def test_report_imports_no_tensorflow(output, tmp_path):
    code = (
        "import sys; from pipeline.cli import main; "
        f"assert main(['report', {str(output)!r}, '--html', {str(tmp_path / 'r.html')!r}]) == 0; "
        "assert 'tensorflow' not in sys.modules and 'apache_beam' not in sys.modules, 'heavy imports'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_run_output_at_an_fsspec_url(output, tmp_path):
    import fsspec

    memory = fsspec.filesystem("memory")
    root = f"/report-tests/{tmp_path.name}"
    for path in output.rglob("*"):
        if path.is_file():
            memory.pipe(f"{root}/{path.relative_to(output)}", path.read_bytes())
    page = tmp_path / "r.html"
    assert main(["report", f"memory://{root}", "--html", str(page)]) == 0
    assert parse(page.read_text(encoding="utf-8")).heatmaps


def test_a_failed_write_keeps_the_earlier_page(output, tmp_path, monkeypatch):
    """The page is written beside its place and renamed there: a write that fails midway leaves the
    earlier page whole and nothing else."""
    from fsspec.implementations.local import LocalFileSystem

    page = tmp_path / "report.html"
    page.write_text("the earlier report", encoding="utf-8")

    def fail(*_):
        raise OSError("No space left on device")

    monkeypatch.setattr(LocalFileSystem, "mv", fail)
    with pytest.raises(OSError, match="No space"):
        main(["report", str(output), "--html", str(page), "--debug"])
    assert page.read_text(encoding="utf-8") == "the earlier report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    monkeypatch.undo()
    assert main(["report", str(output), "--html", str(page)]) == 0
    assert "<html" in page.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
