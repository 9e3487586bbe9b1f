"""The per-model report of a dataset: accuracies, CV score, top-k on test, build time.

:func:`model_report` reads the store once and returns a JSON-ready dict;
:func:`format_model_report` draws it as a text table (``pinterest-mm report NAME``).
"""

from __future__ import annotations

import numpy as np

from .outputs import SPLITS, probs_mismatch
from .store import Store

MAX_K = 10


def topk_accuracies(probs: np.ndarray, y: np.ndarray, max_k: int = MAX_K) -> list[float]:
    """Return top-1..top-k accuracy (k up to ``min(max_k, C)``) over all C labels.

    Equal to ``sklearn.metrics.top_k_accuracy_score(y, probs, k=k, labels=range(C))``,
    ties included (sklearn's stable ranking puts the higher label index first among equal
    scores), computed for every k from one vectorized rank.
    """
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=int)
    if probs.ndim != 2 or len(y) == 0:
        return []
    C = probs.shape[1]
    true = probs[np.arange(len(y)), y]
    higher = probs > true[:, None]
    tied_before = (probs == true[:, None]) & (np.arange(C)[None, :] > y[:, None])
    rank = (higher | tied_before).sum(axis=1)  # labels ranked above the true one
    return [float((rank < k).mean()) for k in range(1, min(max_k, C) + 1)]


def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value


def model_report(store: Store, dataset: str) -> dict:
    """Return ``{"dataset", "classes", "models": [...], "skipped": [...]}`` for every built model.

    Each model entry has ``name``, ``family``, ``modality``, ``params``, ``cv_score``,
    ``val_accuracy``, ``test_accuracy``, ``test_topk`` (top-1..top-min(10, C) accuracy on
    the stored test probabilities) and ``seconds``; ordered by validation accuracy.
    ``skipped`` lists ``{"name", "reason"}`` of models whose stored probabilities do not fit
    the dataset's current pins and classes (built on an earlier version; the reason names the
    rebuild command).
    """
    classes = store.classes(dataset)
    pins = store.pins(dataset)
    n_rows = {s: int((pins["split"] == s).sum()) for s in SPLITS}
    y_test = pins[pins["split"] == "test"].sort_values("split_row")["label"].to_numpy().astype(int)
    built = store.models(dataset)
    models, skipped = [], []
    for rec in built.to_dict("records"):
        stored = {s: a for s in SPLITS if (a := store.load_probs(dataset, rec["model"], s)) is not None}
        why = probs_mismatch(dataset, rec["model"], stored, n_rows, len(classes))
        if why is not None:
            skipped.append({"name": rec["model"], "reason": why})
            continue
        probs = stored.get("test")
        models.append({
            "name": rec["model"],
            "family": rec["family"],
            "modality": rec["modality"],
            "params": rec["params"],
            "cv_score": _num(rec["cv_score"]),
            "val_accuracy": float(rec["val_accuracy"]),
            "test_accuracy": float(rec["test_accuracy"]),
            "test_topk": topk_accuracies(probs, y_test) if probs is not None else [],
            "seconds": float(rec["seconds"]),
        })
    models.sort(key=lambda m: (-m["val_accuracy"], m["name"]))
    return {"dataset": dataset, "classes": list(classes), "models": models, "skipped": skipped}


def format_model_report(report: dict) -> str:
    """Return the report as a readable text table (one row per model)."""
    lines = [f"Dataset {report['dataset']}: {len(report['classes'])} classes, "
             f"{len(report['models'])} models built"]
    notes = [f"Skipped: {s['reason']}" for s in report.get("skipped", [])]
    if not report["models"]:
        return "\n".join([lines[0] + "\n(no models built yet: run `pinterest-mm build NAME`)", *notes])
    head = f"{'model':<26} {'family':<15} {'mod':<5} {'C':>7} {'cv':>6} {'val':>6} {'test':>6} {'top-2':>6} {'top-3':>6} {'top-5':>6} {'sec':>7}"
    lines += [head, "-" * len(head)]

    def fmt(v) -> str:
        return "-" if v is None else f"{v:.4f}"[1:] if 0 <= v < 1 else f"{v:.3f}"

    for m in report["models"]:
        topk = m["test_topk"]
        k = lambda i: topk[i - 1] if len(topk) >= i else None  # noqa: E731
        C = m["params"].get("C")
        lines.append(
            f"{m['name']:<26} {m['family']:<15} {m['modality']:<5} {('-' if C is None else f'{C:g}'):>7} "
            f"{fmt(m['cv_score']):>6} {fmt(m['val_accuracy']):>6} {fmt(m['test_accuracy']):>6} "
            f"{fmt(k(2)):>6} {fmt(k(3)):>6} {fmt(k(5)):>6} {m['seconds']:>7.1f}"
        )
    return "\n".join(lines + notes)
