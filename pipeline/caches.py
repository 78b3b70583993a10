"""Nothing written outside --output: Keras writes ~/.keras/keras.json when it is first imported and
matplotlib a font cache under ~/.cache/matplotlib, each when missing. Where the user has neither file nor
chosen a location (KERAS_HOME, MPLCONFIGDIR), both go to one temporary directory, removed at exit."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile


def redirect_caches() -> None:
    """Point KERAS_HOME and MPLCONFIGDIR at a temporary directory where they would write into the home
    directory; call before Keras or matplotlib is imported."""
    home = os.path.expanduser("~")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    missing = {
        "KERAS_HOME": not os.path.exists(os.path.join(home, ".keras", "keras.json")),
        "MPLCONFIGDIR": not os.path.isdir(os.path.join(cache, "matplotlib")),
    }
    names = [name for name, absent in missing.items() if absent and name not in os.environ]
    if not names:
        return
    directory = tempfile.mkdtemp(prefix="lstm-lrp-caches-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    for name in names:
        os.environ[name] = os.path.join(directory, name.lower())
