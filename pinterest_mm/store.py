"""The DuckDB store: the only module that talks to the database.

One file, ``$PINTEREST_MM_HOME/store.duckdb``, holds datasets, pins, splits, the import
report, built models and every model's probability vectors. Feature arrays live beside it
under ``features/<dataset>/<model>.npy`` (see :meth:`Store.features_path`).

Every query is parameterized. Every multi-row write is one transaction, so a process
killed halfway leaves the store as it was. Connections are short-lived and opened per
operation (DuckDB allows one writing process at a time), with a retry while another
process holds the write lock.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from .config import home
from .locks import dataset_lock

LOCK_TIMEOUT_ENV = "PINTEREST_MM_LOCK_TIMEOUT"
SCHEMA_VERSION = 1
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS datasets (
    name VARCHAR PRIMARY KEY, created_at TIMESTAMP, manifest VARCHAR, images_root VARCHAR,
    config VARCHAR, fingerprint VARCHAR, n_pins INTEGER, n_classes INTEGER, n_users INTEGER,
    split_counts VARCHAR);
CREATE TABLE IF NOT EXISTS classes (dataset VARCHAR, idx INTEGER, name VARCHAR);
CREATE TABLE IF NOT EXISTS pins (
    dataset VARCHAR, pin_id VARCHAR, "row" INTEGER, split VARCHAR, split_row INTEGER,
    label INTEGER, category VARCHAR, image VARCHAR, description VARCHAR,
    text_words VARCHAR, text_transformer VARCHAR, board VARCHAR, image_hash VARCHAR,
    n_words INTEGER);
CREATE TABLE IF NOT EXISTS manifest_rows (
    dataset VARCHAR, pin_id VARCHAR, user_id VARCHAR, board VARCHAR, category VARCHAR,
    status VARCHAR);
CREATE TABLE IF NOT EXISTS import_report (
    dataset VARCHAR, step_idx INTEGER, step VARCHAR, category VARCHAR, dropped INTEGER,
    remaining INTEGER, reason VARCHAR);
CREATE TABLE IF NOT EXISTS models (
    dataset VARCHAR, model VARCHAR, family VARCHAR, modality VARCHAR, params VARCHAR,
    cv_score DOUBLE, val_accuracy DOUBLE, test_accuracy DOUBLE, seconds DOUBLE,
    fingerprint VARCHAR, built_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS probs (
    dataset VARCHAR, model VARCHAR, split VARCHAR, split_row INTEGER, probs FLOAT[]);
DROP TABLE IF EXISTS fusions;
CREATE TABLE IF NOT EXISTS fusion_cache (
    dataset VARCHAR, key VARCHAR, dataset_version VARCHAR, config VARCHAR, result VARCHAR,
    created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS fusion_arrays (
    dataset VARCHAR, key VARCHAR, name VARCHAR, shape INTEGER[], data BLOB);
"""

_DATASET_TABLES = ("classes", "pins", "manifest_rows", "import_report", "models", "probs", "fusion_cache",
                   "fusion_arrays")


# Errors of a damaged database file (as opposed to a wrong query).
_CORRUPT = tuple(getattr(duckdb, n) for n in ("IOException", "SerializationException", "InternalException")
                 if hasattr(duckdb, n))


class StoreError(RuntimeError):
    """The store cannot be used as asked; the message says why and what to do."""


class DatasetNotFound(StoreError):
    """No dataset of that name has been imported."""


class DatasetChanged(StoreError):
    """The dataset was replaced after a build read it: its results belong to the old version."""


# OS errors a store can meet that say nothing about the file's health.
_NO_WRITE = (errno.EROFS, errno.EACCES, errno.EPERM)
_OS_ERRORS = (*_NO_WRITE, errno.ENOSPC, errno.EDQUOT, errno.EIO)


