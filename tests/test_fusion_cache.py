"""The store's fusion cache: arrays stored as arrays, entries of old versions and old entries pruned."""

from __future__ import annotations

import numpy as np

from app_fixtures import add_synth_models
from pinterest_mm.fusion import fuse
from pinterest_mm.outputs import load_outputs
from pinterest_mm.store import Store


def _keys(store: Store, dataset: str) -> set[str]:
    with store.connect() as con:
        return {r[0] for r in con.execute("SELECT key FROM fusion_cache WHERE dataset = ?", [dataset]).fetchall()}


def _array_keys(store: Store, dataset: str) -> set[str]:
    with store.connect() as con:
        return {r[0] for r in con.execute("SELECT key FROM fusion_arrays WHERE dataset = ?", [dataset]).fetchall()}


def test_fused_arrays_are_stored_as_float32_bytes_and_come_back_exact(tiny_store):
    add_synth_models(tiny_store)
    outs = load_outputs(tiny_store, "tiny")
    a = fuse(outs, "mm", store=tiny_store)
    cached = tiny_store.get_fusion("tiny", a.key)
    assert isinstance(cached["test_probs"], np.ndarray) and cached["test_probs"].dtype == np.float32
    assert cached["test_probs"].shape == (len(outs.y["test"]), outs.n_classes)
    np.testing.assert_array_equal(cached["val_probs"], a.val_probs)
    cached["test_probs"][0, 0] = 2.0  # a writable copy, not a view of the cache
    with tiny_store.connect() as con:
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'fusion_arrays'").fetchall())
        (text,) = con.execute("SELECT result FROM fusion_cache WHERE key = ?", [a.key]).fetchone()
    assert types["data"] == "BLOB" and "probs" not in text  # no probabilities as JSON text
    b = fuse(outs, "mm", store=tiny_store)  # served from the cache
    assert b.key == a.key and b.chosen == a.chosen and b.test_accuracy == a.test_accuracy
    np.testing.assert_array_equal(b.test_probs, a.test_probs)


def test_cache_keeps_the_most_recent_entries_of_the_current_version(tiny_store, monkeypatch):
    add_synth_models(tiny_store)
    monkeypatch.setattr(Store, "FUSION_CACHE_KEEP", 3)
    outs = load_outputs(tiny_store, "tiny")
    keys = [fuse(outs, "mm", store=tiny_store, l=float(l)).key for l in (1, 2, 3, 4, 5)]
    assert _keys(tiny_store, "tiny") == set(keys[-3:]) == _array_keys(tiny_store, "tiny")

    add_synth_models(tiny_store, seed=5)  # models rebuilt: a new version of the dataset
    outs = load_outputs(tiny_store, "tiny")
    new = fuse(outs, "equal", store=tiny_store).key
    assert _keys(tiny_store, "tiny") == {new} == _array_keys(tiny_store, "tiny")
    assert tiny_store.get_fusion("tiny", keys[-1]) is None


def test_a_store_from_before_the_array_cache(tmp_path):
    """Its JSON-text ``fusions`` table: read-only it has no cached results; writable, it is replaced."""
    store = Store(tmp_path)
    with store.connect() as con:
        con.execute("DROP TABLE fusion_cache; DROP TABLE fusion_arrays; CREATE TABLE fusions "
                    "(dataset VARCHAR, key VARCHAR, config VARCHAR, result VARCHAR, created_at TIMESTAMP)")
    assert Store(tmp_path, read_only=True).get_fusion("tiny", "k") is None
    Store(tmp_path)
    with store.connect() as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"fusion_cache", "fusion_arrays"} <= tables and "fusions" not in tables
