"""Learned fusion with scikit-learn: stacking and feature cross (Takahashi 2018). Every
choice (C) uses train + validation only. The torch-trained fusions are in :mod:`.nets`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models.classify import THESIS_C_GRID, LogRegConfig, fit_logreg_cv
from ..outputs import SPLITS, Outputs
from .select import SelectConfig, select_models, usable_models
from .registry import FusionResult, finish, register


# ----------------------------------------------------------------------------- stacking
@dataclass(frozen=True)
class StackingConfig(SelectConfig):
    """Multinomial LR over the concatenated probability vectors of the selected models.

    Trained on the out-of-fold ``train`` probabilities, C by k-fold CV on train. When a
    selected model has no ``train`` probabilities (e.g. transformers), falls back to
    cross-fitting on validation: C is chosen by k-fold CV over the validation pins, the
    validation predictions are the out-of-fold ones, and the LR refit on all validation pins
    predicts test (``chosen["trained_on"]`` says which).

    Attributes:
        c_grid: Inverse regularization strengths tried.
        folds: CV folds.
        log_probs: Use log(p + 1e-6) instead of p as inputs.
        seed: Fold seed.
    """

    c_grid: tuple[float, ...] = (1.0, 0.1, 0.01, 0.001)
    folds: int = 5
    log_probs: bool = False
    seed: int = 0


@register("stacking", StackingConfig, "LR on concatenated probability vectors (OOF train)", "learned")
def fit_stacking(outputs: Outputs, cfg: StackingConfig) -> FusionResult:
    """Stacking."""
    models = select_models(outputs, cfg)
    C = outputs.n_classes

    def X(split):
        x = np.concatenate([outputs.probs[m][split] for m in models], axis=1).astype(np.float32)
        return np.log(x + 1e-6) if cfg.log_probs else x

    lr_cfg = LogRegConfig(c_grid=cfg.c_grid, folds=cfg.folds, max_iter=2000, seed=cfg.seed)
    if all("train" in outputs.probs[m] for m in models):
        res = fit_logreg_cv(X("train"), outputs.y["train"], C, lr_cfg)
        pv, trained_on = res.predict_proba(X("val"), C), "train_oof"
    else:
        res = fit_logreg_cv(X("val"), outputs.y["val"], C, lr_cfg)
        pv, trained_on = res.oof_probs, "val_crossfit"
    pt = res.predict_proba(X("test"), C)
    grid = [{"setting": {"C": c}, "cv_accuracy": s} for c, s in res.cv_scores.items()]
    chosen = {"models": models, "C": res.C, "trained_on": trained_on}
    return finish(outputs, "stacking", cfg, chosen, pv, pt, grid=grid)


# ----------------------------------------------------------------------------- feature cross
def cross_pool(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row- and column-wise max pooling of G = outer(a, b), per pin, without building G.

    max_j a_i b_j = max(a_i max(b), a_i min(b)) (the max of a linear function of b_j is at
    an extreme of b), and likewise for columns, so the pooled vectors are exact in
    O(d1 + d2) per pin.

    Args:
        a: Image features, shape (n, d1).
        b: Text features, shape (n, d2).

    Returns:
        [row max (n, d1) | column max (n, d2)], shape (n, d1 + d2), float32.
    """
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    bmax, bmin = b.max(1, keepdims=True), b.min(1, keepdims=True)
    amax, amin = a.max(1, keepdims=True), a.min(1, keepdims=True)
    rows = np.maximum(a * bmax, a * bmin)
    cols = np.maximum(b * amax, b * amin)
    return np.concatenate([rows, cols], axis=1)


def cross_pool_explicit(a: np.ndarray, b: np.ndarray, batch: int = 64) -> np.ndarray:
    """Reference :func:`cross_pool` that builds G = outer(a, b) in batches of pins.

    Memory is batch x d1 x d2 floats at a time (never n x d1 x d2).
    """
    out = np.empty((a.shape[0], a.shape[1] + b.shape[1]), np.float32)
    for s in range(0, a.shape[0], batch):
        G = a[s : s + batch, :, None].astype(np.float32) * b[s : s + batch, None, :]
        out[s : s + batch] = np.concatenate([G.max(2), G.max(1)], axis=1)
    return out


def best_feature_model(
    outputs: Outputs, family: str | None, modality: str | None = None, need_train: bool = False
) -> str:
    """The best model on validation that has cached features (and train probs if asked)."""
    if outputs.feature_loader is not None:
        for m in usable_models(outputs, family, modality):
            if need_train and "train" not in outputs.probs[m]:
                continue
            if outputs.feature_loader(m) is not None:
                return m
    what = family or modality
    raise ValueError(f"No {what} model with cached features and val/test probabilities.")


FEATURE_CROSS_PAIR_RULE = ("feature-cross pair: the best image model x the best word-embedding model "
                           "with cached features, each by validation accuracy (ties: name)")


def feature_cross_pair(outputs: Outputs) -> tuple[str, str]:
    """The (image, word-embedding) pair feature cross uses by default (``FEATURE_CROSS_PAIR_RULE``)."""
    return best_feature_model(outputs, "image"), best_feature_model(outputs, "word_embedding")


def model_features(outputs: Outputs, model: str) -> dict[str, np.ndarray]:
    feats = outputs.feature_loader(model) if outputs.feature_loader else None
    if feats is None:
        raise ValueError(f"Model {model!r} has no cached features (transformers and TF-IDF have none).")
    return feats


@dataclass(frozen=True)
class FeatureCrossConfig:
    """Takahashi et al. feature cross + the CV-optimized LR (thesis Table 4.7).

    Attributes:
        image_model: Image model with features; None = best on validation.
        text_model: Text model with features; None = best word-embedding model on validation.
        c_grid: LR C grid (thesis grid).
        folds: CV folds on train.
        max_iter: LR iterations.
        seed: Fold seed.
    """

    image_model: str | None = None
    text_model: str | None = None
    c_grid: tuple[float, ...] = THESIS_C_GRID
    folds: int = 5
    max_iter: int = 10_000
    seed: int = 0


@register("feature_cross", FeatureCrossConfig, "Outer product, row/column max pooling, LR", "learned")
def fit_feature_cross(outputs: Outputs, cfg: FeatureCrossConfig) -> FusionResult:
    """Feature cross fusion of one (image, text) pair."""
    img, txt = cfg.image_model, cfg.text_model
    if img is None or txt is None:
        best_img, best_txt = feature_cross_pair(outputs)
        img, txt = img or best_img, txt or best_txt
    fa, fb = model_features(outputs, img), model_features(outputs, txt)
    X = {s: cross_pool(fa[s], fb[s]) for s in SPLITS}
    lr = LogRegConfig(c_grid=cfg.c_grid, folds=cfg.folds, max_iter=cfg.max_iter, seed=cfg.seed)
    res = fit_logreg_cv(X["train"], outputs.y["train"], outputs.n_classes, lr)
    pv = res.predict_proba(X["val"], outputs.n_classes)
    pt = res.predict_proba(X["test"], outputs.n_classes)
    grid = [{"setting": {"C": c}, "cv_accuracy": s} for c, s in res.cv_scores.items()]
    chosen = {"image_model": img, "text_model": txt, "C": res.C, "dim": int(X["train"].shape[1])}
    return finish(outputs, "feature_cross", cfg, chosen, pv, pt, grid=grid)


def first_usable(names: list[str], what: str) -> str:
    if not names:
        raise ValueError(f"No {what} model with cached features and val/test probabilities.")
    return names[0]
