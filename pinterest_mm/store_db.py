"""The store's database file: schema, connections, locking and the errors it raises.

:class:`StoreDatabase` opens ``$PINTEREST_MM_HOME/store.duckdb`` (created with the schema
below), hands out short-lived connections with a retry while another process holds the
write lock, and one-transaction writes that roll back on any error. Every failure becomes a
:class:`StoreError` whose message names the cause (damaged, locked, read-only, full disk,
newer schema) and the way out. The queries themselves live in :mod:`pinterest_mm.store`.
"""

from __future__ import annotations

import errno
import os
import re
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import duckdb

from . import store_fusions, store_probs
from .config import home


LOCK_TIMEOUT_ENV = "PINTEREST_MM_LOCK_TIMEOUT"
SCHEMA_VERSION = 2  # 2: probabilities as float32 files (store_probs); a 1 is migrated on open
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
""" + store_probs.SCHEMA + store_fusions.SCHEMA

_DATASET_TABLES = ("classes", "pins", "manifest_rows", "import_report", "models", store_probs.TABLE,
                   store_fusions.TABLE, store_fusions.ARRAYS)


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


class StoreDatabase:
    """Handle on one store folder's database file.

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
            migrated: list[store_probs.Staged] = []
            try:
                with self.transaction() as con:
                    fresh = not con.execute(
                        "SELECT 1 FROM information_schema.tables WHERE table_name = 'meta'").fetchall()
                    con.execute(_SCHEMA)
                    if fresh:
                        con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
                    else:
                        migrated = self._upgrade(con)
            except BaseException:
                for staged in migrated:  # the migration did not commit: its files go
                    staged.discard()
                raise

    def _upgrade(self, con: duckdb.DuckDBPyConnection) -> list[store_probs.Staged]:
        """Bring an older store to :data:`SCHEMA_VERSION` in place (caller's transaction).

        Schema 1 -> 2: the probabilities move from one DuckDB row per pin to one float32
        file per split (:func:`.store_probs.migrate_from_v1`); nothing else changes and no
        model needs rebuilding. Returns the files written (to remove if the commit fails).
        """
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        version = int(row[0][0]) if row else 1
        if version >= SCHEMA_VERSION:
            return []
        migrated = store_probs.migrate_from_v1(con, self.root)
        con.execute("DELETE FROM meta WHERE key = 'schema_version'")
        con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        return migrated

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
