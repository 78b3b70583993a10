"""The bundled demo: a small corpus of movie reviews and a bi-LSTM sentiment model trained on it and on SST.

`DEMO_CORPUS` is written by `scripts/write_demo_corpus.py`; `DEMO_MODEL` and `DEMO_VOCAB` by
`scripts/train_demo_model.py` (development tools, not installed with the package).
"""

import pathlib
from typing import NamedTuple

DEMO_DIR = pathlib.Path(__file__).parent
DEMO_CORPUS = DEMO_DIR / "reviews.jsonl"
DEMO_MODEL = DEMO_DIR / "model.keras"
DEMO_VOCAB = DEMO_DIR / "vocab.txt"


class DemoPaths(NamedTuple):
    """Absolute paths of the bundled demo's files."""

    model: str
    vocab: str
    corpus: str


def demo_paths() -> DemoPaths:
    """The bundled demo model, vocabulary and corpus (installed as package data), from any directory."""
    return DemoPaths(str(DEMO_MODEL), str(DEMO_VOCAB), str(DEMO_CORPUS))
