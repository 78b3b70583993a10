"""Trains the bundled demo model: a small bidirectional-LSTM binary sentiment classifier.

Usage (from the repository root):

    python scripts/train_demo_model.py [--sst PATH] [--corpus PATH] [--out-dir DIR] [--seed N]

Data: the Stanford Sentiment Treebank test sentences (default `../shared/data/sst_test.jsonl`, relative to the
repository root; fine-grained labels 0, 1 -> negative, 3, 4 -> positive, 2 dropped) plus the demo corpus
`pipeline/demo/reviews.jsonl`. Each source is shuffled with a fixed seed and 15% of it is held out for the
reported accuracies; the rest is the training split. 10% of each source's training split decides early
stopping (on validation accuracy); the model is fitted on the remainder, with the small demo corpus repeated
5 times, using Adam, dropout on the LSTM inputs and word dropout (tokens randomly replaced by `<unk>`). All
seeds are fixed: a rerun gives the same weights.

Output, in `--out-dir` (default `pipeline/demo/`):

- `model.keras`: Embedding(V, 32, mask_zero) -> Bidirectional(LSTM(32)) -> Dense(2) logits (no activation),
  saved without optimizer state; loads with `keras.models.load_model(path, safe_mode=True)`.
- `vocab.txt`: one token a line, line number = id; 0 is `<pad>`, 1 is `<unk>`, then the training tokens by
  descending count, ties alphabetical.

Tokens are `text.lower().split()`, as in the pipeline's default tokenizer; batches are right-padded with 0.
The script prints the training accuracy, the held-out accuracy for each source, the model size and the time.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from pipeline.demo import DEMO_CORPUS, DEMO_DIR

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_SST = REPO_ROOT.parent / "shared" / "data" / "sst_test.jsonl"
PAD, UNK = "<pad>", "<unk>"
MAX_VOCAB = 20_000
HOLD_OUT = 0.15
VALIDATION = 0.1
EMBEDDING_DIM, UNITS, CLASSES = 32, 32, 2
LSTM_DROPOUT = 0.5
WORD_DROPOUT = 0.1
BATCH_SIZE = 32
DEMO_REPEAT = 5
"""The demo corpus is small: its fitting examples are repeated this often to weigh it against SST."""
MAX_EPOCHS = 20
PATIENCE = 3
MONITOR = "val_accuracy"
LEARNING_RATE = 3e-3


@dataclass(frozen=True)
class Example:
    """One labelled sentence: label 0 = negative, 1 = positive."""

    text: str
    label: int


@dataclass(frozen=True)
class Split:
    """A source's examples divided into a training part and a held-out part."""

    train: list[Example]
    held_out: list[Example]


def tokenize(text: str) -> list[str]:
    """The pipeline's default tokenizer: lowercase, split on whitespace."""
    return text.lower().split()


def read_jsonl(path: pathlib.Path) -> list[dict]:
    """The JSON objects of a JSON-lines file."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_sst(path: pathlib.Path) -> list[Example]:
    """SST sentences as binary examples: fine labels 0, 1 -> 0; 3, 4 -> 1; neutral (2) dropped."""
    binary = {0: 0, 1: 0, 3: 1, 4: 1}
    return [Example(r["text"], binary[r["label"]]) for r in read_jsonl(path) if r["label"] in binary]


def load_demo(path: pathlib.Path) -> list[Example]:
    """The demo corpus, whose labels are already binary."""
    return [Example(r["text"], int(r["label"])) for r in read_jsonl(path)]


def hold_out(examples: Sequence[Example], fraction: float, seed: int) -> Split:
    """Shuffle with `seed` and set the last `fraction` aside."""
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    cut = len(shuffled) - round(fraction * len(shuffled))
    return Split(train=shuffled[:cut], held_out=shuffled[cut:])


def build_vocab(texts: Iterable[str], max_size: int = MAX_VOCAB) -> list[str]:
    """`<pad>`, `<unk>`, then the tokens in `texts`, most frequent first, ties alphabetical.

    The list is cut to `max_size` entries in all.
    """
    counts = Counter(token for text in texts for token in tokenize(text))
    ranked = sorted(counts, key=lambda token: (-counts[token], token))
    return [PAD, UNK, *ranked[: max_size - 2]]


def encode(examples: Sequence[Example], tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids right-padded with 0 to the longest example, shape (N, T), and labels, shape (N,)."""
    index = {token: i for i, token in enumerate(tokens)}
    unk = index[UNK]
    ids = [[index.get(token, unk) for token in tokenize(e.text)] for e in examples]
    x = keras.utils.pad_sequences(ids, padding="post", value=0, dtype="int32")
    y = np.array([e.label for e in examples], dtype="int32")
    return x, y


