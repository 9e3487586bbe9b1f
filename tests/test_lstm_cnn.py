"""``lstm-cnn`` (seed 004): vocabulary, learning a tiny separable set, checkpoint round trip, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import TINY_CONFIG
from pinterest_mm.build import build
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.models import get_model, load_predictor
from pinterest_mm.models.lstm_cnn import build_vocab, encode
from pinterest_mm.store import Store

OPTIONS = {"lstm-cnn": {"epochs": 12, "patience": 4, "hidden": 32}}


def _store(root, manifest) -> Store:
    store = Store(root)
    import_manifest(store, manifest, "tiny", TINY_CONFIG, progress=False)
    assert build(store, "tiny", ["lstm-cnn"], progress=False, options=OPTIONS)[0]["status"] == "built"
    return store


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_manifest) -> Store:
    return _store(tmp_path_factory.mktemp("lstm") / "store", tiny_manifest)


def test_vocab_and_encoding_by_hand():
    """Check the vocabulary (by count, ties alphabetical), unknown words, cutting and padding."""
    vocab = build_vocab(["cat dog cat", "dog bird", "cat"], 2)
    assert vocab == ["cat", "dog"]
    np.testing.assert_array_equal(encode(["dog fish cat", "cat cat cat cat"], vocab, 3), [[3, 1, 2], [2, 2, 2]])
    np.testing.assert_array_equal(encode(["", "dog"], vocab, 2), [[0, 0], [3, 0]])


def test_registry_entry():
    s = get_model("lstm-cnn")
    assert (s.kind, s.modality, s.family, s.dim, s.offline) == ("classifier", "text", "other", None, False)
    assert s.available()[0]


def test_learns_the_tiny_texts_above_chance(built):
    """Check every val/test pin gets a distribution and the model beats chance (1/6) by far."""
    counts = built.dataset_info("tiny")["split_counts"]
    for split in ("val", "test"):
        p = built.load_probs("tiny", "lstm-cnn", split)
        assert p.shape == (counts[split], 6)
        np.testing.assert_allclose(p.sum(1), 1, atol=1e-4)
    assert built.load_probs("tiny", "lstm-cnn", "train") is None  # in-sample: not stored
    row = built.models("tiny").set_index("model").loc["lstm-cnn"]
    assert row["val_accuracy"] > 0.6 and row["test_accuracy"] > 0.6, (row["val_accuracy"], row["test_accuracy"])
    hist = row["params"]["epoch_val_accuracy"]
    assert row["val_accuracy"] == pytest.approx(max(hist))  # the best epoch's weights


def test_round_trip_without_pickle_and_same_seed(built, tmp_path, tiny_manifest):
    """Check the safetensors + JSON checkpoint reproduces the stored probabilities, and a rebuild matches."""
    val = built.pins("tiny", "val").head(8)
    out = load_predictor(built, "tiny", "lstm-cnn").predict_proba(texts=val["description"].tolist())
    np.testing.assert_allclose(out, built.load_probs("tiny", "lstm-cnn", "val")[: len(val)], atol=1e-5)
    files = sorted(p.name for p in next(built.root.rglob("lstm-cnn.safetensors")).parent.iterdir())
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib", ".pt"))], files
    again = _store(tmp_path / "store", tiny_manifest)
    for split in ("val", "test"):
        np.testing.assert_array_equal(again.load_probs("tiny", "lstm-cnn", split),
                                      built.load_probs("tiny", "lstm-cnn", split))
