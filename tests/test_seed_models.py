"""Models from the companion papers: tfidf-svm (seed 004) and e5-small (seed 002)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import TINY_CONFIG
from pinterest_mm.build import build
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.models import get_model, load_predictor
from pinterest_mm.models.checkpoints import CheckpointError, load_estimator
from pinterest_mm.models.tfidf import TfidfSvmConfig, calibration_folds
from pinterest_mm.store import Store

NEW = ["tfidf-svm", "e5-small"]


def _built(root, manifest) -> Store:
    store = Store(root)
    import_manifest(store, manifest, "tiny", TINY_CONFIG, progress=False)
    results = build(store, "tiny", NEW, progress=False)
    assert [r["status"] for r in results] == ["built", "built"], results
    return store


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_manifest) -> Store:
    return _built(tmp_path_factory.mktemp("seed") / "store", tiny_manifest)


def _probs(store, model):
    return {sp: store.load_probs("tiny", model, sp) for sp in ("train", "val", "test")}


def test_registry_entries():
    svm, e5 = get_model("tfidf-svm"), get_model("e5-small")
    assert (svm.kind, svm.family, svm.dim, svm.offline) == ("classifier", "other", None, True)
    assert (e5.kind, e5.family, e5.dim, e5.offline) == ("features", "other", 384, True)
    assert e5.available()[0] and svm.available()[0]


@pytest.mark.parametrize("name", NEW)
def test_probabilities_for_every_pin_and_above_chance(built, name):
    counts = built.dataset_info("tiny")["split_counts"]
    C = len(built.classes("tiny"))
    probs = _probs(built, name)
    for split in ("train", "val", "test"):
        assert probs[split].shape == (counts[split], C)
        np.testing.assert_allclose(probs[split].sum(1), 1, atol=1e-4)
    row = built.models("tiny").set_index("model").loc[name]
    assert row["val_accuracy"] > 0.5 and row["test_accuracy"] > 0.5  # chance: 1/6
    assert row["params"]["C"] in (TfidfSvmConfig.c_grid if name == "tfidf-svm" else (0.1, 0.01, 0.001, 0.0001))


@pytest.mark.parametrize("name", NEW)
def test_checkpoint_round_trip_reproduces_stored_probabilities(built, name):
    val = built.pins("tiny", "val").head(8)
    out = load_predictor(built, "tiny", name).predict_proba(texts=val["description"].tolist())
    np.testing.assert_allclose(out, built.load_probs("tiny", name, "val")[: len(val)], atol=2e-4)


def test_calibrated_svm_checkpoint_needs_its_two_named_types(built):
    path = built.root / "checkpoints" / "tiny" / "tfidf-svm" / "tfidf-svm.skops"
    if not path.exists():  # the store's layout: find the file wherever the build put it
        path = next(built.root.rglob("tfidf-svm.skops"))
    with pytest.raises(CheckpointError, match="_CalibratedClassifier"):
        load_estimator(path)  # skops's defaults alone do not trust the calibrators


def test_same_seed_same_probabilities(built, tmp_path, tiny_manifest):
    again = _built(tmp_path / "store", tiny_manifest)
    for name in NEW:
        a, b = _probs(built, name), _probs(again, name)
        for split in ("train", "val", "test"):
            np.testing.assert_array_equal(a[split], b[split], err_msg=f"{name}/{split}")


def test_e5_embeddings_shape_norm_determinism_and_languages():
    texts = ["a cute puppy playing in the garden", "一只可爱的小狗在花园里玩", "quarterly stock market report"]
    X = get_model("e5-small").create().featurize(texts=texts)
    assert X.shape == (3, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, atol=1e-4)
    np.testing.assert_array_equal(X, get_model("e5-small").create().featurize(texts=texts))
    assert X[0] @ X[1] > X[0] @ X[2] + 0.05  # the Chinese paraphrase is nearer than the other topic


def test_calibration_folds_fit_the_smallest_class():
    cfg = TfidfSvmConfig(folds=5, calibration_folds=3)
    assert calibration_folds(np.repeat(np.arange(3), 20), cfg) == 3
    assert calibration_folds(np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]), cfg) == 2  # 5 pins: 2 per part
    assert calibration_folds(np.array([0, 1, 1, 2, 2]), cfg) == 2  # at least 2


# ------------------------------------------------------------------ cnn-scratch (no pretraining)
CNN_OPTIONS = {"cnn-scratch": {"epochs": 8, "patience": 3}}


def _cnn_store(root, manifest) -> Store:
    store = Store(root)
    import_manifest(store, manifest, "tiny", TINY_CONFIG, progress=False)
    assert build(store, "tiny", ["cnn-scratch"], progress=False, options=CNN_OPTIONS)[0]["status"] == "built"
    return store


@pytest.fixture(scope="module")
def cnn_built(tmp_path_factory, tiny_manifest) -> Store:
    return _cnn_store(tmp_path_factory.mktemp("cnn") / "store", tiny_manifest)


def test_cnn_scratch_learns_the_tiny_images_and_stops_on_validation(cnn_built):
    counts = cnn_built.dataset_info("tiny")["split_counts"]
    probs = _probs(cnn_built, "cnn-scratch")
    assert probs["train"] is None  # in-sample: not stored
    for split in ("val", "test"):
        assert probs[split].shape == (counts[split], 6)
        np.testing.assert_allclose(probs[split].sum(1), 1, atol=1e-4)
    row = cnn_built.models("tiny").set_index("model").loc["cnn-scratch"]
    assert row["val_accuracy"] > 0.5  # coloured shapes; chance 1/6
    p = row["params"]
    hist = p["epoch_val_accuracy"]
    assert len(hist) == p["epochs_run"] <= 8 and hist[p["best_epoch"] - 1] == max(hist)
    assert row["val_accuracy"] == pytest.approx(max(hist))  # the stored probabilities are the best epoch's


def test_cnn_scratch_round_trip_and_determinism(cnn_built, tmp_path, tiny_manifest):
    from PIL import Image

    val = cnn_built.pins("tiny", "val").head(8)
    pred = load_predictor(cnn_built, "tiny", "cnn-scratch")
    out = pred.predict_proba(images=[Image.open(p) for p in val["image"]])
    np.testing.assert_allclose(out, cnn_built.load_probs("tiny", "cnn-scratch", "val")[: len(val)], atol=1e-5)
    assert next(cnn_built.root.rglob("cnn.safetensors")).stat().st_size > 0
    again = _cnn_store(tmp_path / "store", tiny_manifest)
    for split in ("val", "test"):
        np.testing.assert_array_equal(_probs(again, "cnn-scratch")[split], _probs(cnn_built, "cnn-scratch")[split])
