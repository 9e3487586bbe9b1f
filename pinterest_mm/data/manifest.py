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

Text is read as UTF-8; a CSV or Parquet value that is not valid UTF-8 costs only its pin
(dropped as invalid text), never the whole file. Categories, descriptions and boards are
normalized to Unicode NFC ("Café" typed with a combining accent is the same class as
"Café"); category names that differ only in case are reported and merged on request.
Values quoted in error messages are escaped and cut (:func:`~.printable.printable`).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from .printable import printable, quoted

REQUIRED = ("pin_id", "image", "description", "category")
OPTIONAL = ("user_id", "board")
INVALID_UTF8 = "\ufffd"
NFC_COLUMNS = ("description", "category", "board")  # human text; ids and paths stay as written

# First bytes of files that are no CSV text -> what they likely are and what to do.
_NOT_CSV = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one)", "export it as 'CSV UTF-8'"),
    (b"PK\x05\x06", "an empty ZIP archive", "export the table as 'CSV UTF-8'"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook", "export it as 'CSV UTF-8'"),
    (b"\x1f\x8b", "gzip-compressed", "decompress it first (gunzip)"),
    (b"BZh", "bzip2-compressed", "decompress it first (bunzip2)"),
    (b"\xfd7zXZ", "xz-compressed", "decompress it first (unxz)"),
    (b"PAR1", "a Parquet file", "name it .parquet"),
    (b"%PDF", "a PDF document", "export the table as 'CSV UTF-8'"),
    (b"\xff\xfe", "UTF-16 text", "re-save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text", "re-save it as UTF-8"),
)


class ManifestError(ValueError):
    """The manifest cannot be imported; the message says why and how to fix it."""


@dataclass
class Manifest:
    """A validated manifest.

    Attributes:
        saves: Every row (pin_id, user_id, board, pin_row), duplicates of a (pin, user)
            removed; ``pin_row`` (int32) is the pin's row in ``pins``.
        pins: One row per pin: pin_id, image (as written), path (resolved absolute),
            description, category, board (first seen), utf8_ok.
        images_root: The resolved images root.
        n_rows: Rows read from the file.
        case_variants: Groups of category names equal but for case, the name with the
            most pins first (after merging: the names that were merged into the first).
        merged_case_variants: Whether those groups were merged into their first name.
        n_nfc_categories: Category names that were not in NFC (now normalized).
    """

    saves: pd.DataFrame
    pins: pd.DataFrame
    images_root: Path
    n_rows: int
    case_variants: list[tuple[str, ...]] = field(default_factory=list)
    merged_case_variants: bool = False
    n_nfc_categories: int = 0


def _not_csv(path: Path) -> str | None:
    """Why a file named .csv is no CSV text (from its first bytes), or None if it may be."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None  # the reader names the problem
    name = printable(path.name)
    for magic, what, fix in _NOT_CSV:
        if head.startswith(magic):
            return f"{name} is not a CSV text file: it looks like {what}. {fix[0].upper()}{fix[1:]}."
    if len(head) >= 4 and head.count(b"\x00") > len(head) // 4:
        return (f"{name} is not a UTF-8 CSV file: it holds many zero bytes, as UTF-16 text "
                "does. Re-save it as 'CSV UTF-8'.")
    if b"\x00" in head:
        return (f"{name} is not a CSV text file: it holds binary data (zero bytes). "
                "Export the table as 'CSV UTF-8'.")
    return None


def _parquet_text(column) -> tuple[pd.Series, bool]:
    """One Parquet column as text: (values, all valid UTF-8). Invalid bytes become U+FFFD."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    textual = (pa.types.is_string(kind) or pa.types.is_large_string(kind)
               or pa.types.is_binary(kind) or pa.types.is_large_binary(kind))
    if not textual:
        values = column.to_pandas()
        return values.astype(object).where(values.notna(), "").astype(str), True
    raw = column.cast(pa.large_binary())  # strings as bytes: no UTF-8 check yet
    try:
        values = raw.cast(pa.large_string()).to_pandas()  # the check; fast when all is valid
        return values.astype(object).where(values.notna(), "").astype(str), True
    except (pa.ArrowInvalid, UnicodeDecodeError):
        decoded = [b.decode("utf-8", "replace") if b is not None else "" for b in raw.to_pylist()]
        return pd.Series(decoded, dtype=str), False


