"""The probability cache: one float32 ``.npy`` file per (dataset, model, split), indexed in DuckDB.

Every built model stores one probability matrix per split, shape (n_split, n_classes), rows
in ``split_row`` order. Schema 1 kept one DuckDB row per pin with a ``FLOAT[]`` list: at a
million pins that is a million rows per (model, split), seconds to read back. DuckDB BLOBs
are no better (a filtered scan reads every block's bytes). Since schema 2 each matrix is a
plain float32 ``.npy`` file under ``probs/<dataset>/<model>/<save>/<split>.npy`` beside the
store, and the table :data:`TABLE` says which ``<save>`` folder is current: loading one
model's split is one query and one file read (1,000,000 x 29 -> 116 MB, a fraction of a second).

A save stays all or nothing: :func:`stage` writes the files into a new folder first, the
store's transaction then records them (with its dataset-version check), and only after the
commit are the model's older folders marked replaced, and removed once replaced for
:data:`KEEP_REPLACED_S` (:meth:`Staged.prune`), so a reader holding an older snapshot
(:meth:`Store.snapshot`) still finds them; a failed or killed save leaves the old rows
pointing at the old files. A reader that meets a folder removed
between its query and its read asks again (:func:`read_probs` returns :data:`GONE`).
:func:`migrate_from_v1` converts a schema-1 table; :func:`read_probs` still reads one on a
store opened read-only (which cannot be migrated).
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

TABLE = "prob_files"
LEGACY_TABLE = "probs"  # schema 1: one row per pin, probs FLOAT[]
FOLDER = "probs"
GONE = "gone"  # read_probs: the recorded file was replaced meanwhile; query again
REPLACED_MARK = ".replaced"  # in a save folder a newer save superseded (its mtime: when)
KEEP_REPLACED_S = 600.0  # a replaced save's files outlive it this long (open snapshots read them)
_SPLIT_RE = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    dataset VARCHAR, model VARCHAR, split VARCHAR, n_rows INTEGER, n_classes INTEGER,
    file VARCHAR);
"""


@dataclass
class Staged:
    """Probability files written for one save, not yet recorded in the store.

    Attributes:
        root: The store folder.
        folder: This save's folder, ``probs/<dataset>/<model>/<save>``.
        rows: ``(split, n_rows, n_classes, file)`` per split, ``file`` relative to ``root``.
    """

    root: Path
    folder: Path
    rows: list[tuple[str, int, int, str]] = field(default_factory=list)

    def discard(self) -> None:
        """Remove this save's files (the transaction did not commit)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def prune(self) -> None:
        """Mark the model's other save folders replaced (after the commit: the store no longer
        names them) and remove those replaced :data:`KEEP_REPLACED_S` ago or earlier."""
        now = time.time()
        for other in self.folder.parent.iterdir():
            if other == self.folder or not other.is_dir():
                continue
            mark = other / REPLACED_MARK
            try:
                if not mark.exists():
                    mark.touch()
                if now - mark.stat().st_mtime >= KEEP_REPLACED_S:
                    shutil.rmtree(other, ignore_errors=True)
            except OSError:  # removed meanwhile by another save of the same model
                continue


def stage(root: Path, dataset: str, model: str, probs: dict[str, np.ndarray]) -> Staged:
    """Write a model's probabilities as float32 ``.npy`` files in a new save folder.

    Args:
        root: The store folder.
        dataset, model: Validated names (they become folder names).
        probs: Split name to an array of shape (n_split, n_classes). An empty split is not
            written (:func:`read_probs` returns None for it, as schema 1 did).

    Raises:
        ValueError: A split name is not a plain word, or an array is not two-dimensional.
        OSError: A file cannot be written (nothing of this save is left behind).
    """
    staged = Staged(root, root / FOLDER / dataset / model / uuid.uuid4().hex)
    try:
        staged.folder.mkdir(parents=True)
        for split, arr in probs.items():
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            if not _SPLIT_RE.match(str(split)) or arr.ndim != 2:
                raise ValueError(f"Probabilities of {model} must map a split name to an array of "
                                 f"shape (n_pins, n_classes); got {split!r} -> {arr.shape}.")
            if len(arr) == 0:
                continue
            path = staged.folder / f"{split}.npy"
            np.save(path, arr)
            staged.rows.append((split, arr.shape[0], arr.shape[1], path.relative_to(root).as_posix()))
    except BaseException:
        staged.discard()
        raise
    return staged


def record(con: duckdb.DuckDBPyConnection, dataset: str, model: str, staged: Staged) -> None:
    """Point the store at ``staged``'s files (inside the caller's transaction)."""
    con.execute(f"DELETE FROM {TABLE} WHERE dataset = ? AND model = ?", [dataset, model])
    if staged.rows:
        con.executemany(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?)",
                        [[dataset, model, *row] for row in staged.rows])


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchall())


def read_probs(con: duckdb.DuckDBPyConnection, root: Path, dataset: str, model: str,
               split: str) -> np.ndarray | None | str:
    """A model's probabilities on a split, shape (n_split, n_classes) float32; None when not
    stored; :data:`GONE` when the recorded file was replaced by a newer save meanwhile."""
    if not _has_table(con, TABLE):  # a schema-1 store opened read-only
        return _read_legacy(con, dataset, model, split)
    row = con.execute(
        f"SELECT n_rows, n_classes, file FROM {TABLE} WHERE dataset = ? AND model = ? AND split = ?",
        [dataset, model, split],
    ).fetchall()
    if not row:
        return None
    n_rows, n_classes, file = row[0]
    try:
        arr = np.load(root / file, allow_pickle=False)
    except FileNotFoundError:
        return GONE
    if arr.shape != (n_rows, n_classes) or arr.dtype != np.float32:
        raise ValueError(f"{root / file} holds an array of shape {arr.shape} ({arr.dtype}), not the "
                         f"recorded ({n_rows}, {n_classes}) float32.")
    return arr


def _read_legacy(con: duckdb.DuckDBPyConnection, dataset: str, model: str, split: str) -> np.ndarray | None:
    """Read schema 1's one-row-per-pin list layout."""
    if not _has_table(con, LEGACY_TABLE):
        return None
    table = con.sql(
        f"SELECT probs FROM {LEGACY_TABLE} WHERE dataset = ? AND model = ? AND split = ? "
        "ORDER BY split_row",
        params=[dataset, model, split],
    ).to_arrow_table()
    if table.num_rows == 0:
        return None
    col: pa.ListArray = table.column("probs").combine_chunks()
    values = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return values.reshape(table.num_rows, -1)


def migrate_from_v1(con: duckdb.DuckDBPyConnection, root: Path) -> list[Staged]:
    """Move a schema-1 ``probs`` table into files and drop it (caller's transaction).

    Returns:
        The saves written, one per (dataset, model): the caller discards them if its
        transaction fails, so a failed migration leaves the store as it was.
    """
    if not _has_table(con, LEGACY_TABLE):
        return []
    keys = con.execute(f"SELECT DISTINCT dataset, model, split FROM {LEGACY_TABLE} ORDER BY ALL").fetchall()
    by_model: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for dataset, model, split in keys:
        by_model.setdefault((dataset, model), {})[split] = _read_legacy(con, dataset, model, split)
    written: list[Staged] = []
    try:
        for (dataset, model), probs in by_model.items():
            written.append(stage(root, dataset, model, probs))
            record(con, dataset, model, written[-1])
        con.execute(f"DROP TABLE {LEGACY_TABLE}")
    except BaseException:
        for staged in written:
            staged.discard()
        raise
    return written
