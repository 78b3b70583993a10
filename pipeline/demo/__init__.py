"""The bundled demo: a small corpus of movie reviews and a bi-LSTM sentiment model trained on it and on SST.

`DEMO_CORPUS` is written by `scripts/write_demo_corpus.py`; `DEMO_MODEL` and `DEMO_VOCAB` by
`scripts/train_demo_model.py` (development tools, not installed with the package).
"""

import pathlib

DEMO_DIR = pathlib.Path(__file__).parent
DEMO_CORPUS = DEMO_DIR / "reviews.jsonl"
DEMO_MODEL = DEMO_DIR / "model.keras"
DEMO_VOCAB = DEMO_DIR / "vocab.txt"
