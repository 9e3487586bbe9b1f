"""Reading and validating a manifest: the one input format.

A manifest is a CSV or Parquet file with one row per (pin, user) save:

=========== ========= =====================================================================
column      required  meaning
=========== ========= =====================================================================
pin_id      yes       the pin's id (unique per pin)
image       yes       image path relative to the images root (the manifest's folder by
                      default); paths resolving outside the root are refused
description yes       the pin's text
category    yes       the pin's category (the label)
user_id     no        a user who saved the pin
board       no        the board it was saved to
=========== ========= =====================================================================

A pin saved by several users appears as repeated rows with the same ``pin_id``, ``image``,
``description`` and ``category`` and a different ``user_id``: the pin is imported once and
every (pin, user) save is kept for per-user interest analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

REQUIRED = ("pin_id", "image", "description", "category")
OPTIONAL = ("user_id", "board")
INVALID_UTF8 = "\ufffd"


class ManifestError(ValueError):
    """The manifest cannot be imported; the message says why and how to fix it."""


@dataclass
class Manifest:
    """A validated manifest.

    Attributes:
        saves: Every row (pin_id, user_id, board), duplicates of a (pin, user) removed.
        pins: One row per pin: pin_id, image (as written), path (resolved absolute),
            description, category, board (first seen), utf8_ok.
        images_root: The resolved images root.
        n_rows: Rows read from the file.
    """

    saves: pd.DataFrame
    pins: pd.DataFrame
    images_root: Path
    n_rows: int


def _read_table(path: Path) -> tuple[pd.DataFrame, bool]:
    """Read a CSV or Parquet file as strings; return (frame, all text was valid UTF-8)."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
            df = df.astype(object).where(df.notna(), "").astype(str)
            return df, True
        if suffix not in (".csv", ".tsv", ".txt"):
            raise ManifestError(
                f"{path.name}: unknown manifest format {suffix!r}; use a .csv or .parquet file."
            )
        sep = "\t" if suffix == ".tsv" else ","
        kwargs = dict(sep=sep, dtype=str, keep_default_na=False, na_filter=False)
        try:
            return pd.read_csv(path, encoding="utf-8-sig", **kwargs), True
        except UnicodeDecodeError:
            return pd.read_csv(path, encoding="utf-8", encoding_errors="replace", **kwargs), False
    except ManifestError:
        raise
    except FileNotFoundError:
        raise ManifestError(f"Manifest {path} does not exist.") from None
    except Exception as exc:  # pandas/pyarrow raise many types for malformed files
        raise ManifestError(
            f"{path.name} could not be read as a {suffix.lstrip('.')} table "
            f"({exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}). Check that it is a "
            "well-formed CSV (comma-separated, quoted fields) or Parquet file."
        ) from None


def resolve_image(root: Path, image: str) -> Path | None:
    """Resolve an image path under ``root``; None if it escapes ``root`` (``..``, symlinks)."""
    if not image:
        return None
    candidate = Path(image)
    full = candidate if candidate.is_absolute() else root / candidate
    try:
        resolved = full.resolve()
    except (OSError, RuntimeError):
        return None
    return resolved if resolved.is_relative_to(root) else None


def read_manifest(path: Path | str, images_root: Path | str | None = None) -> Manifest:
    """Read and validate a manifest.

    Args:
        path: The CSV or Parquet file.
        images_root: Folder image paths are relative to; default the manifest's folder.

    Returns:
        The validated :class:`Manifest`.

    Raises:
        ManifestError: Missing columns, an empty file, a pin id with conflicting content,
            or image paths outside the images root.
    """
    path = Path(path)
    df, utf8_ok = _read_table(path)
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ManifestError(
            f"{path.name} lacks the required column(s) {', '.join(missing)}. A manifest needs "
            f"{', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)}); found: "
            f"{', '.join(map(str, df.columns)) or 'no columns'}."
        )
    if df.empty:
        raise ManifestError(f"{path.name} has no rows.")
    for col in OPTIONAL:
        if col not in df.columns:
            df[col] = ""
    df = df[list(REQUIRED + OPTIONAL)].copy()
    for col in df.columns:
        df[col] = df[col].astype(str).str.strip()
    if (df["pin_id"] == "").any():
        rows = (df.index[df["pin_id"] == ""] + 2).tolist()[:5]
        raise ManifestError(f"{path.name}: empty pin_id on line(s) {rows}.")

    content = ["image", "description", "category"]
    conflicts = df.groupby("pin_id")[content].nunique(dropna=False).max(axis=1)
    bad = conflicts[conflicts > 1].index.tolist()
    if bad:
        raise ManifestError(
            f"{path.name}: {len(bad)} pin id(s) appear with different image, description or "
            f"category, e.g. {', '.join(map(repr, bad[:5]))}. Repeated rows of a pin are its "
            "saves by several users and must agree on everything but user_id/board; give "
            "distinct pins distinct ids."
        )

    root = Path(images_root) if images_root is not None else path.parent
    if not root.is_dir():
        raise ManifestError(f"Images root {root} is not a folder (see --images-root).")
    root = root.resolve()

    n_rows = len(df)
    saves = df[["pin_id", "user_id", "board"]].drop_duplicates(["pin_id", "user_id"])
    pins = df.drop_duplicates("pin_id")[["pin_id", "image", "description", "category", "board"]]
    pins = pins.reset_index(drop=True)
    resolved = [resolve_image(root, img) for img in pins["image"]]
    escaping = [img for img, res in zip(pins["image"], resolved) if res is None and img]
    if escaping:
        raise ManifestError(
            f"{path.name}: {len(escaping)} image path(s) resolve outside the images root {root} "
            f"(e.g. {', '.join(map(repr, escaping[:3]))}); they were refused. Paths must be "
            "relative to the images root and stay inside it (no '..', no links out)."
        )
    pins["path"] = [str(r) if r is not None else "" for r in resolved]
    pins["utf8_ok"] = True
    if not utf8_ok:
        pins["utf8_ok"] = ~(
            pins["description"].str.contains(INVALID_UTF8, regex=False)
            | pins["category"].str.contains(INVALID_UTF8, regex=False)
        )
    return Manifest(
        saves=saves.reset_index(drop=True),
        pins=pins,
        images_root=root,
        n_rows=n_rows,
    )
