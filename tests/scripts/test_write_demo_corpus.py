"""The demo corpus script reproduces the bundled corpus byte for byte (it is deterministic for a seed)."""

import subprocess
import sys

from pipeline.demo import DEMO_CORPUS
from tests.conftest import REPO_ROOT


def test_script_rewrites_the_bundled_corpus(tmp_path):
    out = tmp_path / "reviews.jsonl"
    script = REPO_ROOT / "scripts" / "write_demo_corpus.py"
    done = subprocess.run([sys.executable, str(script), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "wrote 300 reviews" in done.stdout
    assert out.read_bytes() == DEMO_CORPUS.read_bytes()
