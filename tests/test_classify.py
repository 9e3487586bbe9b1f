"""The one CV-over-C loop behind the thesis's classifier and the TF-IDF baseline."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from pinterest_mm.models.classify import LogRegConfig, cv_over_c, fit_logreg_cv
from pinterest_mm.models.tfidf import TfidfConfig, fit_tfidf_cv


def _blobs(n=60, C=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % C
    X = rng.normal(size=(n, 5)).astype(np.float32)
    X[np.arange(n), y] += 2.0
    return X, y


def test_out_of_fold_probabilities_never_see_their_own_pin():
    """A 1-nearest-neighbour 'classifier' is perfect in-sample; its OOF probabilities are not,
    and each pin's OOF vote comes from the model of the fold that left it out."""
    X, y = _blobs()
    C, scores, est, oof = cv_over_c(X, y, 4, (1.0,), lambda c: make_pipeline(KNeighborsClassifier(1)), 5, 0)
    assert (est.predict(X) == y).all() and scores[1.0] < 1.0
    assert oof.shape == (60, 4) and (oof[:, 3] == 0).all()  # class 3 absent from train: zero column
    skf = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    train_idx, test_idx = skf[0]
    ref = KNeighborsClassifier(1).fit(X[train_idx], y[train_idx]).predict_proba(X[test_idx])
    np.testing.assert_array_equal(oof[test_idx, :3], ref)


def test_ties_go_to_the_smaller_c_and_small_classes_get_fewer_folds():
    X, y = _blobs(n=20, C=2)
    y[:3] = 2  # a class with 3 train pins: 3 folds, not 5
    res = fit_logreg_cv(X, y, 3, LogRegConfig(c_grid=(10.0, 1.0, 0.5), folds=5))
    best = max(res.cv_scores.values())
    assert res.C == min(c for c, s in res.cv_scores.items() if s == best)
    assert res.oof_probs.shape == (20, 3) and np.allclose(res.oof_probs.sum(1), 1.0, atol=1e-5)


def test_tfidf_uses_the_same_loop():
    texts = [f"{w} idea {i}" for i, w in enumerate(["cake pizza", "tulip soil", "goal team"] * 8)]
    y = np.arange(24) % 3
    C, scores, pipe, oof = fit_tfidf_cv(texts, y, 3, TfidfConfig(c_grid=(1.0, 10.0), folds=4))
    assert C == 1.0 and scores == {1.0: 1.0, 10.0: 1.0}  # a tie: the smaller C
    assert pipe.predict(["cake pizza tonight"])[0] == 0 and oof.shape == (24, 3)


def test_c_grid_parsing_and_edge_warning():
    from pinterest_mm.models.classify import THESIS_C_GRID, c_edge_warning, parse_c_grid

    assert parse_c_grid("1, 0.1,0.01") == (1.0, 0.1, 0.01)
    for bad in ("", "a,b", "1,-1", "0", "1,1", "nan"):
        try:
            parse_c_grid(bad)
        except ValueError as exc:
            assert "--c-grid takes comma-separated positive numbers" in str(exc) and "0.1,0.01" in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")
    assert "largest C" in c_edge_warning(0.1, THESIS_C_GRID) and "1" in c_edge_warning(0.1, THESIS_C_GRID)
    assert "smallest C" in c_edge_warning(0.0001, THESIS_C_GRID)
    assert c_edge_warning(0.01, THESIS_C_GRID) is None and c_edge_warning(0.001, THESIS_C_GRID) is None
    assert c_edge_warning(1.0, (1.0,)) is None  # a one-value grid has no edge to speak of


def test_cv_uses_the_configured_folds():
    """5-fold CV when every class has at least 5 train pins (the thesis's 3.4.1); fewer only
    when the smallest present class is smaller; a label absent from train does not count."""
    sizes = []

    def pipeline(C):
        class Recording(KNeighborsClassifier):
            def fit(self, X, y):
                sizes.append(len(y))
                return super().fit(X, y)

        return make_pipeline(Recording(n_neighbors=1))

    X, y = _blobs(60, 3)
    cv_over_c(X, y, 4, (1.0,), pipeline, folds=5)  # n_classes 4: label 3 never occurs in train
    assert sizes[:5] == [48] * 5 and len(sizes) == 6  # 5 folds of 48 train rows, then the refit
    sizes.clear()
    y_small = y.copy()
    y_small[np.flatnonzero(y == 2)[3:]] = 0  # class 2 keeps 3 pins -> 3 folds
    cv_over_c(X, y_small, 3, (1.0,), pipeline, folds=5)
    assert len(sizes) == 4


def test_cv_fits_with_one_blas_thread():
    """The CV fits run with one BLAS thread (measured faster on 2 cores; same sums everywhere)."""
    from threadpoolctl import threadpool_info

    seen = []

    def pipeline(C):
        class Recording(KNeighborsClassifier):
            def fit(self, X, y):
                seen.append({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})
                return super().fit(X, y)

        return make_pipeline(Recording(n_neighbors=1))

    X, y = _blobs(60, 3)
    cv_over_c(X, y, 3, (1.0,), pipeline)
    assert seen and all(s == {1} for s in seen), seen
