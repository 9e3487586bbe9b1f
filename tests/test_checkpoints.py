"""Checkpoints without pickles, and weights that are part of the fingerprint."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from pinterest_mm.build import build, model_fingerprints
from pinterest_mm.models import get_model, load_predictor
from pinterest_mm.models.checkpoints import (
    CheckpointError, load_estimator, load_word_vectors, save_estimator, save_word_vectors,
)
from pinterest_mm.models.classify import LogRegConfig
from pinterest_mm.models.registry import weights_identity

SENTS = [["red", "apple", "fruit"], ["green", "apple", "tree"], ["blue", "sky", "cloud"]] * 10


def _is_pickle(data: bytes) -> bool:
    # pickle protocols 2-5 start with PROTO (0x80) and the protocol number; joblib files too
    return len(data) > 1 and data[0] == 0x80 and data[1] in (2, 3, 4, 5)


def test_fasttext_round_trip_keeps_subword_vectors_for_unseen_words(tmp_path):
    """Check FastText saved as .npy + JSON gives the same vectors, unseen words included."""
    model = get_model("fasttext-train").create()
    model.vectors = model.fit_vectors(SENTS)
    model.save_state(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fasttext.json", "ngrams.npy", "vectors.npy", "words.json"]
    again = get_model("fasttext-train").create()
    again.load_state(tmp_path)
    for word in ["apple", "apples", "skyline", "fruity"]:  # seen, then never seen in training
        want = model.vectors.vector(word)
        assert want is not None and np.abs(want).sum() > 0
        np.testing.assert_array_equal(again.vectors.vector(word), want)
    assert "apples" not in again.vectors.index  # the subword path was used


def test_word2vec_round_trip_and_an_incomplete_save_is_refused(tmp_path):
    """Check Word2Vec vectors reload exactly, and a folder without words.json is 'missing'."""
    model = get_model("word2vec-train").create()
    model.vectors = model.fit_vectors(SENTS)
    model.save_state(tmp_path)
    matrix, words, sub = load_word_vectors(tmp_path)
    assert sub is None and words == sorted(model.vectors.index, key=model.vectors.index.get)
    np.testing.assert_array_equal(matrix, model.vectors.matrix)
    (tmp_path / "words.json").unlink()  # a kill before the last file: not a complete save
    with pytest.raises(CheckpointError, match="missing"):
        load_word_vectors(tmp_path)


def test_word_vector_files_must_agree(tmp_path):
    save_word_vectors(np.ones((3, 4), np.float32), ["a", "b"], tmp_path)
    with pytest.raises(CheckpointError, match="2 words for a"):
        load_word_vectors(tmp_path)


def _not_sklearn(x):
    return x


def test_estimator_naming_a_foreign_function_is_refused(tmp_path):
    """Check a .skops file that names a function outside scikit-learn/NumPy is not loaded."""
    X, y = np.random.default_rng(0).normal(size=(30, 3)), np.arange(30) % 3
    evil = make_pipeline(FunctionTransformer(_not_sklearn), LogisticRegression()).fit(X, y)
    path = tmp_path / "ds" / "m" / "logreg.skops"
    path.parent.mkdir(parents=True)
    sio.dump(evil, path)
    with pytest.raises(CheckpointError, match="Refusing to load.*_not_sklearn.*pinterest-mm build ds --models m"):
        load_estimator(path)
    good = make_pipeline(LogisticRegression()).fit(X, y)
    save_estimator(good, path)
    np.testing.assert_array_equal(load_estimator(path).predict_proba(X), good.predict_proba(X))
    assert not list(path.parent.glob("*.tmp*"))


def test_legacy_pickle_checkpoint_is_not_loaded(tmp_path):
    """Check an older store's logreg.joblib / vectors.kv is never unpickled: a rebuild hint."""
    folder = tmp_path / "checkpoints" / "demo" / "glove-6b-50"
    folder.mkdir(parents=True)
    marker = tmp_path / "ran"

    class Boom:
        def __reduce__(self):
            return (marker.write_text, ("code ran",))

    (folder / "logreg.joblib").write_bytes(pickle.dumps(Boom()))
    (folder / "vectors.kv").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError, match="older pinterest-mm.*pinterest-mm build demo --models glove-6b-50"):
        load_estimator(folder / "logreg.skops")
    with pytest.raises(CheckpointError, match="vectors.kv is a pickle"):
        load_word_vectors(folder)
    assert not marker.exists()
    # a rebuild replaces them
    save_estimator(make_pipeline(LogisticRegression()).fit(np.eye(3), [0, 1, 2]), folder / "logreg.skops")
    save_word_vectors(np.eye(2, dtype=np.float32), ["a", "b"], folder)
    assert sorted(p.name for p in folder.iterdir()) == ["logreg.skops", "vectors.npy", "words.json"]
    assert not marker.exists()


def test_a_build_writes_no_pickles_and_predicts_from_its_checkpoints(tiny_store):
    """Check every checkpoint file of the text models is pickle-free and the predictors load."""
    models = ["word2vec-train", "fasttext-train", "tfidf-lr"]
    results = build(tiny_store, "tiny", models, progress=False)
    assert [r["status"] for r in results] == ["built"] * 3
    files = [p for m in models for p in tiny_store.checkpoints_dir("tiny", m).iterdir()]
    assert {p.suffix for p in files} >= {".skops", ".npy", ".json"}
    assert not [p.name for p in files if _is_pickle(p.read_bytes()[:2])]
    for m in models:
        p = load_predictor(tiny_store, "tiny", m).predict_proba(texts=["red tulips in a garden"])
        assert p.shape == (1, 6) and abs(float(p.sum()) - 1.0) < 1e-4


def test_other_weights_change_the_fingerprint_not_their_path(tmp_path, monkeypatch):
    """Check PINTEREST_MM_WEIGHTS_<NAME> enters the fingerprints by content, not by path."""
    spec = get_model("effnet-lite0")
    a, b, a_copy = tmp_path / "a.pth", tmp_path / "b.pth", tmp_path / "elsewhere" / "a.pth"
    a.write_bytes(b"\x01" * 5000)
    b.write_bytes(b"\x01" * 4999 + b"\x02")
    a_copy.parent.mkdir()
    a_copy.write_bytes(a.read_bytes())

    def fps(path=None):
        if path is None:
            monkeypatch.delenv("PINTEREST_MM_WEIGHTS_EFFNET_LITE0", raising=False)
        else:
            monkeypatch.setenv("PINTEREST_MM_WEIGHTS_EFFNET_LITE0", str(path))
        return model_fingerprints(spec, spec.create(), "dataset-fp", LogRegConfig())

    default, with_a, with_b, with_copy = fps(), fps(a), fps(b), fps(a_copy)
    assert len({default[0], with_a[0], with_b[0]}) == 3  # feature fingerprints
    assert len({default[1], with_a[1], with_b[1]}) == 3  # model fingerprints
    assert with_copy == with_a
    assert weights_identity(tmp_path / "nothing") == "missing"
    assert weights_identity(tmp_path / "elsewhere") != weights_identity(tmp_path)  # folders: every file