def _os_error_code(exc: BaseException) -> int | None:
    """The errno of ``exc`` when it reports a plain OS error (see ``_OS_ERRORS``), else None.

    DuckDB raises the same ``IOException`` for a read-only or full disk as for a damaged
    file; the OS's words in its message tell them apart (e.g. ``Read-only file system``).
    """
    if isinstance(exc, OSError) and exc.errno in _OS_ERRORS:
        return exc.errno
    text = str(exc).lower()
    return next((code for code in _OS_ERRORS if os.strerror(code).lower() in text), None)


def _io_error(path: Path, doing: str, exc: BaseException, *, reading: bool) -> StoreError | None:
    """A :class:`StoreError` naming the OS error of ``exc`` and the way out, or None.

    Args:
        path: The store file or folder.
        doing: What failed, e.g. ``"opened for writing"``.
        exc: The error.
        reading: Whether the failing command only reads the store.
    """
    code = _os_error_code(exc)
    if code is None:
        return None
    if code in _NO_WRITE and reading:
        advice = ("Give this user read access to the store folder and its files, or point "
                  "PINTEREST_MM_HOME at a readable copy of it.")
    elif code in _NO_WRITE and not path.exists():
        advice = "Point PINTEREST_MM_HOME at a folder this user can write."
    elif code in _NO_WRITE:
        advice = ("The store itself is intact: commands that only read it (`pinterest-mm "
                  "datasets`, `pinterest-mm report`, the app) still work. To import or build, "
                  "make the store folder writable for this user, or point PINTEREST_MM_HOME at "
                  "a writable copy of it.")
    elif code == errno.EIO:
        advice = ("The disk reported a read/write failure: check the disk and its mount. Do "
                  "not delete the store; copy it elsewhere first if the disk is failing.")
    else:
        advice = "Free some disk space and run the command again; the store is unchanged."
    return StoreError(f"The store {path} cannot be {doing}: {os.strerror(code)}. {advice}")


