"""The thesis's classifier: logistic regression with C chosen by stratified k-fold CV (3.4.1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

THESIS_C_GRID = (0.1, 0.01, 0.001, 0.0001)


def split_features(features_path: Path, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each split's rows of a saved feature array, read memory-mapped.

    The ``.npy`` file (shape (n_pins, d), global ``row`` order) is opened with
    ``mmap_mode="r"``: only the pages of the rows asked for are read, so training one
    classifier never holds the whole file (a million pins x 1,280 floats is 5 GB).

    Args:
        features_path: The model's feature file (:meth:`~pinterest_mm.store.Store.features_path`).
        rows: Split name to the global rows of its pins, in ``split_row`` order, shape (n_split,).

    Returns:
        Split name to a float32 array of shape (n_split, d), in the order of ``rows``.
    """
    X = np.load(features_path, mmap_mode="r")
    return {s: np.asarray(X[np.asarray(idx, dtype=np.int64)], dtype=np.float32) for s, idx in rows.items()}


def parse_c_grid(text: str) -> tuple[float, ...]:
    """``"1,0.1,0.01"`` -> (1.0, 0.1, 0.01); ValueError with a one-line message when it is not
    a comma-separated list of positive numbers without repeats."""
    parts = [t.strip() for t in str(text).split(",") if t.strip()]
    try:
        grid = tuple(float(t) for t in parts)
    except ValueError:
        grid = ()
    if not grid or any(not np.isfinite(c) or c <= 0 for c in grid) or len(set(grid)) != len(grid):
        raise ValueError(f"--c-grid takes comma-separated positive numbers without repeats, such as "
                         f"'1,0.1,0.01' (the thesis grid is {','.join(f'{c:g}' for c in THESIS_C_GRID)}); "
                         f"got {str(text)[:80]!r}.")
    return grid


def c_edge_warning(C: float, c_grid) -> str | None:
    """A note when the chosen C is the largest or smallest of a grid of 2+ values, else None.

    At an edge the best C may lie outside the grid; the note names ``--c-grid``.
    """
    grid = sorted({float(c) for c in c_grid})
    if len(grid) < 2 or float(C) not in (grid[0], grid[-1]):
        return None
    side = "weakest regularization (largest C)" if float(C) == grid[-1] else "strongest regularization (smallest C)"
    wider = grid[-1] * 10 if float(C) == grid[-1] else grid[0] / 10
    return (f"C = {float(C):g} is the {side} of the grid {', '.join(f'{c:g}' for c in grid)}: the best C may "
            f"lie outside it; rebuild with a wider grid, e.g. --c-grid including {wider:g}.")


@dataclass(frozen=True)
class LogRegConfig:
    """Settings of the CV-optimized logistic regression.

    Attributes:
        c_grid: Inverse regularization strengths tried (thesis: 0.1 ... 0.0001).
        folds: Stratified CV folds on the train split (thesis: 5).
        max_iter: Solver iterations (thesis: 10,000).
        standardize: Scale features to zero mean, unit variance first (features of
            different backbones have very different scales; the thesis's C grid is strong
            regularization for unscaled features).
        seed: Seed of the fold assignment.
    """

    c_grid: tuple[float, ...] = THESIS_C_GRID
    folds: int = 5
    max_iter: int = 10_000
    standardize: bool = True
    seed: int = 0


@dataclass
class LogRegResult:
    """A fitted, CV-selected logistic regression.

    Attributes:
        C: The chosen inverse regularization strength.
        cv_scores: Mean CV accuracy for every C tried.
        estimator: The pipeline refitted on the whole train split.
        oof_probs: Out-of-fold probabilities of the train pins under the chosen C,
            shape (n_train, n_classes).
    """

    C: float
    cv_scores: dict[float, float]
    estimator: Pipeline
    oof_probs: np.ndarray
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def cv_score(self) -> float:
        """Mean CV accuracy of the chosen C."""
        return self.cv_scores[self.C]

    def predict_proba(self, X: np.ndarray, n_classes: int) -> np.ndarray:
        """Return probabilities over all ``n_classes`` labels, shape (n, n_classes).

        Columns of labels the train split lacked are zero.
        """
        proba = self.estimator.predict_proba(X)
        out = np.zeros((X.shape[0], n_classes), dtype=np.float32)
        out[:, self.estimator.classes_] = proba
        return out


def _pipeline(C: float, cfg: LogRegConfig) -> Pipeline:
    steps = [StandardScaler()] if cfg.standardize else []
    steps.append(LogisticRegression(C=C, max_iter=cfg.max_iter, random_state=cfg.seed))
    return make_pipeline(*steps)