CHUNK_ROWS = 50_000  # rows read and tidied at a time (strip, NFC); the rest of a chunk is dropped


def _utf8_valid(path: Path) -> bool:
    """Whether the whole file decodes as UTF-8 (read in 16 MB blocks, nothing kept)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as f:
            while block := f.read(16 * 2**20):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _parquet_chunks(path: Path, rows: int, keep: tuple[str, ...] | None) -> Iterator[tuple[pd.DataFrame, bool]]:
    """A Parquet file's rows as text frames of ``rows`` rows; a non-UTF-8 value costs only its row."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    if keep is not None:
        yield pd.DataFrame({name: pd.Series([], dtype=str) for name in names}), True
        names = [n for n in names if str(n).strip() in keep]
    seen = False
    for batch in pf.iter_batches(batch_size=rows, columns=names):
        columns, utf8_ok = {}, True
        for name, column in zip(batch.schema.names, batch.columns):
            columns[name], ok = _parquet_text(column)
            utf8_ok &= ok
        seen = True
        yield pd.DataFrame(columns), utf8_ok
    if not seen:
        yield pd.DataFrame({name: pd.Series([], dtype=str) for name in names}), True


def _csv_chunks(path: Path, rows: int, keep: tuple[str, ...] | None) -> Iterator[tuple[pd.DataFrame, bool]]:
    """A CSV/TSV file's rows as string frames of ``rows`` rows; invalid UTF-8 becomes U+FFFD."""
    utf8_ok = _utf8_valid(path)
    kwargs = dict(sep="\t" if path.suffix.lower() == ".tsv" else ",", dtype=str, keep_default_na=False,
                  na_filter=False, encoding="utf-8-sig" if utf8_ok else "utf-8")
    if not utf8_ok:
        kwargs["encoding_errors"] = "replace"
    if keep is not None:
        yield pd.read_csv(path, nrows=0, **kwargs), utf8_ok
        kwargs["usecols"] = lambda name: str(name).strip() in keep
    seen = False
    with pd.read_csv(path, chunksize=rows, **kwargs) as reader:
        for chunk in reader:
            seen = True
            yield chunk, utf8_ok
    if not seen:
        yield pd.read_csv(path, nrows=0, **kwargs), utf8_ok


def _read_chunks(path: Path, rows: int = CHUNK_ROWS,
                 keep: tuple[str, ...] | None = None) -> Iterator[tuple[pd.DataFrame, bool]]:
    """Yield a CSV or Parquet file's rows as string frames of at most ``rows`` rows, each with
    whether its text was valid UTF-8 (at least one frame, empty for a file of no rows).

    With ``keep``, the first frame is the header alone (every column, no rows) and the
    frames after it hold only the columns named in ``keep`` (names stripped): the others are
    never parsed.

    Raises:
        ManifestError: Not a regular file, an unknown format, no CSV text, or malformed.
    """
    suffix = path.suffix.lower()
    if path.exists() and not path.is_file():  # a folder, or a FIFO that would block the read
        raise ManifestError(f"Manifest {printable(path, 200)} is not a regular file.")
    try:
        if suffix in (".parquet", ".pq"):
            yield from _parquet_chunks(path, rows, keep)
            return
        if suffix not in (".csv", ".tsv", ".txt"):
            raise ManifestError(
                f"{printable(path.name)}: unknown manifest format {quoted(suffix, 20)}; use a .csv "
                "or .parquet file."
            )
        if (why := _not_csv(path)) is not None:
            raise ManifestError(why)
        yield from _csv_chunks(path, rows, keep)
    except ManifestError:
        raise
    except FileNotFoundError:
        raise ManifestError(f"Manifest {printable(path, 200)} does not exist.") from None
    except Exception as exc:  # pandas/pyarrow raise many types for malformed files
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise ManifestError(
            f"{printable(path.name)} could not be read as a {suffix.lstrip('.')} table "
            f"({exc.__class__.__name__}: {printable(first_line, 160)}). Check that it is a "
            "well-formed CSV (comma-separated, quoted fields, UTF-8) or Parquet file."
        ) from None


