"""Building models into the store: probabilities, caching, resuming, determinism, predictors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import TINY_CONFIG
from pinterest_mm import build as build_mod
from pinterest_mm.build import BuildFailed, build
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.models import UnknownModelError, load_predictor
from pinterest_mm.models.image import GraphBackbone, _Pooled
from pinterest_mm.store import Store

MODELS = ["effnet-lite0", "glove-6b-50", "word2vec-train", "tfidf-lr", "minilm-l6"]
OPTIONS = {"effnet-lite0": {"chunk_rows": 32, "batch_size": 16}, "minilm-l6": {"epochs": 2, "batch_size": 32, "max_length": 32}}


class Killed(BaseException):
    """Stands for the process being killed (not caught by the build's error handling)."""


def _new_store(root, manifest) -> Store:
    s = Store(root)
    import_manifest(s, manifest, "tiny", TINY_CONFIG, progress=False)
    return s


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_manifest):
    """A store with MODELS built in one uninterrupted run."""
    s = _new_store(tmp_path_factory.mktemp("built") / "store", tiny_manifest)
    results = build(s, "tiny", MODELS, progress=False, options=OPTIONS)
    return s, results


def _probs(store, model):
    return {sp: store.load_probs("tiny", model, sp) for sp in ("train", "val", "test")}


def test_build_stores_probabilities_for_every_split(built):
    store, results = built
    assert [r["status"] for r in results] == ["built"] * len(MODELS)
    counts = store.dataset_info("tiny")["split_counts"]
    C = len(store.classes("tiny"))
    models = store.models("tiny").set_index("model")
    assert sorted(models.index) == sorted(MODELS)
    for name in MODELS:
        probs = _probs(store, name)
        for split in ("val", "test"):
            assert probs[split].shape == (counts[split], C)
            np.testing.assert_allclose(probs[split].sum(1), 1, atol=1e-4)
        if name == "minilm-l6":
            assert probs["train"] is None  # in-sample probabilities are not out-of-fold
        else:
            assert probs["train"].shape == (counts["train"], C)
        params = models.loc[name, "params"]
        assert models.loc[name, "val_accuracy"] > 0.5, name
        if name in ("effnet-lite0", "glove-6b-50", "word2vec-train"):
            assert params["C"] in (0.1, 0.01, 0.001, 0.0001) and len(params["cv_scores"]) == 4
            assert models.loc[name, "cv_score"] == params["cv_scores"][str(params["C"])]
    p = models.loc["effnet-lite0", "params"]
    assert p["dim"] == 1280 and p["n_corrupt_images"] == 0
    assert models.loc["glove-6b-50", "params"]["n_unknown_text"] == 0
    mp = models.loc["minilm-l6", "params"]
    assert mp["best_epoch"] == 1 + int(np.argmax(mp["epoch_val_accuracy"]))
    assert len(mp["epoch_val_accuracy"]) == 2


def test_second_build_recomputes_nothing_and_adds_only_new(built, monkeypatch):
    store, _ = built
    before = store.models("tiny").set_index("model")["built_at"]

    def forbidden(*a, **k):
        raise AssertionError("nothing may be recomputed")

    monkeypatch.setattr(build_mod, "fit_logreg_cv", forbidden)
    monkeypatch.setattr(_Pooled, "__call__", forbidden)
    monkeypatch.setattr(GraphBackbone, "__call__", forbidden)
    results = build(store, "tiny", MODELS, progress=False, options=OPTIONS)
    assert [r["status"] for r in results] == ["cached"] * len(MODELS)
    after = store.models("tiny").set_index("model")["built_at"]
    assert (before == after.loc[before.index]).all()
    monkeypatch.undo()
    results = build(store, "tiny", ["glove-6b-50", "fasttext-train"], progress=False)
    assert [r["status"] for r in results] == ["cached", "built"]


