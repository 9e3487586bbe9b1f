"""The fusion cache: fused results keyed by their full config, arrays as float32 bytes, pruned.

A fused result is a dict; its top-level numpy arrays (the fused probabilities, shape
(n_split, C)) are stored in :data:`ARRAYS` as float32 bytes with their shape, the rest as
JSON in :data:`TABLE`. Every entry records the dataset version (:meth:`Store.version`) it was
computed on; a put drops the dataset's entries of other versions and keeps the
:data:`KEEP` most recent ones.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import duckdb
import numpy as np

TABLE = "fusion_cache"
ARRAYS = "fusion_arrays"
KEEP = 32  # fused results kept per dataset, the most recent first

SCHEMA = f"""
DROP TABLE IF EXISTS fusions;
CREATE TABLE IF NOT EXISTS {TABLE} (
    dataset VARCHAR, key VARCHAR, dataset_version VARCHAR, config VARCHAR, result VARCHAR,
    created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS {ARRAYS} (
    dataset VARCHAR, key VARCHAR, name VARCHAR, shape INTEGER[], data BLOB);
"""


def put(con: duckdb.DuckDBPyConnection, dataset: str, key: str, version: str, config: dict,
        result: dict, keep: int = KEEP) -> None:
    """Store ``result`` under ``key`` and prune the dataset's cache (caller's transaction)."""
    arrays = {k: np.ascontiguousarray(v, np.float32) for k, v in result.items() if isinstance(v, np.ndarray)}
    meta = {k: v for k, v in result.items() if k not in arrays}
    con.execute(f"DELETE FROM {TABLE} WHERE dataset = ? AND key = ?", [dataset, key])
    con.execute(f"DELETE FROM {ARRAYS} WHERE dataset = ? AND key = ?", [dataset, key])
    con.execute(
        f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?)",
        [dataset, key, version, json.dumps(config), json.dumps(meta), datetime.now(timezone.utc)],
    )
    con.executemany(
        f"INSERT INTO {ARRAYS} VALUES (?, ?, ?, ?, ?)",
        [[dataset, key, name, list(arr.shape), arr.tobytes()] for name, arr in arrays.items()],
    )
    prune(con, dataset, version, keep)


def prune(con: duckdb.DuckDBPyConnection, dataset: str, version: str, keep: int) -> None:
    """Drop a dataset's cached fusions of other versions and all but the ``keep`` most recent."""
    con.execute(f"DELETE FROM {TABLE} WHERE dataset = ? AND dataset_version <> ?", [dataset, version])
    con.execute(
        f"DELETE FROM {TABLE} WHERE dataset = ? AND key NOT IN (SELECT key FROM {TABLE} "
        "WHERE dataset = ? ORDER BY created_at DESC, key LIMIT ?)",
        [dataset, dataset, keep],
    )
    con.execute(
        f"DELETE FROM {ARRAYS} a WHERE a.dataset = ? AND NOT EXISTS (SELECT 1 FROM {TABLE} c "
        "WHERE c.dataset = a.dataset AND c.key = a.key)",
        [dataset],
    )


def get(con: duckdb.DuckDBPyConnection, dataset: str, key: str) -> dict | None:
    """A cached fused result (arrays as writable float32 numpy arrays), or None.

    A store made before the cache had its own tables, opened read-only (so its schema is not
    brought up to date), has no cached results: None.
    """
    try:
        row = con.execute(f"SELECT result FROM {TABLE} WHERE dataset = ? AND key = ?", [dataset, key]).fetchone()
    except duckdb.CatalogException:
        return None
    if not row:
        return None
    out = json.loads(row[0])
    for name, shape, data in con.execute(
        f"SELECT name, shape, data FROM {ARRAYS} WHERE dataset = ? AND key = ?", [dataset, key]
    ).fetchall():
        out[name] = np.frombuffer(data, np.float32).reshape(shape).copy()
    return out