def cv_over_c(
    X, y: np.ndarray, n_classes: int, c_grid: tuple[float, ...], pipeline: Callable[[float], Pipeline],
    folds: int = 5, seed: int = 0, blas_threads: int = 1, progress: str | None = None,
) -> tuple[float, dict[float, float], Pipeline, np.ndarray]:
    """Choose C by stratified k-fold CV accuracy, keep out-of-fold probabilities, refit.

    The one CV loop of the thesis's classifier (3.4.1) and of the TF-IDF baseline.

    Args:
        X: Train inputs indexable by row arrays: features (n_train, d) or texts (n_train,)
            as an object array.
        y: Train labels, shape (n_train,), ints in [0, n_classes).
        n_classes: Number of classes C of the dataset.
        c_grid: Inverse regularization strengths tried.
        pipeline: Makes an unfitted pipeline for one C.
        folds: Stratified folds (fewer when a class has fewer train pins; at least 2).
        seed: Seed of the fold assignment.
        blas_threads: BLAS threads while fitting. One by default: measured on 2 cores
            (`make bench` machine, quiet), 5-fold CV over the thesis grid on 1280-d features
            took 0.53 s with one thread vs 3.49 s with two (520 pins, 12 classes) and 3.9 s vs
            8.2 s (4,000 pins, 29 classes); one thread also gives the same sums on any machine.
        progress: A label (such as the model's name) to show a progress bar on stderr over
            the fits (len(c_grid) x folds, then the refit); None: silent.

    Returns:
        (chosen C, mean CV accuracy per C, the pipeline refitted on all of X, out-of-fold
        probabilities (n_train, n_classes) under the chosen C). Ties in CV accuracy go to
        the smaller C (stronger regularization).
    """
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        return _cv_over_c(X, np.asarray(y), n_classes, c_grid, pipeline, folds, seed, progress)


def _cv_over_c(X, y, n_classes, c_grid, pipeline, folds, seed, progress):
    from tqdm.auto import tqdm

    counts = np.bincount(y) if len(y) else np.zeros(0, int)
    min_count = int(counts[counts > 0].min()) if (counts > 0).any() else 0  # classes present in train
    n_folds = max(2, min(folds, min_count)) if min_count >= 2 else 2
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    split_idx = list(skf.split(np.zeros(len(y)), y))
    cv_scores: dict[float, float] = {}
    oof_by_c: dict[float, np.ndarray] = {}
    bar = tqdm(total=len(c_grid) * n_folds + 1, desc=f"{progress}: C by {n_folds}-fold CV", unit="fit",
               disable=progress is None)
    for C in c_grid:
        oof = np.zeros((len(y), n_classes), dtype=np.float32)
        bar.set_postfix(C=f"{C:g}")
        for train_idx, test_idx in split_idx:
            est = pipeline(C).fit(X[train_idx], y[train_idx])
            oof[np.ix_(test_idx, est.classes_)] = est.predict_proba(X[test_idx])
            bar.update(1)
        cv_scores[float(C)] = float((oof.argmax(1) == y).mean())
        oof_by_c[float(C)] = oof
    best_C = max(cv_scores, key=lambda c: (cv_scores[c], -c))
    bar.set_postfix(C=f"{best_C:g}", refit="all train")
    refit = pipeline(best_C).fit(X, y)
    bar.update(1)
    bar.close()
    return best_C, cv_scores, refit, oof_by_c[best_C]


def fit_logreg_cv(
    X: np.ndarray, y: np.ndarray, n_classes: int, cfg: LogRegConfig = LogRegConfig(),
    progress: str | None = None,
) -> LogRegResult:
    """Choose C by stratified k-fold CV accuracy, keep out-of-fold probabilities, refit
    (:func:`cv_over_c` over standardized features).

    Args:
        X: Train features, shape (n_train, d).
        y: Train labels, shape (n_train,), ints in [0, n_classes).
        n_classes: Number of classes C of the dataset.
        cfg: Grid, folds, iterations and seed.
        progress: Label of a progress bar over the fits (None: silent).

    Returns:
        The :class:`LogRegResult`; ties in CV accuracy go to the stronger regularization.
    """
    best_C, cv_scores, estimator, oof = cv_over_c(
        np.asarray(X, dtype=np.float32), y, n_classes, cfg.c_grid, lambda C: _pipeline(C, cfg), cfg.folds, cfg.seed,
        progress=progress)
    return LogRegResult(C=best_C, cv_scores=cv_scores, estimator=estimator, oof_probs=oof,
                        classes=estimator.classes_)