def test_unknown_and_unavailable_models(built, monkeypatch):
    store, _ = built
    n_before = len(store.models("tiny"))
    with pytest.raises(UnknownModelError, match="effnet-lite0"):
        build(store, "tiny", ["glove-6b-50", "no-such-model"], progress=False)
    assert len(store.models("tiny")) == n_before
    from pinterest_mm.models import backbones as backbones_mod

    monkeypatch.setattr(backbones_mod, "_timm_hub_file", lambda name: None)
    monkeypatch.delenv("PINTEREST_MM_DOWNLOAD", raising=False)
    results = build(store, "tiny", "glove-6b-50,convnext-tiny", progress=False)
    assert [r["status"] for r in results] == ["cached", "unavailable"]
    assert "timm.create_model" in results[1]["message"]
    with pytest.raises(BuildFailed) as err:
        build(store, "tiny", ["convnext-tiny"], progress=False)
    assert err.value.results[0]["status"] == "unavailable"


def test_killed_build_resumes_to_identical_probabilities(built, tmp_path, tiny_manifest, monkeypatch):
    """A second store, killed mid-features and mid-fine-tune, then resumed: same probabilities
    as the uninterrupted build (which also shows two builds are deterministic)."""
    ref, _ = built
    store = _new_store(tmp_path / "store", tiny_manifest)
    calls = {"n": 0}

    def dying(real_call):
        def dying_forward(self, batch):
            calls["n"] += 1
            if calls["n"] == 5:  # in the third chunk (2 batches of 16 per chunk of 32)
                raise Killed()
            return real_call(self, batch)
        return dying_forward

    for backbone in (_Pooled, GraphBackbone):  # torch, or an exported graph (the CPU default)
        monkeypatch.setattr(backbone, "__call__", dying(backbone.__call__))
    with pytest.raises(Killed):
        build(store, "tiny", MODELS, progress=False, options=OPTIONS)
    part = store.features_path("tiny", "effnet-lite0").with_suffix(".partial")
    assert len(list(part.glob("chunk_*[0-9].npy"))) == 2
    monkeypatch.undo()

    from pinterest_mm.models import transformer as tmod

    real_savez = np.savez
    saves = {"n": 0}

    def dying_savez(*a, **k):
        saves["n"] += 1
        if saves["n"] == 2:  # after the second epoch's training, before its checkpoint
            raise Killed()
        return real_savez(*a, **k)

    monkeypatch.setattr(tmod.np, "savez", dying_savez)
    with pytest.raises(Killed):
        build(store, "tiny", ["minilm-l6"], progress=False, options=OPTIONS)
    monkeypatch.undo()
    import json

    state = json.loads((store.checkpoints_dir("tiny", "minilm-l6") / "train_state.json").read_text())
    assert state["epochs_done"] == 1

    calls["n"] = 0
    def counting(real_call):
        return lambda self, b: (calls.__setitem__("n", calls["n"] + 1), real_call(self, b))[1]

    for backbone in (_Pooled, GraphBackbone):
        monkeypatch.setattr(backbone, "__call__", counting(backbone.__call__))
    results = build(store, "tiny", MODELS, progress=False, options=OPTIONS)
    assert [r["status"] for r in results] == ["built"] * len(MODELS)
    n_pins = len(store.pins("tiny"))
    assert calls["n"] == -(-(n_pins - 64) // 16)  # only the unfinished chunks were computed
    for name in MODELS:
        a, b = _probs(ref, name), _probs(store, name)
        for split in ("train", "val", "test"):
            if a[split] is None:
                assert b[split] is None
            else:
                np.testing.assert_allclose(b[split], a[split], rtol=0, atol=1e-6, err_msg=f"{name}/{split}")


@pytest.mark.parametrize("name", MODELS)
def test_predictor_reproduces_stored_probabilities(built, name):
    store, _ = built
    val = store.pins("tiny", "val").head(8)
    pred = load_predictor(store, "tiny", name)
    if name == "effnet-lite0":
        out = pred.predict_proba(images=[Image.open(p) for p in val["image"]])
    else:
        out = pred.predict_proba(texts=val["description"].tolist())
    stored = store.load_probs("tiny", name, "val")[: len(val)]
    assert out.shape == stored.shape
    np.testing.assert_allclose(out, stored, atol=2e-4)