def _read_table(path: Path) -> tuple[pd.DataFrame, bool]:
    """Read a CSV or Parquet file as strings; return (frame, all text was valid UTF-8)."""
    frames, utf8_ok = [], True
    for frame, ok in _read_chunks(path):
        frames.append(frame)
        utf8_ok &= ok
    return (frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)), utf8_ok


def _nfc(values: pd.Series) -> pd.Series:
    """Unicode NFC of every value (composed accents: 'e' + U+0301 becomes 'é').

    ASCII text is NFC already: only the other values are normalized (most are ASCII).
    """
    todo = ~values.str.isascii().astype(bool)
    if not todo.any():
        return values
    values = values.copy()
    values.loc[todo] = values.loc[todo].str.normalize("NFC")
    return values


def _case_variants(df: pd.DataFrame, pin_codes: np.ndarray) -> list[tuple[str, ...]]:
    """Groups of category names equal but for case, the name with the most pins first
    (``pin_codes``: each row's pin as an integer, shape (rows,))."""
    pairs = pd.DataFrame({"category": df["category"], "pin": pin_codes}).drop_duplicates()
    pins_per = pairs["category"].value_counts().sort_index()
    pins_per = pins_per[pins_per.index != ""]
    by_fold: dict[str, list[str]] = {}
    for name in pins_per.index:
        by_fold.setdefault(name.casefold(), []).append(name)
    return [
        tuple(sorted(names, key=lambda n: (-pins_per[n], n)))
        for _, names in sorted(by_fold.items()) if len(names) > 1
    ]


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


def _resolve_images(root: Path, images: pd.Series, rows: int = CHUNK_ROWS) -> tuple[pd.Series, list[str], int]:
    """Resolve each distinct image path once with :func:`resolve_image`.

    Works through the distinct paths ``rows`` at a time and keeps only the resolved text
    (no ``Path`` objects, no dictionary over every path), so its memory does not grow with
    the number of pins beyond the resulting column.

    Args:
        root: The resolved images root.
        images: Image paths as written, shape (n,).

    Returns:
        (resolved absolute paths, "" where refused or empty, shape (n,); up to three paths
        that resolve outside the root, in order of first appearance; how many distinct
        paths do).
    """
    codes, uniques = pd.factorize(images)
    parts, escaping, n_escaping = [], [], 0
    for start in range(0, len(uniques), rows):
        out = []
        for image in uniques[start : start + rows].tolist():
            resolved = resolve_image(root, image)
            if resolved is None and image:
                n_escaping += 1
                if len(escaping) < 3:
                    escaping.append(image)
            out.append("" if resolved is None else str(resolved))
        parts.append(pa.array(out, pa.large_string()))
    table = pa.chunked_array(parts, pa.large_string())
    resolved = table.take(pa.array(codes, pa.int64())).to_pandas() if len(codes) else pd.Series([], dtype=str)
    return resolved.set_axis(images.index), escaping, n_escaping


def _check_columns(path: Path, df: pd.DataFrame, utf8_ok: bool) -> None:
    """Raise :class:`ManifestError` naming the required columns ``df`` lacks."""
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        found = ", ".join(quoted(c, 40) for c in df.columns[:12]) or "no columns"
        if len(df.columns) > 12:
            found += f" and {len(df.columns) - 12} more"
        hint = (" The file is not valid UTF-8: re-save it as 'CSV UTF-8'." if not utf8_ok else "")
        raise ManifestError(
            f"{printable(path.name)} lacks the required column(s) {', '.join(missing)}. A manifest "
            f"needs {', '.join(REQUIRED)} (optional: {', '.join(OPTIONAL)}); found: {found}.{hint}"
        )


def _tidy(chunk: pd.DataFrame) -> pd.DataFrame:
    """The manifest's columns of one chunk (other columns dropped), as stripped strings."""
    chunk.columns = [str(c).strip() for c in chunk.columns]
    out = pd.DataFrame(index=chunk.index)
    for col in REQUIRED + OPTIONAL:
        out[col] = chunk[col].astype(str).str.strip() if col in chunk.columns else ""
    return out


