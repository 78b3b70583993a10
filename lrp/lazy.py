"""Package attributes imported on first use (PEP 562), so that light modules of a package can be imported
without what its heavy ones start (TensorFlow)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(package: str, homes: Mapping[str, str]) -> tuple[Callable, Callable[[], list[str]]]:
    """(__getattr__, __dir__) for `package`, whose public names live in the modules `homes` gives."""

    def __getattr__(name: str):
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(homes[name]), name)

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *homes})

    return __getattr__, __dir__
