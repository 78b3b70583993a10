"""Progress of the stages running in this process, for whoever shows it (the CLI's progress line).

Stages call report(); a listener added with listen() hears every report made in this process, so only
in-process runs (the DirectRunner's default mode) are heard; workers elsewhere report to nobody.
Kinds: "bytes" (input bytes read), "tokens" (tokens of reviews tokenised, to be explained unless a
later stage drops them), "explained" (tokens explained).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

Listener = Callable[[str, int], None]
LISTENERS: list[Listener] = []
EVERY = 1024
"""Rows between two reports of the bytes read."""


def report(kind: str, amount: int) -> None:
    for listener in LISTENERS:
        listener(kind, amount)


@contextlib.contextmanager
def listen(listener: Listener) -> Iterator[None]:
    """While inside, listener(kind, amount) hears every report of this process."""
    LISTENERS.append(listener)
    try:
        yield
    finally:
        LISTENERS.remove(listener)


def reading(rows: Iterable[Any], raw) -> Iterator[Any]:
    """rows, reporting how far the raw file they come from (anything with tell()) has been read."""
    done = 0
    for n, row in enumerate(rows, start=1):
        yield row
        if LISTENERS and n % EVERY == 0:
            position = raw.tell()
            report("bytes", position - done)
            done = position
    if LISTENERS:
        report("bytes", raw.tell() - done)
