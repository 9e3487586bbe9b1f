"""Evaluating and comparing fused models: what the Compare page, ``Lab`` and the CLI show.

Pure functions over :class:`~pinterest_mm.outputs.Outputs` and fitted
:class:`~pinterest_mm.fusion.FusionResult` objects (fitting and caching stay with the caller):
one model's or fusion's evaluation on a split, every method against the best single model
(McNemar, paired bootstrap), pairwise agreement of the single models, and calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import metrics
from .outputs import Outputs


@dataclass
class Evaluation:
    """One model's or fusion's scores on a split (what the app's charts draw).

    Attributes:
        split: ``val`` or ``test``.
        accuracy: Top-1 accuracy.
        topk: Top-k accuracy for k = 1..10, shape (10,).
        confusion: Counts, shape (C, C), rows = true class.
        per_class: Precision, recall, F1 and support per class.
        log_loss: Multiclass log-loss.
        calibration: Reliability bins and ECE.
    """

    split: str
    accuracy: float
    topk: np.ndarray
    confusion: np.ndarray
    per_class: metrics.PerClass
    log_loss: float
    calibration: metrics.Calibration


def split_probs(result, split: str) -> np.ndarray:
    """A fusion result's probabilities (n_split, C) on ``val`` or ``test``."""
    if split not in ("val", "test"):
        raise ValueError(f"A fusion is scored on 'val' or 'test', not {split!r}.")
    return result.val_probs if split == "val" else result.test_probs


def evaluate(probs: np.ndarray, y: np.ndarray, n_classes: int, split: str = "test") -> Evaluation:
    """Score probabilities (n, C) against labels (n,) with every reference metric."""
    pred = np.asarray(probs).argmax(1)
    return Evaluation(
        split=split,
        accuracy=metrics.accuracy(probs, y),
        topk=metrics.topk_curve(probs, y),
        confusion=metrics.confusion(y, pred, n_classes),
        per_class=metrics.per_class(y, pred, n_classes),
        log_loss=metrics.log_loss(probs, y) if len(y) else float("nan"),
        calibration=metrics.calibration(probs, y, n_bins=10),
    )


def best_single(outputs: Outputs) -> str | None:
    """The built model with the best validation accuracy (ties: name), or None."""
    from .fusion.late import usable_models

    names = usable_models(outputs)
    return names[0] if names else None


def short_setting(chosen: dict) -> str:
    """A one-line summary of the settings a method chose on validation."""
    parts = []
    for k, v in chosen.items():
        if isinstance(v, float):
            parts.append(f"{k}={v:g}")
        elif isinstance(v, (str, int)):
            parts.append(f"{k}={v}")
        elif isinstance(v, list) and k == "models":
            parts.append(f"{len(v)} models")
    return ", ".join(parts)


def compare_methods(outputs: Outputs, results: dict, split: str, n_boot: int = 1000) -> dict:
    """Every fitted method vs the best single model on ``split``.

    Args:
        outputs: The probability cache.
        results: Method name to its :class:`~pinterest_mm.fusion.FusionResult`.
        split: ``val`` or ``test``.
        n_boot: Paired bootstrap resamples.

    Returns:
        ``table`` (records: method, chosen, val/test accuracy, top-2 on split, delta, McNemar p,
        bootstrap CI), ``topk`` (method -> curve on split), ``configs`` (method -> config +
        chosen) and ``best`` (the best single model's name).
    """
    y = outputs.y[split]
    best = best_single(outputs)
    if best is None:
        raise ValueError("No model has validation and test probabilities: build models first.")
    pb = outputs.probs[best][split]
    pred_b = pb.argmax(1)
    acc_b = metrics.accuracy(pb, y)
    rows, topk, configs = [], {}, {}
    for m, r in results.items():
        p = split_probs(r, split)
        pred = p.argmax(1)
        mc = metrics.mcnemar(pred, pred_b, y)
        bs = metrics.paired_bootstrap(pred, pred_b, y, n_boot=n_boot)
        curve = metrics.topk_curve(p, y)
        rows.append({
            "method": m, "chosen on validation": short_setting(r.chosen),
            "val accuracy": r.val_accuracy, "test accuracy": r.test_accuracy,
            f"{split} top-2": float(curve[1]),
            f"Δ vs {best}": metrics.accuracy(p, y) - acc_b,
            "McNemar p": mc.p_value, "CI low": bs.low, "CI high": bs.high,
        })
        topk[m] = curve.tolist()
        configs[m] = {"config": r.config, "chosen": r.chosen}
    return {"table": rows, "topk": topk, "configs": configs, "best": best}


def agreement_matrix(outputs: Outputs, split: str, models: list[str]) -> dict:
    """Pairwise shares over the models (M,): ``both_wrong`` and ``same`` (M, M) matrices."""
    y = outputs.y[split]
    preds = {m: outputs.probs[m][split].argmax(1) for m in models}
    M = len(models)
    both_wrong, same = np.zeros((M, M)), np.zeros((M, M))
    for i, a in enumerate(models):
        for j, b in enumerate(models):
            both_wrong[i, j] = metrics.agreement(preds[a], preds[b], y).rates()["both_wrong"]
            same[i, j] = float((preds[a] == preds[b]).mean()) if len(y) else 0.0
    return {"both_wrong": both_wrong, "same": same}


def calibrations(outputs: Outputs, split: str, results: dict) -> dict:
    """Reliability data of the best single model and each fitted method (name -> Calibration)."""
    y = outputs.y[split]
    best = best_single(outputs)
    res = {f"best single ({best})": metrics.calibration(outputs.probs[best][split], y, n_bins=10)}
    for m, r in results.items():
        res[m] = metrics.calibration(split_probs(r, split), y, n_bins=10)
    return res


# ----------------------------------------------------------------------------- drill-down
def first_error_cell(pred: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    """The (true, predicted) confusion cell of the first wrong pin, (0, 0) when none is wrong.

    Args:
        pred: Predicted labels, shape (n,).
        y: True labels, shape (n,).
    """
    wrong = np.flatnonzero(np.asarray(pred) != np.asarray(y))
    return (int(y[wrong[0]]), int(pred[wrong[0]])) if len(wrong) else (0, 0)


def vote_lines(outputs: Outputs, models: list[str], split: str, rows: np.ndarray, fused: np.ndarray,
               k: int = 3) -> list[list[str]]:
    """For each pin (``rows`` into ``split``): every model's vote and the fused top-k, as text.

    Args:
        outputs: The probability cache.
        models: The fused models.
        split: ``val`` or ``test``.
        rows: Pin indices into the split, shape (m,).
        fused: Fused probabilities of the split, shape (n_split, C).
        k: Fused classes listed.

    Returns:
        One list of lines per pin: ``"model: class (p)"`` per model, then ``"fused: ..."``.
    """
    classes = outputs.classes
    lines = []
    for i in rows:
        pin = []
        for m in models:
            pm = outputs.probs[m][split][i]
            pin.append(f"{m}: {classes[int(pm.argmax())]} ({pm.max():.2f})")
        top = np.argsort(-fused[i], kind="stable")[:k]
        pin.append("fused: " + ", ".join(f"{classes[j]} {fused[i, j]:.2f}" for j in top))
        lines.append(pin)
    return lines
