"""Explaining raw text from Python or a notebook, exactly as `lstm-lrp run` would: the same tokeniser,
vocabulary look-up and OOV rules (the pipeline's own stages, called without Beam), then LRP.

    explainer = TextExplainer.from_file(*demo_paths()[:2])   # model, vocab; or embeddings=PATH
    explainer.explain_text(["a gripping , beautifully acted film"])   # heatmaps in Jupyter

Results are TextExplanation objects (tokens, relevances, logits, class probabilities) whose `_repr_html_`
draws the heatmap of the report: red for the explained class, blue against it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.colours import token_colour
from transforms.embed import EmbedReview
from transforms.explain import padded_ids
from transforms.model import LoadedModel, ModelSpec, SharedModel
from transforms.tokenize import TokenizeReview, TokenizerSpec


@dataclass(frozen=True, repr=False)
class TextExplanation:
    """One explained text: its tokens as the model saw them (after the OOV rule), their relevances (n,)
    for the explained class `target`, the logits (C,) and class probabilities (softmax of the logits)."""

    text: str
    tokens: tuple[str, ...]
    relevance: np.ndarray
    logits: np.ndarray
    target: int
    class_names: tuple[str, ...]

    @property
    def probabilities(self) -> np.ndarray:
        shifted = np.exp(self.logits - self.logits.max())
        return shifted / shifted.sum()

    @property
    def predicted(self) -> int:
        return int(self.logits.argmax())

    def __repr__(self) -> str:
        ranked = sorted(zip(self.tokens, self.relevance), key=lambda tr: -abs(tr[1]))[:5]
        top = ", ".join(f"{t!r} {r:+.3f}" for t, r in ranked)
        name = self.class_names[self.target]
        return (
            f"TextExplanation({name!r}, p={self.probabilities[self.target]:.3f}, "
            f"{len(self.tokens)} tokens; most relevant: {top})"
        )

    def _repr_html_(self) -> str:
        """The heatmap: tokens coloured by relevance (scaled to the largest |relevance|), value on hover."""
        scale = float(np.abs(self.relevance).max(initial=0.0))
        spans = []
        for token, value in zip(self.tokens, self.relevance):
            background, colour = token_colour(float(value), scale)
            spans.append(
                f'<span style="background:{background};color:{colour};padding:1px 3px;border-radius:3px" '
                f'title="{value:+.6g}">{html.escape(token)}</span>'
            )
        name = html.escape(self.class_names[self.target])
        head = f"explaining <b>{name}</b> (p = {self.probabilities[self.target]:.3f})"
        return f'<div style="line-height:1.9">{head}: {" ".join(spans)}</div>'


class TextExplanations(list):
    """A list of TextExplanation that shows as heatmaps, one line per text, in a notebook."""

    def _repr_html_(self) -> str:
        return "\n".join(e._repr_html_() for e in self)


class TextExplainer:
    """A model loaded as `lstm-lrp run` loads it, to explain raw text as the CLI would."""

    def __init__(
        self,
        model: SharedModel,
        tokenizer: TokenizerSpec | None = None,
        oov: str = "zero",
        class_names: Sequence[str] = (),
    ) -> None:
        self.tokenizer, self.oov = tokenizer or TokenizerSpec(), oov
        self._tokenize, self._embed = TokenizeReview(self.tokenizer), EmbedReview(model, oov)
        for stage in (self._tokenize, self._embed):
            stage.setup()  # as a Beam worker would: the embed stage loads the model through the shared handle
        self.loaded: LoadedModel = model.get()  # the stage's model: one load per process
        classes = self.loaded.explainer.classes
        if class_names and len(class_names) != classes:
            raise ValueError(f"class_names names {len(class_names)} classes but the model has {classes}.")
        self.class_names = tuple(class_names) or tuple(f"class {c}" for c in range(classes))

    @classmethod
    def from_file(
        cls,
        model: str,
        vocab: str | None = None,
        embeddings: str | None = None,
        dtype: str = "float32",
        lowercase: bool = True,
        tokenizer: str = "whitespace",
        oov: str = "zero",
        class_names: Sequence[str] = (),
    ) -> TextExplainer:
        """Load as `lstm-lrp run --model --vocab --embeddings --dtype` does, tokenising and treating
        unknown tokens as `--lowercase --tokenizer --oov` do."""
        shared = SharedModel(ModelSpec(model, embeddings, vocab, dtype))
        return cls(shared, TokenizerSpec(tokenizer, lowercase), oov, class_names)

    def __repr__(self) -> str:
        return (
            f"TextExplainer({self.loaded.explainer!r}, tokenizer={self.tokenizer.tokenizer!r}, "
            f"lowercase={self.tokenizer.lowercase}, oov={self.oov!r})"
        )

    def explain_text(
        self,
        texts: str | Sequence[str],
        target: int | None = None,
        eps: float = 1e-3,
        bias_factor: float = 0.0,
    ) -> TextExplanations:
        """LRP relevances of each text's tokens for `target` (default: the predicted class). ValueError,
        naming the text, for one the pipeline would dead-letter (no tokens, no known token, or any unknown
        token with oov="dead-letter")."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        records = [self._embedded(n, text) for n, text in enumerate(texts)]
        if not records:
            return TextExplanations()
        ids, lengths = padded_ids(records, self.loaded.zero_id)
        explainer = self.loaded.explainer
        result = explainer.explain(self.loaded.table[ids], lengths, target, eps, bias_factor)
        return TextExplanations(
            TextExplanation(
                r["text"],
                tuple(r["tokens"]),
                result.token_relevance[n, : lengths[n]].astype(np.float64),
                result.logits[n].astype(np.float64),
                int(result.target[n]),
                self.class_names,
            )
            for n, r in enumerate(records)
        )

    def _embedded(self, n: int, text: str) -> dict:
        """The text through the pipeline's Tokenize and Embed stages; ValueError if either refuses it."""
        record = {"review_id": str(n), "source": f"text {n}", "text": text, "label": None}
        for stage in (self._tokenize, self._embed):
            (record,) = stage.process(record)
            if not isinstance(record, dict):  # a dead letter (TaggedOutput)
                raise ValueError(f"Text {n} ({text[:60]!r}) cannot be explained: {record.value['reason']}.")
        return record