def validate_name(name: str, what: str = "dataset") -> str:
    """Return ``name`` if it is a safe identifier, else raise ``ValueError``.

    Names become folder names under the store, so they are restricted to letters, digits,
    ``_``, ``.`` and ``-`` (1-64 characters, not starting with a dot or dash).
    """
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in {".", ".."}:
        raise ValueError(
            f"Invalid {what} name {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit."
        )
    return name


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Store:
    """Handle on one store folder.

    Args:
        root: The store folder; default :func:`pinterest_mm.config.home`.
        read_only: Open the database read-only (several readers may share it; works on a
            read-only filesystem). Nothing is created or written.

    Raises:
        StoreError: The folder or file cannot be created or opened as asked (the message
            says whether it is damaged, locked, read-only, full, ...).
    """

    def __init__(self, root: Path | str | None = None, *, read_only: bool = False) -> None:
        self.root = Path(root) if root is not None else home(create=False)
        self.path = self.root / "store.duckdb"
        self.read_only = read_only
        if not read_only:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"The store folder {self.root} cannot be created: {exc.strerror or exc}. Point "
                    "PINTEREST_MM_HOME at a folder this user can write."
                ) from exc
            with self.connect() as con:
                con.execute(_SCHEMA)
                con.execute(
                    "INSERT INTO meta SELECT 'schema_version', ? WHERE NOT EXISTS "
                    "(SELECT 1 FROM meta WHERE key = 'schema_version')",
                    [str(SCHEMA_VERSION)],
                )

    # ------------------------------------------------------------------ connections
    @contextmanager
    def connect(self, *, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a connection, retrying while another process holds the lock.

        Args:
            timeout: Seconds to wait for a lock held by another process; default
                ``$PINTEREST_MM_LOCK_TIMEOUT`` or 30.

        Raises:
            StoreError: The file is not a DuckDB database, is from a newer schema, or
                stays locked longer than ``timeout`` seconds.
        """
        if self.read_only and not self.path.exists():
            raise StoreError(f"No store at {self.path}: import a dataset first (pinterest-mm import).")
        if timeout is None:
            try:
                timeout = float(os.environ.get(LOCK_TIMEOUT_ENV, "30"))
            except ValueError:
                timeout = 30.0
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=self.read_only)
                break
            except duckdb.IOException as exc:
                msg = str(exc)
                if "lock" in msg.lower() and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                if "lock" in msg.lower():
                    way_out = (
                        "Wait for it to finish and reload. To serve while a long job writes, "
                        "point PINTEREST_MM_HOME at a copy of the store folder made when no job ran."
                        if self.read_only else
                        "Only one process can write at a time: wait for it to finish and run "
                        "the command again (finished work is kept)."
                    )
                    raise StoreError(
                        f"The store {self.path} is locked by another process (a build, an "
                        f"import, or a DuckDB session holding it open; waited {timeout:g} s). "
                        + way_out
                    ) from exc
                raise _io_error(self.path, self._opened_as, exc, reading=self.read_only) or StoreError(
                    f"The store {self.path} cannot be opened ({msg.splitlines()[0]}). It may be "
                    f"truncated or corrupt: move it away and re-import, e.g. "
                    f"`mv {self.path} {self.path}.bad`."
                ) from exc
            except duckdb.Error as exc:
                raise StoreError(
                    f"The store {self.path} cannot be opened ({str(exc).splitlines()[0]}). "
                    f"Move it away and re-import, e.g. `mv {self.path} {self.path}.bad`."
                ) from exc
        try:
            self._check_version(con)
            yield con
        except _CORRUPT as exc:  # a truncated file opens, then fails on the first read
            io_error = _io_error(self.path, "read" if self.read_only else "read or written", exc,
                                 reading=self.read_only)
            if io_error is not None:  # a read-only folder or a full disk: the file is fine
                raise io_error from exc
            raise StoreError(
                f"The store {self.path} cannot be read ({str(exc).splitlines()[0][:200]}). It may "
                f"be truncated or corrupt: move it away and re-import, e.g. "
                f"`mv {self.path} {self.path}.bad`."
            ) from exc
        finally:
            con.close()

    @property
    def _opened_as(self) -> str:
        return "opened for reading" if self.read_only else "opened for writing"

    def _check_version(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        except duckdb.CatalogException:
            return
        row = rows[0] if rows else None
        if row and int(row[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"The store {self.path} has schema version {row[0]}, newer than this "
                f"pinterest-mm understands ({SCHEMA_VERSION}). Upgrade pinterest-mm, or point "
                "PINTEREST_MM_HOME at another folder."
            )

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a connection inside one transaction; roll back on any error.

        Raises:
            StoreError: The commit failed (a full disk, a read-only folder, ...); nothing of
                the transaction was written.
        """
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            try:
                con.execute("COMMIT")
            except duckdb.Error as exc:  # e.g. the write-ahead log cannot grow on a full disk
                raise _io_error(self.path, "written", exc, reading=False) or StoreError(
                    f"The store {self.path} could not save the change "
                    f"({str(exc).splitlines()[0][:200]}); nothing of it was written. Run the "
                    "command again."
                ) from exc

    @contextmanager
    def snapshot(self) -> Iterator["Store"]:
        """Yield a read-only view of the store at one instant.

        Every query on the view runs on one connection inside one transaction (DuckDB's
        snapshot isolation): commits made meanwhile by other connections are not seen, and
        another process that wants to write waits until the view is closed. Writes through
        the view are refused (:meth:`put_fusion` is a no-op, as on a read-only store).
        """
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield _Snapshot(self, con)
            finally:
                con.execute("ROLLBACK")

    # ------------------------------------------------------------------ datasets
    def write_dataset(
        self,
        name: str,
        *,
        info: dict,
        classes: list[str],
        pins: pd.DataFrame,
        manifest_rows: pd.DataFrame,
        report: pd.DataFrame,
        replace: bool = False,
    ) -> None:
        """Write a whole imported dataset in one transaction.

        Args:
            name: Dataset name.
            info: Keys ``manifest``, ``images_root``, ``config`` (dict), ``fingerprint``,
                ``n_users``, ``split_counts`` (dict).
            classes: Class names; index = label.
            pins: One row per kept pin, columns as the ``pins`` table (without ``dataset``).
            manifest_rows: Every manifest row with its fate (``status``: ``kept`` or why dropped).
            report: The import report (columns of ``import_report`` without ``dataset``).
            replace: Replace an existing dataset of that name (its models go too).

        Raises:
            StoreError: The name exists and ``replace`` is false.
            DatasetBusy: A build of that dataset is running (nothing is written).
        """
        validate_name(name)
        with self.lock_dataset(name, "an import"):
            with self.transaction() as con:
                exists = con.execute("SELECT 1 FROM datasets WHERE name = ?", [name]).fetchone()
                if exists and not replace:
                    raise StoreError(
                        f"A dataset named {name!r} exists already. Pass --replace to replace it "
                        "(its built models are removed too), or choose another --name."
                    )
                for table in _DATASET_TABLES:
                    con.execute(f"DELETE FROM {table} WHERE dataset = ?", [name])
                con.execute("DELETE FROM datasets WHERE name = ?", [name])
                con.execute(
                    "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        name, _now(), info["manifest"], info["images_root"],
                        json.dumps(info["config"]), info["fingerprint"], len(pins), len(classes),
                        int(info["n_users"]), json.dumps(info["split_counts"]),
                    ],
                )
                con.executemany(
                    "INSERT INTO classes VALUES (?, ?, ?)", [[name, i, c] for i, c in enumerate(classes)]
                )
                self._insert_df(con, "pins", name, pins)
                self._insert_df(con, "manifest_rows", name, manifest_rows)
                self._insert_df(con, "import_report", name, report)
            if replace:  # still under the lock: no build is writing these files
                shutil.rmtree(self.root / "features" / name, ignore_errors=True)
                shutil.rmtree(self.root / "checkpoints" / name, ignore_errors=True)

    @staticmethod
    def _insert_df(con: duckdb.DuckDBPyConnection, table: str, name: str, df: pd.DataFrame) -> None:
        cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] != "dataset"]
        frame = df.reindex(columns=cols)
        con.register("_frame", frame)
        try:
            quoted = ", ".join(f'"{c}"' for c in cols)
            con.execute(f"INSERT INTO {table} (dataset, {quoted}) SELECT ?, {quoted} FROM _frame", [name])
        finally:
            con.unregister("_frame")

    def lock_dataset(self, name: str, job: str):
        """Return a context manager holding the dataset's build/replace lock (:mod:`.locks`).

        Raises:
            DatasetBusy: Another process builds or replaces the dataset.
        """
        return dataset_lock(self.root, validate_name(name), job)

    def list_datasets(self) -> pd.DataFrame:
        """Return one row per dataset: name, created_at, n_pins, n_classes, n_users, splits."""
        with self.connect() as con:
            df = con.execute(
                "SELECT name, created_at, n_pins, n_classes, n_users, split_counts, manifest "
                "FROM datasets ORDER BY name"
            ).df()
        df["split_counts"] = df["split_counts"].map(json.loads)
        return df

    def dataset_names(self) -> list[str]:
        """Return the names of all imported datasets."""
        with self.connect() as con:
            return [r[0] for r in con.execute("SELECT name FROM datasets ORDER BY name").fetchall()]

    def dataset_info(self, name: str) -> dict:
        """Return a dataset's row as a dict (config and split counts decoded).

        Raises:
            DatasetNotFound: No dataset of that name.
        """
        with self.connect() as con:
            df = con.execute("SELECT * FROM datasets WHERE name = ?", [name]).df()
        if df.empty:
            known = ", ".join(self.dataset_names()) or "none yet"
            raise DatasetNotFound(f"No dataset named {name!r} (imported: {known}).")
        info = df.iloc[0].to_dict()
        info["config"] = json.loads(info["config"])
        info["split_counts"] = json.loads(info["split_counts"])
        return info

    def dataset_version(self, name: str) -> str:
        """Return the version of a dataset's pins: its fingerprint and import time.

        Every import (``--replace`` included, even of the same manifest) gives a new version;
        a build saves its models only against the version it started from.

        Raises:
            DatasetNotFound: No dataset of that name.
        """
        with self.connect() as con:
            return self._dataset_version(con, name)

    @staticmethod
    def _dataset_version(con: duckdb.DuckDBPyConnection, name: str) -> str:
        row = con.execute("SELECT fingerprint, created_at FROM datasets WHERE name = ?", [name]).fetchone()
        if row is None:
            raise DatasetNotFound(f"No dataset named {name!r} (it was deleted or never imported).")
        return f"{row[0]}@{row[1]}"

    def classes(self, name: str) -> list[str]:
        """Return the class names of a dataset, index = label."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT name FROM classes WHERE dataset = ? ORDER BY idx", [name]
            ).fetchall()
        return [r[0] for r in rows]

    def pins(self, name: str, split: str | None = None) -> pd.DataFrame:
        """Return the kept pins, ordered by ``split_row`` within a split or by ``row``."""
        with self.connect() as con:
            if split is None:
                return con.execute(
                    'SELECT * EXCLUDE (dataset) FROM pins WHERE dataset = ? ORDER BY "row"', [name]
                ).df()
            return con.execute(
                "SELECT * EXCLUDE (dataset) FROM pins WHERE dataset = ? AND split = ? "
                "ORDER BY split_row",
                [name, split],
            ).df()

    def manifest_rows(self, name: str) -> pd.DataFrame:
        """Return every manifest row (pin, user, category) with its fate (``status``)."""
        with self.connect() as con:
            return con.execute(
                "SELECT * EXCLUDE (dataset) FROM manifest_rows WHERE dataset = ?", [name]
            ).df()

    def saves(self, name: str) -> pd.DataFrame:
        """Return the (pin, user) saves of kept pins, with the pin's split and label."""
        with self.connect() as con:
            return con.execute(
                "SELECT m.pin_id, m.user_id, p.split, p.split_row, p.label FROM manifest_rows m "
                "JOIN pins p ON p.dataset = m.dataset AND p.pin_id = m.pin_id "
                "WHERE m.dataset = ? AND m.status = 'kept' AND m.user_id IS NOT NULL "
                "AND m.user_id <> ''",
                [name],
            ).df()

    def import_report(self, name: str) -> pd.DataFrame:
        """Return the import report: per step and category, how many pins were dropped."""
        with self.connect() as con:
            return con.execute(
                "SELECT * EXCLUDE (dataset) FROM import_report WHERE dataset = ? "
                "ORDER BY step_idx, category",
                [name],
            ).df()

    # ------------------------------------------------------------------ models and probabilities
    def features_path(self, dataset: str, model: str) -> Path:
        """Return where a (dataset, model) feature array lives (folder created)."""
        folder = self.root / "features" / validate_name(dataset)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{validate_name(model, 'model')}.npy"

    def checkpoints_dir(self, dataset: str, model: str) -> Path:
        """Return the checkpoint folder of a (dataset, model) (created)."""
        folder = self.root / "checkpoints" / validate_name(dataset) / validate_name(model, "model")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def save_model(
        self,
        dataset: str,
        model: str,
        *,
        family: str,
        modality: str,
        params: dict,
        cv_score: float | None,
        val_accuracy: float,
        test_accuracy: float,
        seconds: float,
        fingerprint: str,
        probs: dict[str, np.ndarray],
        dataset_version: str | None = None,
    ) -> None:
        """Store a built model and its probability vectors in one transaction.

        Args:
            probs: Split name (``train`` for out-of-fold train probabilities, ``val``,
                ``test``) to an array of shape (n_split, n_classes), rows in ``split_row``
                order.
            dataset_version: The :meth:`dataset_version` the probabilities were computed
                on; checked inside the transaction (a build passes it).

        Raises:
            DatasetChanged: The dataset is no longer at ``dataset_version`` (it was
                replaced or deleted meanwhile); nothing is written.
        """
        validate_name(model, "model")
        with self.transaction() as con:
            if dataset_version is not None:
                try:
                    now = self._dataset_version(con, dataset)
                except DatasetNotFound:
                    now = "deleted"
                if now != dataset_version:
                    raise DatasetChanged(
                        f"Dataset {dataset!r} was replaced or deleted while {model} was being "
                        "built, so its results belong to the old version and were not saved. "
                        f"Run `pinterest-mm build {dataset}` again to build on the current version."
                    )
            con.execute("DELETE FROM models WHERE dataset = ? AND model = ?", [dataset, model])
            con.execute("DELETE FROM probs WHERE dataset = ? AND model = ?", [dataset, model])
            con.execute(
                "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    dataset, model, family, modality, json.dumps(params),
                    None if cv_score is None else float(cv_score), float(val_accuracy),
                    float(test_accuracy), float(seconds), fingerprint, _now(),
                ],
            )
            for split, arr in probs.items():
                arr = np.ascontiguousarray(arr, dtype=np.float32)
                n, c = arr.shape
                values = pa.array(arr.reshape(-1))
                offsets = pa.array(np.arange(0, (n + 1) * c, c, dtype=np.int32))
                table = pa.table(
                    {
                        "dataset": pa.array([dataset] * n),
                        "model": pa.array([model] * n),
                        "split": pa.array([split] * n),
                        "split_row": pa.array(np.arange(n, dtype=np.int32)),
                        "probs": pa.ListArray.from_arrays(offsets, values),
                    }
                )
                con.register("_probs", table)
                try:
                    con.execute("INSERT INTO probs SELECT * FROM _probs")
                finally:
                    con.unregister("_probs")

    def models(self, dataset: str) -> pd.DataFrame:
        """Return one row per built model (params decoded to dicts)."""
        with self.connect() as con:
            df = con.execute(
                "SELECT * EXCLUDE (dataset) FROM models WHERE dataset = ? ORDER BY model", [dataset]
            ).df()
        df["params"] = df["params"].map(json.loads)
        return df

    def model_fingerprint(self, dataset: str, model: str) -> str | None:
        """Return the fingerprint a model was built with, or None when not built."""
        with self.connect() as con:
            row = con.execute(
                "SELECT fingerprint FROM models WHERE dataset = ? AND model = ?", [dataset, model]
            ).fetchone()
        return row[0] if row else None

    def load_probs(self, dataset: str, model: str, split: str) -> np.ndarray | None:
        """Return a model's probabilities on a split, shape (n_split, n_classes), or None."""
        with self.connect() as con:
            table = con.sql(
                "SELECT probs FROM probs WHERE dataset = ? AND model = ? AND split = ? "
                "ORDER BY split_row",
                params=[dataset, model, split],
            ).to_arrow_table()
        if table.num_rows == 0:
            return None
        col = table.column("probs").combine_chunks()
        values = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        return values.reshape(table.num_rows, -1)

    def version(self, dataset: str) -> str:
        """Return a string that changes whenever the dataset or any of its models changes."""
        with self.connect() as con:
            row = con.execute(
                "SELECT d.fingerprint, d.created_at, (SELECT max(built_at) FROM models m "
                "WHERE m.dataset = d.name), (SELECT count(*) FROM models m WHERE m.dataset = d.name) "
                "FROM datasets d WHERE d.name = ?",
                [dataset],
            ).fetchone()
        return "|".join(str(x) for x in row) if row else "missing"

    # ------------------------------------------------------------------ fused results
    FUSION_CACHE_KEEP = 32  # fused results kept per dataset, the most recent first

    def put_fusion(self, dataset: str, key: str, config: dict, result: dict) -> None:
        """Cache a fused result under its full config key (not on a read-only store).

        Top-level values of ``result`` that are numpy arrays (the fused probabilities, shape
        (n_split, C)) are stored as float32 bytes with their shape; the rest as JSON. Entries
        made on another version of the dataset (:meth:`version`: a model rebuilt or added,
        the dataset replaced) are dropped, and only the ``FUSION_CACHE_KEEP`` most recent
        entries of the dataset are kept.
        """
        if self.read_only:  # a cache: `report --thesis` on a read-only store computes, never writes
            return
        arrays = {k: np.ascontiguousarray(v, np.float32) for k, v in result.items() if isinstance(v, np.ndarray)}
        meta = {k: v for k, v in result.items() if k not in arrays}
        version = self.version(dataset)
        with self.transaction() as con:
            con.execute("DELETE FROM fusion_cache WHERE dataset = ? AND key = ?", [dataset, key])
            con.execute("DELETE FROM fusion_arrays WHERE dataset = ? AND key = ?", [dataset, key])
            con.execute(
                "INSERT INTO fusion_cache VALUES (?, ?, ?, ?, ?, ?)",
                [dataset, key, version, json.dumps(config), json.dumps(meta), _now()],
            )
            con.executemany(
                "INSERT INTO fusion_arrays VALUES (?, ?, ?, ?, ?)",
                [[dataset, key, name, list(arr.shape), arr.tobytes()] for name, arr in arrays.items()],
            )
            self._prune_fusions(con, dataset, version, self.FUSION_CACHE_KEEP)

    @staticmethod
    def _prune_fusions(con: duckdb.DuckDBPyConnection, dataset: str, version: str, keep: int) -> None:
        """Drop a dataset's cached fusions of other versions and all but the ``keep`` most recent."""
        con.execute("DELETE FROM fusion_cache WHERE dataset = ? AND dataset_version <> ?", [dataset, version])
        con.execute(
            "DELETE FROM fusion_cache WHERE dataset = ? AND key NOT IN (SELECT key FROM fusion_cache "
            "WHERE dataset = ? ORDER BY created_at DESC, key LIMIT ?)",
            [dataset, dataset, keep],
        )
        con.execute(
            "DELETE FROM fusion_arrays a WHERE a.dataset = ? AND NOT EXISTS (SELECT 1 FROM fusion_cache c "
            "WHERE c.dataset = a.dataset AND c.key = a.key)",
            [dataset],
        )

    def get_fusion(self, dataset: str, key: str) -> dict | None:
        """Return a cached fused result (its arrays as float32 numpy arrays), or None.

        A store made before the cache had its own tables, opened read-only (so its schema is
        not brought up to date), has no cached results: None.
        """
        with self.connect() as con:
            try:
                row = con.execute(
                    "SELECT result FROM fusion_cache WHERE dataset = ? AND key = ?", [dataset, key]
                ).fetchone()
            except duckdb.CatalogException:
                return None
            arrays = con.execute(
                "SELECT name, shape, data FROM fusion_arrays WHERE dataset = ? AND key = ?", [dataset, key]
            ).fetchall() if row else []
        if not row:
            return None
        out = json.loads(row[0])
        for name, shape, data in arrays:
            out[name] = np.frombuffer(data, np.float32).reshape(shape).copy()  # writable
        return out


class _Snapshot(Store):
    """A :class:`Store` whose every query runs on one open read transaction (see :meth:`Store.snapshot`)."""

    def __init__(self, store: Store, con: duckdb.DuckDBPyConnection) -> None:  # no schema setup
        self.root, self.path, self.read_only = store.root, store.path, True
        self._con = con

    @contextmanager
    def connect(self, *, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield the snapshot's connection."""
        yield self._con

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Refuse: a snapshot only reads."""
        raise StoreError("A store snapshot only reads; write through the store itself.")
        yield self._con  # pragma: no cover - makes this a generator