class WordDropout(keras.utils.PyDataset):
    """Shuffled training batches in which each real token is replaced by `<unk>` with probability `rate`, so
    that the model learns to use the context of words it has not seen.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, rate: float, seed: int) -> None:
        super().__init__()
        self.x, self.y, self.batch_size, self.rate = x, y, batch_size, rate
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(x))
        self.on_epoch_end()

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[batch * self.batch_size : (batch + 1) * self.batch_size]
        x = self.x[rows]
        drop = (self.rng.random(x.shape) < self.rate) & (x > 0)
        return np.where(drop, 1, x).astype("int32"), self.y[rows]

    def on_epoch_end(self) -> None:
        self.rng.shuffle(self.order)


def build_model(vocab_size: int) -> keras.Sequential:
    """Embedding -> Bidirectional(LSTM) -> Dense logits; dropout only on LSTM inputs (none at inference)."""
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(vocab_size, EMBEDDING_DIM, mask_zero=True),
            keras.layers.Bidirectional(keras.layers.LSTM(UNITS, dropout=LSTM_DROPOUT)),
            keras.layers.Dense(CLASSES),
        ]
    )


def fit_and_validation(
    sources: Sequence[tuple[Split, int]], seed: int
) -> tuple[list[Example], list[Example]]:
    """Split each (source, repeat) pair's training part into fitting and validation examples (VALIDATION of
    each); repeat the fitting examples `repeat` times, then shuffle.

    Validation examples are not repeated, and no copy of one is fitted.
    """
    fit: list[Example] = []
    validation: list[Example] = []
    for split, repeat in sources:
        part = hold_out(split.train, VALIDATION, seed)
        fit += part.train * repeat
        validation += part.held_out
    random.Random(seed).shuffle(fit)
    return fit, validation


def train(
    model: keras.Sequential,
    fit: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    seed: int,
) -> int:
    """Fit with Adam on the logits and word dropout, early-stopping on `validation`; return the epochs run."""
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    stop = keras.callbacks.EarlyStopping(monitor=MONITOR, patience=PATIENCE, restore_best_weights=True)
    history = model.fit(
        WordDropout(*fit, BATCH_SIZE, WORD_DROPOUT, seed),
        validation_data=validation,
        epochs=MAX_EPOCHS,
        callbacks=[stop],
        verbose=2,
    )
    return len(history.history["loss"])


def accuracy(model: keras.Sequential, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of examples whose largest logit is the label."""
    logits = model.predict(x, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def save(model: keras.Sequential, tokens: Sequence[str], out_dir: pathlib.Path) -> pathlib.Path:
    """Write vocab.txt and model.keras (an uncompiled copy: no optimizer state); return the model path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.txt").write_text("".join(f"{token}\n" for token in tokens), encoding="utf-8")
    inference = build_model(len(tokens))
    inference.set_weights(model.get_weights())
    path = out_dir / "model.keras"
    inference.save(path)
    return path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sst", type=pathlib.Path, default=DEFAULT_SST, help="SST test sentences (jsonl)")
    parser.add_argument("--corpus", type=pathlib.Path, default=DEMO_CORPUS, help="the demo corpus (jsonl)")
    parser.add_argument("--out-dir", type=pathlib.Path, default=DEMO_DIR, help="where to write the outputs")
    parser.add_argument("--seed", type=int, default=0, help="seed for the split, initialisation and batches")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Load, split, train, evaluate and save; print the accuracies, the model size and the time taken."""
    args = parse_args(argv)
    if not args.sst.is_file():
        raise SystemExit(f"SST data not found at {args.sst}; pass its path with --sst.")
    start = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    sst = hold_out(load_sst(args.sst), HOLD_OUT, args.seed)
    demo = hold_out(load_demo(args.corpus), HOLD_OUT, args.seed)
    train_examples = sst.train + demo.train
    tokens = build_vocab(e.text for e in train_examples)
    fit, validation = fit_and_validation([(sst, 1), (demo, DEMO_REPEAT)], args.seed)
    print(
        f"training split: {len(sst.train)} SST + {len(demo.train)} demo examples "
        f"(demo fitted {DEMO_REPEAT}x, {len(validation)} kept for early stopping); vocabulary {len(tokens)}"
    )

    model = build_model(len(tokens))
    epochs = train(model, encode(fit, tokens), encode(validation, tokens), args.seed)
    path = save(model, tokens, args.out_dir)

    print(f"epochs run: {epochs}")
    x, y = encode(train_examples, tokens)
    print(f"{'training accuracy:':24s}{accuracy(model, x, y):.3f} ({len(y)} examples)")
    for name, split in (("SST", sst), ("demo", demo)):
        held_x, held_y = encode(split.held_out, tokens)
        label = f"held-out {name} accuracy:"
        print(f"{label:24s}{accuracy(model, held_x, held_y):.3f} ({len(held_y)} examples)")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) and {args.out_dir / 'vocab.txt'}")
    print(f"time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
