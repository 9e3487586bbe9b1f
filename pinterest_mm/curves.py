"""Curves as data for the pages and their downloads: top-k tables, training curves, one
model's confusion matrix. Pure functions over arrays and stored build parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import metrics


def topk_table(curves: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """Top-k accuracy curves as a table: a ``k`` column (1, 2, ...), then one column per curve.

    Args:
        curves: Name to accuracies at k = 1..K (each of length K).

    Returns:
        Frame of K rows and columns ``k``, *names*.
    """
    lengths = {len(v) for v in curves.values()}
    if len(lengths) > 1:
        raise ValueError(f"Top-k curves of different lengths {sorted(lengths)}: give each at k = 1..K.")
    K = lengths.pop() if lengths else 0
    return pd.DataFrame({"k": np.arange(1, K + 1), **{n: np.asarray(v, dtype=float) for n, v in curves.items()}})


@dataclass(frozen=True)
class TrainingCurve:
    """How a model's setting was chosen, as one or two curves over a shared x axis.

    Attributes:
        x: The x values: C for a logistic regression's grid, epochs 1..E for a fine-tune.
        x_title: The x axis title.
        series: Curve name to values (same length as ``x``); accuracies and, where recorded,
            the mean train loss of each epoch.
        chosen: The x that was kept (the chosen C, the best epoch).
        log_x: Whether x is better read on a log scale (C).
        note: One sentence on what the curve shows.
    """

    x: list[float]
    x_title: str
    series: dict[str, list[float]] = field(default_factory=dict)
    chosen: float | None = None
    log_x: bool = False
    note: str = ""


def training_curve(params: Mapping) -> TrainingCurve | None:
    """The training curve recorded in a built model's parameters, or None when none was.

    Logistic regressions (every feature model, TF-IDF, a frozen transformer) store the mean
    cross-validation accuracy of each C (``cv_scores``); fine-tuned models store the
    validation accuracy (``epoch_val_accuracy``) and, since this version, the mean train
    loss (``epoch_train_loss``) of each epoch.
    """
    val = list(params.get("epoch_val_accuracy") or [])
    if val:
        epochs = list(range(1, len(val) + 1))
        series = {"validation accuracy": [float(v) for v in val]}
        loss = list(params.get("epoch_train_loss") or [])
        if len(loss) == len(val):
            series["mean train loss"] = [float(v) for v in loss]
        return TrainingCurve(epochs, "epoch", series, chosen=params.get("best_epoch"),
                             note="Fine-tuning: each epoch's validation accuracy"
                                  + (" and mean train loss" if len(series) > 1 else "")
                                  + "; the best epoch on validation is kept.")
    scores = params.get("cv_scores") or {}
    if scores:
        grid = sorted((float(c), float(s)) for c, s in scores.items())
        C = params.get("C")
        return TrainingCurve([c for c, _ in grid], "C (inverse regularization strength)",
                             {"mean CV accuracy": [s for _, s in grid]},
                             chosen=None if C is None else float(C), log_x=True,
                             note="Logistic regression: mean cross-validation accuracy on the train "
                                  "split for each C of the grid; the best C is kept.")
    return None


def model_confusion(probs: np.ndarray, y: np.ndarray, n_classes: int, normalize: str | None = "true") -> np.ndarray:
    """One model's confusion matrix (C, C), rows true class, from probabilities (n, C)."""
    return metrics.confusion(y, np.asarray(probs).argmax(1), n_classes, normalize)
