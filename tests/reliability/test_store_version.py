"""The app's cache version: asked of the store only when the store's files changed.

Every full page run reads ``ui.data.version``; opening DuckDB for it cost tens of milliseconds
and a fifth of the server's work under twenty sessions. It is now keyed on the store file's
and its write-ahead log's inode, mtime and size, so it must still change with every commit.
"""

from __future__ import annotations

import pytest

from app_fixtures import add_synth_models, make_test_cache
from pinterest_mm.store import Store


@pytest.fixture()
def counted(tmp_path, monkeypatch):
    """A fresh store and a counter of the ``Store.version`` queries the app makes."""
    from pinterest_mm.ui import data

    root = tmp_path / "home"
    make_test_cache(root, per_class=12)
    monkeypatch.setenv("PINTEREST_MM_HOME", str(root))
    calls: list[str] = []
    real = Store.version

    def version(self, dataset):
        calls.append(dataset)
        return real(self, dataset)

    monkeypatch.setattr(Store, "version", version)
    data._version.clear()
    data._store.clear()
    yield root, calls, data
    data._version.clear()
    data._store.clear()


def test_version_is_not_asked_again_while_the_store_is_unchanged(counted):
    root, calls, data = counted
    first = data.version("tiny")
    for _ in range(5):
        assert data.version("tiny") == first
    assert len(calls) == 1, calls
    assert data.version("missing-dataset") == "missing"


def test_version_follows_every_commit(counted):
    """Check models saved again and a new model each give a new version at once, equal to
    the store's own (the app's read-only store object stays open meanwhile)."""
    root, calls, data = counted
    before = data.version("tiny")
    add_synth_models(Store(root), "tiny", seed=5)  # same models, new probabilities and time
    after = data.version("tiny")
    assert after != before and after == Store(root, read_only=True).version("tiny")
    store = Store(root)
    store.save_model("tiny", "synth-extra", family="other", modality="text", params={}, cv_score=None,
                     val_accuracy=0.1, test_accuracy=0.1, seconds=0.1, fingerprint="x",
                     probs=_probs(store))
    third = data.version("tiny")
    assert third not in (before, after) and third == Store(root, read_only=True).version("tiny")


def _probs(store: Store) -> dict:
    """Uniform probabilities for every split of ``tiny`` (a valid model to save)."""
    import numpy as np

    pins = store.pins("tiny")
    C = len(store.classes("tiny"))
    return {s: np.full(((pins["split"] == s).sum(), C), 1 / C, np.float32) for s in ("train", "val", "test")}
