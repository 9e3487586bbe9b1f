"""The DuckDB store: the only module (with :mod:`.store_db`) that talks to the database.

One file, ``$PINTEREST_MM_HOME/store.duckdb``, holds datasets, pins, splits, the import
report, built models and every model's probability vectors. Feature arrays live beside it
under ``features/<dataset>/<model>.npy`` (see :meth:`Store.features_path`).

Every query is parameterized. Every multi-row write is one transaction, so a process
killed halfway leaves the store as it was. The file itself (schema, connections, locking,
errors) is :mod:`.store_db`; this module holds the queries: datasets and their pins, built
models and their probabilities, and the cache of fused results.
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import numpy as np
import pandas as pd

from . import store_fusions, store_probs
from .locks import dataset_lock
from .store_db import (
    LOCK_TIMEOUT_ENV,
    SCHEMA_VERSION,
    DatasetChanged,
    DatasetNotFound,
    StoreDatabase,
    StoreError,
    _DATASET_TABLES,
    _io_error,
    _now,
    validate_name,
)

__all__ = [  # the errors and name check live in .store_db; callers import them from here
    "LOCK_TIMEOUT_ENV", "SCHEMA_VERSION", "DatasetChanged", "DatasetNotFound", "Store", "StoreError",
    "validate_name",
]


class Store(StoreDatabase):
    """Handle on one store folder: its datasets, models, probabilities and fused results.

    Opened as :class:`~.store_db.StoreDatabase` is (same ``root`` and ``read_only`` arguments,
    same :class:`StoreError` when the folder or file cannot be opened as asked).
    """

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
                shutil.rmtree(self.root / store_probs.FOLDER / name, ignore_errors=True)

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
        try:
            staged = store_probs.stage(self.root, validate_name(dataset), model, probs)
        except OSError as exc:
            raise _io_error(self.root, "written", exc, reading=False) or exc
        try:
            self._record_model(dataset, model, staged, dataset_version, [
                dataset, model, family, modality, json.dumps(params),
                None if cv_score is None else float(cv_score), float(val_accuracy),
                float(test_accuracy), float(seconds), fingerprint, _now(),
            ])
        except BaseException:
            staged.discard()
            raise
        staged.prune()

    def _record_model(self, dataset: str, model: str, staged: store_probs.Staged,
                      dataset_version: str | None, row: list) -> None:
        """The transaction of :meth:`save_model`: check the version, write the model's row
        and point at its staged probability files."""
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
            con.execute("INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            store_probs.record(con, dataset, model, staged)

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
        """Return a model's probabilities on a split, shape (n_split, n_classes) float32, or None.

        One float32 file per split (:mod:`.store_probs`): a million pins load in well under a
        second.
        """
        for _ in range(5):  # a save may replace the files between the query and the read
            with self.connect() as con:
                out = store_probs.read_probs(con, self.root, dataset, model, split)
            if not isinstance(out, str):
                return out
        raise StoreError(f"The probabilities of {model} on {dataset!r} keep being replaced while "
                         "read (a build is saving that model): try again when it has finished.")

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
    FUSION_CACHE_KEEP = store_fusions.KEEP

    def put_fusion(self, dataset: str, key: str, config: dict, result: dict) -> None:
        """Cache a fused result under its full config key (not on a read-only store).

        Top-level numpy arrays of ``result`` (fused probabilities, shape (n_split, C)) are
        stored as float32 bytes with their shape, the rest as JSON; entries of another
        :meth:`version` of the dataset are dropped and only the ``FUSION_CACHE_KEEP`` most
        recent kept (:mod:`.store_fusions`).
        """
        if self.read_only:  # a cache: `report --thesis` on a read-only store computes, never writes
            return
        version = self.version(dataset)
        with self.transaction() as con:
            store_fusions.put(con, dataset, key, version, config, result, self.FUSION_CACHE_KEEP)

    def get_fusion(self, dataset: str, key: str) -> dict | None:
        """Return a cached fused result (its arrays as float32 numpy arrays), or None."""
        with self.connect() as con:
            return store_fusions.get(con, dataset, key)

    # ------------------------------------------------------------------ snapshots
    @contextmanager
    def snapshot(self) -> Iterator["Store"]:
        """Yield a read-only view of the store at one instant.

        Every query on the view runs on one connection inside one transaction (DuckDB's
        snapshot isolation): commits made meanwhile by other connections are not seen, and
        the probability files the view's rows name outlive a newer save for
        :data:`.store_probs.KEEP_REPLACED_S`. Writes through the view are refused
        (:meth:`put_fusion` is a no-op, as on a read-only store).
        """
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute("SELECT count(*) FROM datasets").fetchall()  # DuckDB takes the snapshot at the first read
                yield _Snapshot(self, con)
            finally:
                con.execute("ROLLBACK")


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
