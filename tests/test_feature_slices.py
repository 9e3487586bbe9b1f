"""Features are read in slices: training one classifier opens the feature file memory-mapped
and reads only the rows of each split, never the whole array."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np

from conftest import TINY_CONFIG
from pinterest_mm.build import build
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.models.classify import split_features
from pinterest_mm.store import Store

def test_split_features_returns_the_rows_of_each_split_in_order(tmp_path):
    X = np.random.default_rng(0).random((500, 7), dtype=np.float32)
    np.save(tmp_path / "f.npy", X)
    rows = {"train": np.array([4, 2, 499, 0]), "val": np.array([], dtype=np.int64), "test": np.array([7])}
    out = split_features(tmp_path / "f.npy", rows)
    for split, idx in rows.items():
        assert out[split].dtype == np.float32 and out[split].shape == (len(idx), 7)
        assert np.array_equal(out[split], X[idx])


def test_split_features_does_not_load_the_whole_file(tmp_path):
    """Check slicing 1 row in 50 of a 64 MB feature file allocates far less than the file.

    NumPy reports its array allocations to ``tracemalloc``, so the peak traced memory is what
    the call allocated (file pages mapped by ``mmap`` are the page cache's, not the process's;
    ``ru_maxrss`` counts them once touched, with the kernel's read-around, so it cannot tell
    the two ways apart). The rows asked for are 1.3 MB; reading the file whole allocates 64 MB.
    The threshold, 16 MB, leaves room for the float32 copies."""
    n, d = 16_384, 1024
    path = tmp_path / "big.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    X[:] = 1.0
    X.flush()
    del X
    rows = {"train": np.arange(0, n, 50), "test": np.arange(n - 1, 0, -97)}
    tracemalloc.start()
    try:
        out = split_features(path, rows)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out["train"].sum() == len(rows["train"]) * d
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MB"


def test_build_trains_from_the_memory_mapped_feature_file(tmp_path, tiny_manifest, monkeypatch):
    """Check a features model freshly computed in memory (GloVe averages) is trained from its
    saved file opened memory-mapped, and the file is never read whole."""
    store = Store(tmp_path / "store")
    import_manifest(store, tiny_manifest, "tiny", TINY_CONFIG, progress=False)
    path = store.features_path("tiny", "glove-6b-50")
    loads: list[object] = []
    real_load = np.load

    def spy(file, *args, **kwargs):
        if Path(str(file)) == path:
            loads.append(kwargs.get("mmap_mode", args[0] if args else None))
        return real_load(file, *args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    results = build(store, "tiny", ["glove-6b-50"], progress=False)
    assert [r["status"] for r in results] == ["built"]
    assert loads and all(mode == "r" for mode in loads), loads
    assert store.load_probs("tiny", "glove-6b-50", "test").shape[0] == store.dataset_info("tiny")["split_counts"]["test"]