def read_manifest(
    path: Path | str, images_root: Path | str | None = None, *, merge_case_variants: bool = False,
    progress: bool = False,
) -> Manifest:
    """Read and validate a manifest.

    Args:
        path: The CSV or Parquet file.
        images_root: Folder image paths are relative to; default the manifest's folder.
        merge_case_variants: Merge category names that differ only in case into the
            spelling with the most pins (ties: the first in code-point order).
        progress: Show a bar over the rows read.

    The file is read in chunks of :data:`CHUNK_ROWS` rows, only the manifest's columns
    parsed (others in the file are skipped), each chunk tidied (stripped, NFC) before the next
    is read: the parser's temporary objects never exist for the whole file at once.

    Returns:
        The validated :class:`Manifest`.

    Raises:
        ManifestError: Not a CSV or Parquet file, missing columns, an empty file, a pin id
            with conflicting content, or image paths outside the images root.
    """
    path = Path(path)
    parts, raw_names, utf8_ok, header = [], set(), True, True
    bar = tqdm(desc="reading manifest", unit="row", unit_scale=True, disable=not progress, leave=False)
    try:
        for chunk, ok in _read_chunks(path, CHUNK_ROWS, keep=REQUIRED + OPTIONAL):
            utf8_ok &= ok
            if header:  # the first frame: the header, every column, no rows
                _check_columns(path, chunk, utf8_ok)
                header = False
                continue
            chunk = _tidy(chunk)
            raw_names.update(chunk["category"].unique().tolist())
            for col in NFC_COLUMNS:
                chunk[col] = _nfc(chunk[col])
            parts.append(chunk)
            bar.update(len(chunk))
    finally:
        bar.close()
    df = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    del parts
    df.index = pd.RangeIndex(len(df))  # line numbers in messages: index + 2
    if df.empty:
        raise ManifestError(f"{printable(path.name)} has no rows.")
    names = pd.Series(sorted(raw_names), dtype=str)
    n_nfc = int((names != _nfc(names)).sum())
    pin_codes = pd.factorize(df["pin_id"])[0]  # each row's pin, in order of first appearance
    variants = _case_variants(df, pin_codes)
    if merge_case_variants and variants:
        df["category"] = df["category"].replace({v: group[0] for group in variants for v in group[1:]})
    if (df["pin_id"] == "").any():
        rows = (df.index[df["pin_id"] == ""] + 2).tolist()[:5]
        raise ManifestError(f"{printable(path.name)}: empty pin_id on line(s) {rows}.")

    content = ["image", "description", "category"]
    repeated = pd.Series(pin_codes).duplicated(keep=False).to_numpy()  # only these can conflict
    conflicts = df.loc[repeated].groupby("pin_id")[content].nunique(dropna=False).max(axis=1)
    bad = conflicts[conflicts > 1].index.tolist()
    if bad:
        raise ManifestError(
            f"{printable(path.name)}: {len(bad)} pin id(s) appear with different image, "
            f"description or category, e.g. {', '.join(quoted(b, 40) for b in bad[:5])}. Repeated "
            "rows of a pin are its saves by several users and must agree on everything but "
            "user_id/board; give distinct pins distinct ids."
        )

    root = Path(images_root) if images_root is not None else path.parent
    if not root.is_dir():
        raise ManifestError(f"Images root {printable(root, 200)} is not a folder (see --images-root).")
    root = root.resolve()

    n_rows = len(df)
    user_codes = pd.factorize(df["user_id"])[0]
    first_save = ~pd.Series(pin_codes.astype(np.int64) * (int(user_codes.max()) + 1) + user_codes).duplicated()
    saves = df.loc[first_save.to_numpy(), ["pin_id", "user_id", "board"]]
    saves["pin_row"] = pin_codes[first_save.to_numpy()].astype(np.int32)
    first_of_pin = np.unique(pin_codes, return_index=True)[1]  # pins in order of first appearance
    pins = df.iloc[first_of_pin][["pin_id", "image", "description", "category", "board"]]
    pins = pins.reset_index(drop=True)
    del df
    paths, escaping, n_escaping = _resolve_images(root, pins["image"])
    if escaping:
        raise ManifestError(
            f"{printable(path.name)}: {n_escaping} image path(s) resolve outside the images root "
            f"{printable(root, 200)} (e.g. {', '.join(quoted(e) for e in escaping)}); they were "
            "refused. Paths must be relative to the images root and stay inside it (no '..', no "
            "links out)."
        )
    pins["path"] = paths
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
        case_variants=variants,
        merged_case_variants=bool(merge_case_variants and variants),
        n_nfc_categories=n_nfc,
    )
