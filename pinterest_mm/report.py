"""The per-model report of a dataset: accuracies, CV score, top-k on test, build time.

:func:`model_report` reads the store once and returns a JSON-ready dict;
:func:`format_model_report` draws it as a text table (``pinterest-mm report NAME``).
"""

from __future__ import annotations

import numpy as np

from . import metrics, stats
from .compare import BEST_SINGLE_RULE
from .coverage import text_coverage
from .models.classify import c_edge_warning
from .outputs import SPLITS, probs_mismatch
from .store import Store
from .textable import text_table

def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value


def _c_warning(params: dict) -> str | None:
    """The edge-of-grid note of a model whose C was chosen by CV (grid = the C values it tried)."""
    scores = (params or {}).get("cv_scores")
    if not isinstance(scores, dict) or params.get("C") is None:
        return None
    try:
        return c_edge_warning(float(params["C"]), [float(c) for c in scores])
    except (TypeError, ValueError):
        return None


def model_report(store: Store, dataset: str) -> dict:
    """Return ``{"dataset", "classes", "models": [...], "skipped": [...]}`` for every built model.

    Each model entry has ``name``, ``family``, ``modality``, ``params``, ``cv_score``,
    ``val_accuracy``, ``test_accuracy``, ``test_topk`` (top-1..top-min(10, C) accuracy on
    the stored test probabilities) and ``seconds``, each accuracy with its Wilson 95 %
    interval (``val_accuracy_ci``, ``test_accuracy_ci``, ``test_topk_ci``), ``c_warning`` (a
    note when the CV-chosen C is at the edge of the grid tried, else None) and ``unknown_words``
    (word-embedding and transformer models: :meth:`pinterest_mm.coverage.Coverage.to_dict`, its
    ``warning`` set when much of the text is unknown; None for other models); ordered by validation
    accuracy (ties: name). ``n`` gives the pins per split, ``definitions`` the best single model
    and its rule, ``warning`` a small-test-set note or None.
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
            "test_topk": [] if probs is None else
            metrics.topk_curve(probs, y_test, min(metrics.KMAX, len(classes))).tolist(),
            "seconds": float(rec["seconds"]),
            "c_warning": _c_warning(rec["params"]),
        })
    models.sort(key=lambda m: (-m["val_accuracy"], m["name"]))
    cover = text_coverage(store, dataset, models)
    for m in models:
        m["unknown_words"] = cover[m["name"]].to_dict() if m["name"] in cover else None
    stats.add_intervals(models, n_rows)
    best = models[0]["name"] if models else None
    return {"dataset": dataset, "classes": list(classes), "n": n_rows, "models": models, "skipped": skipped,
            "definitions": {"best_single": best, "rules": {"best_single": BEST_SINGLE_RULE}},
            "interval": "Wilson 95 % interval of each accuracy on the split's pins",
            "warning": stats.small_test_warning(n_rows["test"])}


def format_model_report(report: dict) -> str:
    """Return the report as a readable text table (one row per model)."""
    lines = [f"Dataset {report['dataset']}: {len(report['classes'])} classes, "
             f"{len(report['models'])} models built"]
    notes = [f"Skipped: {s['reason']}" for s in report.get("skipped", [])]
    notes += [f"{m['name']}: {m['c_warning']}" for m in report["models"] if m.get("c_warning")]
    notes += [f"WARNING: {m['unknown_words']['warning']}" for m in report["models"]
              if (m.get("unknown_words") or {}).get("warning")]
    cover = [m for m in report["models"] if m.get("unknown_words")]
    if cover:
        notes.append("Unknown words (pins with text that have no known word; unknown words or tokens): " + "; ".join(
            f"{m['name']} {100 * m['unknown_words']['share_pins']:.1f} % of pins, "
            f"{100 * m['unknown_words']['share_tokens']:.1f} % of {m['unknown_words']['unit']}s" for m in cover))
    if not report["models"]:
        return "\n".join([lines[0] + "\n(no models built yet: run `pinterest-mm build NAME`)", *notes])

    n = report.get("n", {})

    def acc(v: float, split: str) -> str:
        return stats.fmt_interval(v, n[split]) if n.get(split) else f"{v:.3f}"

    def k(m: dict, i: int) -> str | None:
        return acc(m["test_topk"][i - 1], "test") if len(m["test_topk"]) >= i else None

    rows = [[m["name"], m["family"], m["modality"], m["params"].get("C"), m["cv_score"],
             acc(m["val_accuracy"], "val"), acc(m["test_accuracy"], "test"), k(m, 2), k(m, 3), k(m, 5),
             m["seconds"]] for m in report["models"]]
    lines.append(text_table(["model", "family", "mod", "C", "cv", "val", "test", "top-2", "top-3", "top-5", "sec"],
                            rows, digits=[0, 0, 0, None, 4, 0, 0, 0, 0, 0, 1]))
    defs = report.get("definitions") or {}
    lines.append(f"Accuracies: value [{report.get('interval', 'Wilson 95 % interval')}]. "
                 f"{(defs.get('rules') or {}).get('best_single', BEST_SINGLE_RULE)}: {defs.get('best_single')}")
    if report.get("warning"):
        lines.append(f"WARNING: {report['warning']}")
    return "\n".join(lines + notes)
