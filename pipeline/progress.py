"""The progress line of a local run: tokens explained of the expected total, the share of the input's
bytes read, tokens/s and the time left, on stderr (tqdm), only when stderr is a terminal. The expected
total is the tokens tokenised so far divided by the share of bytes read (once reading is done, exact up to
the unknown tokens that --oov skip drops)."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator, Sequence

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from lrp.files import size
from transforms import progress

LOGGERS = ("lstm_lrp", "transforms", "pipeline")


class ProgressLine:
    """Listens to the stages' reports (transforms.progress) and draws them."""

    def __init__(self, total_bytes: int) -> None:
        self.total_bytes, self.read, self.tokens = total_bytes, 0, 0
        self.lock = threading.Lock()
        self.bar = tqdm(
            total=None, unit=" tokens", unit_scale=True, file=sys.stderr, dynamic_ncols=True, desc="explained"
        )

    def __call__(self, kind: str, amount: int) -> None:
        with self.lock:
            if kind == "explained":
                self.bar.update(amount)
                return
            if kind == "bytes":
                self.read += amount
            else:
                self.tokens += amount
            share = min(self.read / self.total_bytes, 1.0) if self.total_bytes else 1.0
            if share > 0:
                self.bar.total = max(round(self.tokens / share), self.bar.n)
            self.bar.set_postfix_str(f"input read {share:.0%}", refresh=False)

    def close(self, finished: bool) -> None:
        """Leave the line as it stands; when the run finished, at 100% (what later stages dropped, skipped
        unknown tokens and dead letters, is done too)."""
        if finished and self.bar.total is not None:
            self.bar.total = self.bar.n
        self.bar.close()


def input_bytes(files: Sequence[str]) -> int:
    """Total size of the input files (0 when a size is unknown)."""
    return sum(size(path) or 0 for path in files)


@contextlib.contextmanager
def progress_line(files: Sequence[str], shown: bool) -> Iterator[None]:
    """While inside, a progress line on stderr if shown and stderr is a terminal; log lines print above
    it."""
    if not (shown and sys.stderr.isatty()):
        yield
        return
    line = ProgressLine(input_bytes(files))
    finished = False
    try:
        with logging_redirect_tqdm([logging.getLogger(n) for n in LOGGERS]), progress.listen(line):
            yield
        finished = True
    finally:
        line.close(finished)
