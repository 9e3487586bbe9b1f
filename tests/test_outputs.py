"""Reading the probability cache: one snapshot, never a mix of two versions."""

from __future__ import annotations

import numpy as np
import pytest

from app_fixtures import add_synth_models
from pinterest_mm.outputs import load_outputs
from pinterest_mm.store import Store, StoreError


def _one_hot(n: int, c: int, k: int) -> np.ndarray:
    out = np.zeros((n, c), np.float32)
    out[:, k % c] = 1.0
    return out


def test_a_model_saved_during_the_read_is_not_mixed_in(tiny_store, monkeypatch):
    """A writer commits before every probability read: the read sees the store as it began."""
    names = add_synth_models(tiny_store)
    before = load_outputs(tiny_store, "tiny")
    writer = Store(tiny_store.root)  # another handle, another connection: a build writing
    n = {s: len(before.y[s]) for s in before.y}
    c = before.n_classes
    saves = []
    original = Store.load_probs

    def load_probs_while_writing(self, dataset, model, split):
        k = len(saves) + 1  # each write is a new version of names[0], and one new model
        for name in (names[0], "written-meanwhile"):
            writer.save_model(
                "tiny", name, family="other", modality="text", params={"version": k}, cv_score=None,
                val_accuracy=1.0, test_accuracy=1.0, seconds=0.0, fingerprint=f"v{k}",
                probs={s: _one_hot(n[s], c, k) for s in n},
            )
        saves.append(k)
        return original(self, dataset, model, split)

    monkeypatch.setattr(Store, "load_probs", load_probs_while_writing)
    out = load_outputs(tiny_store, "tiny")
    monkeypatch.setattr(Store, "load_probs", original)

    assert saves, "the writer never ran"
    assert sorted(out.models) == sorted(before.models)  # the model saved meanwhile is not there
    for m in before.models:
        assert out.models[m] == before.models[m]
        for split, arr in before.probs[m].items():
            np.testing.assert_array_equal(out.probs[m][split], arr)

    after = load_outputs(tiny_store, "tiny")  # the next read sees the last write, whole
    last = saves[-1]
    assert "written-meanwhile" in after.models and after.models[names[0]].params == {"version": last}
    for split in n:
        np.testing.assert_array_equal(after.probs[names[0]][split], _one_hot(n[split], c, last))


def test_a_snapshot_only_reads(tiny_store):
    add_synth_models(tiny_store)
    with tiny_store.snapshot() as snap:
        assert snap.classes("tiny") == tiny_store.classes("tiny")
        with pytest.raises(StoreError, match="only reads"):
            snap.save_model("tiny", "x", family="other", modality="text", params={}, cv_score=None,
                            val_accuracy=0.0, test_accuracy=0.0, seconds=0.0, fingerprint="x", probs={})
    assert "x" not in set(tiny_store.models("tiny")["model"])
