"""TF-IDF of the cleaned words + a linear model: text baselines beyond the thesis.

The companion paper 004 uses TF-IDF + a linear model as its text baseline: ``tfidf-lr``
(logistic regression) and ``tfidf-svm`` (a linear SVM whose margins are turned into
probabilities by ``CalibratedClassifierCV``, sigmoid calibration on inner folds). The vectorizer
sits inside the pipeline, so every cross-validation fold fits its own vocabulary and IDF on
its own train part: the out-of-fold train probabilities are honest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import LinearSVC

from .base import BuildContext
from .checkpoints import FORMAT as CHECKPOINT_FORMAT
from .checkpoints import SKLEARN_PRIVATE_TYPES, load_estimator, save_estimator
from .classify import cv_over_c


@dataclass(frozen=True)
class TfidfConfig:
    """Settings of the TF-IDF classifier.

    Attributes:
        c_grid: Inverse regularization strengths tried by CV (TF-IDF rows are unit-norm and
            sparse, so weaker regularization than the thesis grid suits them).
        folds: Stratified CV folds on the train split.
        ngram_max: Longest word n-gram.
        min_df: Ignore terms in fewer documents.
        sublinear_tf: Use 1 + log(tf).
        max_iter: Solver iterations.
        seed: Seed of the folds and the solver.
    """

    c_grid: tuple[float, ...] = (1.0, 10.0, 100.0)
    folds: int = 5
    ngram_max: int = 2
    min_df: int = 1
    sublinear_tf: bool = True
    max_iter: int = 10_000
    seed: int = 0


@dataclass(frozen=True)
class TfidfSvmConfig(TfidfConfig):
    """Settings of the TF-IDF + calibrated linear SVM (``tfidf-svm``).

    Attributes:
        c_grid: SVM C values tried by CV (hinge loss on unit-norm rows).
        calibration_folds: Inner stratified folds of ``CalibratedClassifierCV`` (fewer when
            a class has too few train pins; at least 2).
    """

    c_grid: tuple[float, ...] = (0.1, 1.0, 10.0)
    calibration_folds: int = 3


def _vectorizer(cfg: TfidfConfig) -> TfidfVectorizer:
    return TfidfVectorizer(ngram_range=(1, cfg.ngram_max), min_df=cfg.min_df,
                           sublinear_tf=cfg.sublinear_tf, token_pattern=r"\S+")


def _pipeline(C: float, cfg: TfidfConfig) -> Pipeline:
    return make_pipeline(_vectorizer(cfg), LogisticRegression(C=C, max_iter=cfg.max_iter, random_state=cfg.seed))


def _svm_pipeline(C: float, cfg: TfidfSvmConfig, cal_folds: int) -> Pipeline:
    svm = LinearSVC(C=C, max_iter=cfg.max_iter, random_state=cfg.seed)
    return make_pipeline(_vectorizer(cfg), CalibratedClassifierCV(svm, method="sigmoid", cv=cal_folds))


def calibration_folds(y: np.ndarray, cfg: TfidfSvmConfig) -> int:
    """Inner calibration folds that every class of every outer CV train part can fill.

    An outer CV with k >= 2 folds leaves at least ``m // 2`` pins of the smallest class
    (m pins) in each train part, so at most that many inner folds (and at least 2).
    """
    counts = np.bincount(np.asarray(y, dtype=np.int64))
    m = int(counts[counts > 0].min()) if counts.any() else 0
    return max(2, min(cfg.calibration_folds, m // 2))


def _proba(est: Pipeline, texts: list[str], n_classes: int) -> np.ndarray:
    out = np.zeros((len(texts), n_classes), dtype=np.float32)
    out[:, est.classes_] = est.predict_proba(texts)
    return out


def fit_tfidf_cv(texts: list[str], y: np.ndarray, n_classes: int, cfg: TfidfConfig = TfidfConfig(),
                 progress: str | None = None):
    """Choose C by stratified CV accuracy (:func:`~.classify.cv_over_c`); return
    (C, cv_scores, refitted pipeline, OOF probs (n_train, n_classes)).

    A :class:`TfidfSvmConfig` fits the calibrated SVM, any other config the logistic regression.
    """
    if isinstance(cfg, TfidfSvmConfig):
        cal = calibration_folds(y, cfg)
        make = lambda C: _svm_pipeline(C, cfg, cal)  # noqa: E731
    else:
        make = lambda C: _pipeline(C, cfg)  # noqa: E731
    return cv_over_c(np.asarray(texts, dtype=object), y, n_classes, cfg.c_grid, make, cfg.folds, cfg.seed,
                     progress=progress)


class TfidfClassifier:
    """The ``tfidf-lr`` registry entry (kind ``classifier``); ``linear="svm"`` makes ``tfidf-svm``."""

    def __init__(self, spec, linear: str = "lr", **options) -> None:
        self.spec = spec
        self.linear = linear
        cls = TfidfSvmConfig if linear == "svm" else TfidfConfig
        self.cfg = cls(**{k: v for k, v in options.items() if k in cls.__dataclass_fields__})
        self.pipeline: Pipeline | None = None
        self.checkpoint = "tfidf-svm.skops" if linear == "svm" else "tfidf.skops"

    def config(self) -> dict:
        """Settings that decide the outputs (part of the fingerprint)."""
        extra = {"linear": "svm-calibrated-sigmoid"} if self.linear == "svm" else {}
        return {"text": "text_words", **asdict(self.cfg), **extra, "checkpoint": CHECKPOINT_FORMAT}

    def fit(self, ctx: BuildContext) -> dict:
        """CV on train, refit, predict val/test; return probs, params and the CV score."""
        y = ctx.labels["train"]
        C, scores, pipe, oof = fit_tfidf_cv(ctx.split_texts("train", "text_words"), y, ctx.n_classes, self.cfg,
                                          progress=self.spec.name if ctx.progress else None)
        self.pipeline = pipe
        save_estimator(pipe, ctx.checkpoints / self.checkpoint)  # atomic: a kill leaves no half file
        probs = {"train": oof}
        for split in ("val", "test"):
            probs[split] = _proba(pipe, ctx.split_texts(split, "text_words"), ctx.n_classes)
        n_unknown = int(sum(1 for t in ctx.pins["text_words"] if not str(t or "").strip()))
        params = {"C": C, "cv_scores": {str(k): v for k, v in scores.items()},
                  "vocab_size": len(pipe[0].vocabulary_), "n_unknown_text": n_unknown}
        return {"probs": probs, "params": params, "cv_score": scores[C]}

    def predictor(self, folder: Path, n_classes: int):
        """Return a predictor loaded from ``folder`` (skops: scikit-learn types only)."""
        from ..data.clean import clean_words

        pipe = load_estimator(folder / self.checkpoint, trusted=SKLEARN_PRIVATE_TYPES)
        name = self.spec.name

        class _Predictor:
            def predict_proba(self, images=None, texts=None) -> np.ndarray:
                if texts is None:
                    raise ValueError(f"{name} is a text model: pass texts=")
                return _proba(pipe, [" ".join(clean_words(t)) for t in texts], n_classes)

        return _Predictor()
