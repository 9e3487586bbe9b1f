"""The probability cache (schema 2): float32 files per split, saved all or nothing, and
schema-1 stores (one DuckDB row per pin) migrated on open or read as they are when read-only."""

from __future__ import annotations

import os
import time

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from pinterest_mm import store_probs
from pinterest_mm.store import SCHEMA_VERSION, DatasetChanged, Store


def _save(store: Store, model: str, probs: dict, **kw) -> None:
    store.save_model("d", model, family="other", modality="text", params={}, cv_score=None,
                     val_accuracy=0.5, test_accuracy=0.5, seconds=1.0, fingerprint="fp", probs=probs, **kw)


def _rand(n: int, c: int = 29, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, c), dtype=np.float32)


def _files(root) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / "probs").rglob("*.npy"))


def test_probs_round_trip_float32_in_split_row_order(tmp_path):
    store = Store(tmp_path)
    probs = {"train": _rand(300), "val": _rand(50, seed=1), "test": _rand(70, seed=2).astype(np.float64)}
    _save(store, "m", probs)
    for split, arr in probs.items():
        got = Store(tmp_path, read_only=True).load_probs("d", "m", split)
        assert got.dtype == np.float32 and got.shape == arr.shape
        assert np.array_equal(got, arr.astype(np.float32))
    assert store.load_probs("d", "m", "nosuch") is None and store.load_probs("d", "other", "test") is None
    assert len(_files(tmp_path)) == 3


def test_empty_split_loads_as_none_as_before(tmp_path):
    store = Store(tmp_path)
    _save(store, "m", {"train": _rand(10), "val": np.zeros((0, 29), np.float32)})
    assert store.load_probs("d", "m", "val") is None


def test_resave_replaces_files_and_a_failed_save_leaves_the_old(tmp_path, monkeypatch):
    """Check a second save leaves only its own files (once the replaced ones' grace period is
    over: 0 here), and a save refused inside the transaction (the dataset changed) keeps the
    old probabilities and leaves no new file."""
    monkeypatch.setattr(store_probs, "KEEP_REPLACED_S", 0.0)
    store = Store(tmp_path)
    _save(store, "m", {"test": _rand(40)})
    _save(store, "m", {"test": _rand(40, seed=3)})
    before = _files(tmp_path)
    assert len(before) == 1
    with pytest.raises(DatasetChanged):
        _save(store, "m", {"test": _rand(40, seed=4)}, dataset_version="an-old-version")
    assert _files(tmp_path) == before
    assert np.array_equal(store.load_probs("d", "m", "test"), _rand(40, seed=3))


def test_a_replaced_save_outlives_it_for_an_open_snapshot(tmp_path):
    """A save that replaces a model's files while a snapshot is open does not pull the files
    from under the snapshot: it still reads the old matrix; new reads see the new one; the
    replaced folder is marked and removed by a later save once KEEP_REPLACED_S has passed."""
    store = Store(tmp_path)
    _save(store, "m", {"test": _rand(40)})
    with store.snapshot() as snap:
        _save(Store(tmp_path), "m", {"test": _rand(40, seed=3)})
        np.testing.assert_array_equal(snap.load_probs("d", "m", "test"), _rand(40))
    np.testing.assert_array_equal(store.load_probs("d", "m", "test"), _rand(40, seed=3))
    assert len(_files(tmp_path)) == 2
    marks = list((tmp_path / "probs").rglob(store_probs.REPLACED_MARK))
    assert len(marks) == 1
    old = time.time() - store_probs.KEEP_REPLACED_S - 1
    os.utime(marks[0], (old, old))
    _save(store, "m", {"test": _rand(40, seed=5)})  # the long-replaced folder goes, the just-replaced stays
    assert len(_files(tmp_path)) == 2 and not marks[0].parent.exists()


def _make_v1(root, arrays: dict) -> None:
    """Turn a fresh store into a schema-1 one holding ``arrays`` ((model, split) -> array)."""
    Store(root)
    con = duckdb.connect(str(root / "store.duckdb"))
    con.execute(f"DROP TABLE {store_probs.TABLE}")
    con.execute("CREATE TABLE probs (dataset VARCHAR, model VARCHAR, split VARCHAR, "
                "split_row INTEGER, probs FLOAT[])")
    for (model, split), arr in arrays.items():
        n, c = arr.shape
        lists = pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * c, c, dtype=np.int32)),
                                         pa.array(arr.reshape(-1)))
        frame = pa.table({"dataset": ["d"] * n, "model": [model] * n, "split": [split] * n,
                          "split_row": pa.array(np.arange(n, dtype=np.int32)), "probs": lists})
        con.register("_f", frame)
        con.execute("INSERT INTO probs SELECT * FROM _f")
        con.unregister("_f")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.close()


def test_schema1_store_is_read_read_only_and_migrated_on_open(tmp_path):
    arrays = {("a", "train"): _rand(120), ("a", "test"): _rand(30, seed=1), ("b", "val"): _rand(25, seed=2)}
    _make_v1(tmp_path, arrays)
    ro = Store(tmp_path, read_only=True)  # cannot migrate: reads the old rows
    for (model, split), arr in arrays.items():
        assert np.array_equal(ro.load_probs("d", model, split), arr)
    assert not (tmp_path / "probs").exists()

    Store(tmp_path)  # a writable open migrates
    con = duckdb.connect(str(tmp_path / "store.duckdb"), read_only=True)
    version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()[0][0]
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    con.close()
    assert int(version) == SCHEMA_VERSION == 2
    assert "probs" not in tables and store_probs.TABLE in tables
    assert len(_files(tmp_path)) == 3
    for (model, split), arr in arrays.items():
        assert np.array_equal(Store(tmp_path, read_only=True).load_probs("d", model, split), arr)


def test_failed_migration_leaves_the_schema1_store_as_it_was(tmp_path, monkeypatch):
    arrays = {("a", "train"): _rand(50), ("b", "train"): _rand(50, seed=1)}
    _make_v1(tmp_path, arrays)
    real = store_probs.record
    calls = []

    def dying(con, dataset, model, staged):
        calls.append(model)
        if len(calls) == 2:
            raise OSError("disk gone")
        real(con, dataset, model, staged)

    monkeypatch.setattr(store_probs, "record", dying)
    with pytest.raises(OSError):
        Store(tmp_path)
    assert _files(tmp_path) == []
    ro = Store(tmp_path, read_only=True)
    assert np.array_equal(ro.load_probs("d", "a", "train"), arrays[("a", "train")])
