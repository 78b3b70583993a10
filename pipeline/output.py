"""The output directory: refuse to clobber, stage while running, publish atomically when done.

Results are written under OUTPUT/_incomplete-<run id>/ and moved into OUTPUT/ only when the run has
succeeded; summary.json is written last, so a directory without it is never a complete result.
"""

from __future__ import annotations

import json
import uuid

import fsspec

RESULT_DIRS = ("tokens", "reviews", "dead_letter")
STAGING_PREFIX = "_incomplete-"
SUMMARY = "summary.json"


class OutputError(ValueError):
    """The output directory cannot be used as it is; the message says why and what to do."""


def filesystem(output: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, _, (path,) = fsspec.core.get_fs_token_paths(output)
    return fs, path.rstrip("/")


def prepare(output: str, overwrite: bool) -> str:
    """Check OUTPUT and return a fresh staging directory URL inside it.

    Leftovers of killed runs (staging directories) are removed; anything else makes a non-empty directory
    that is refused unless overwrite.
    """
    fs, root = filesystem(output)
    if fs.exists(root) and not fs.isdir(root):
        raise OutputError(f"Output {output!r} is a file; give a directory.")
    entries = fs.ls(root, detail=False) if fs.exists(root) else []
    foreign = [e for e in entries if not e.rstrip("/").split("/")[-1].startswith(STAGING_PREFIX)]
    if foreign and not overwrite:
        raise OutputError(
            f"Output directory {output!r} is not empty; pass --overwrite to replace its results."
        )
    for entry in entries:
        fs.rm(entry, recursive=True)
    staging = f"{root}/{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
    fs.makedirs(staging, exist_ok=True)
    return output.rstrip("/") + staging[len(root) :]


def publish(output: str, staging: str, summary: dict) -> None:
    """Move the staged results into OUTPUT and write summary.json last."""
    fs, root = filesystem(output)
    _, stage = filesystem(staging)
    for name in RESULT_DIRS:
        if fs.exists(f"{stage}/{name}"):
            fs.mv(f"{stage}/{name}", f"{root}/{name}", recursive=True)
    fs.rm(stage, recursive=True)
    with fs.open(f"{root}/{SUMMARY}", "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")
