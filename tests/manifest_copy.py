"""A private, editable copy of the tiny dataset's manifest, for tests that break it on purpose."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd


def copy_tiny(tmp_path: Path, tiny_manifest: Path) -> Path:
    """Copy the tiny dataset (6 classes x 24 pins, images included) under ``tmp_path``; its manifest."""
    folder = tmp_path / "data"
    shutil.copytree(tiny_manifest.parent, folder)
    return folder / "manifest.csv"


def edit(manifest: Path, fn) -> Path:
    """Apply ``fn`` to the manifest read as strings and write it back."""
    df = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    fn(df)
    df.to_csv(manifest, index=False)
    return manifest
