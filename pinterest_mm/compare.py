"""Evaluating and comparing fused models: what the Compare page, ``Lab`` and the CLI show.

Pure functions over :class:`~pinterest_mm.outputs.Outputs` and fitted
:class:`~pinterest_mm.fusion.FusionResult` objects (fitting and caching stay with the caller):
one model's or fusion's evaluation on a split, every method against the best single model
(McNemar mid-p, paired bootstrap, Wilson intervals), the one definition of each term
(best single model, pairs, MM selection, recommended fusion), pairwise agreement of the single models, and calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import metrics, stats
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


BEST_SINGLE_RULE = "best single model by validation accuracy (ties: name)"
MM_SELECTION_RULE = ("MM selection: the best 2 image, the best 2 word-embedding and every transformer "
                     "model, by validation accuracy (the thesis selection)")
RECOMMENDED_RULE = ("recommended fusion: greedy ensemble selection (Caruana et al. 2004) on validation "
                    "log-loss over every built model, starting from the best single model")
RECOMMENDED = "ensemble"


def best_single(outputs: Outputs) -> str | None:
    """The built model with the best validation accuracy (ties: name), or None (``BEST_SINGLE_RULE``)."""
    from .fusion.select import usable_models

    names = usable_models(outputs)
    return names[0] if names else None


def _pair(fn, *args) -> list[str] | None:
    try:
        return list(fn(*args))
    except ValueError:
        return None


def definitions(outputs: Outputs) -> dict:
    """The one definition of each term the CLI, JSON, pages and downloads use, with its rule.

    Returns:
        ``best_single`` (name), ``lambda_pair`` (image, any text), ``lambda_pair_word_embedding``,
        ``feature_cross_pair`` ([image, text] or None), ``mm_models``, ``mm_excluded`` (model -> why
        it is chance-level and left out of the MM selection) and ``rules`` (term -> the sentence
        saying how it was chosen).
    """
    from .fusion.chance import CHANCE_RULE, chance_level
    from .fusion.select import LAMBDA_PAIR_RULE, SelectConfig, lambda_pair, select_models, usable_models
    from .fusion.learned import FEATURE_CROSS_PAIR_RULE, feature_cross_pair

    cfg = SelectConfig()
    mm_models = _pair(select_models, outputs, cfg)
    candidates = [m for m in usable_models(outputs) if getattr(cfg, f"n_{outputs.models[m].family}") != 0]
    return {
        "best_single": best_single(outputs),
        "lambda_pair": _pair(lambda_pair, outputs, None),
        "lambda_pair_word_embedding": _pair(lambda_pair, outputs, "word_embedding"),
        "feature_cross_pair": _pair(feature_cross_pair, outputs),
        "mm_models": mm_models,
        "mm_excluded": {m: why for m, why in chance_level(outputs, candidates).items() if m not in (mm_models or [])},
        "recommended": RECOMMENDED,
        "rules": {
            "best_single": BEST_SINGLE_RULE,
            "lambda_pair": LAMBDA_PAIR_RULE.format(family="any text family"),
            "lambda_pair_word_embedding": LAMBDA_PAIR_RULE.format(family="word embedding"),
            "feature_cross_pair": FEATURE_CROSS_PAIR_RULE,
            "mm_models": MM_SELECTION_RULE,
            "mm_excluded": CHANCE_RULE,
            "recommended": RECOMMENDED_RULE,
        },
    }


def definition_lines(defs: dict) -> list[str]:
    """Readable lines "rule: value" of :func:`definitions` (what the report and pages print)."""
    def show(v):
        return "none" if v is None else (" x ".join(v) if isinstance(v, list) and len(v) == 2 and v else
                                         ", ".join(v) if isinstance(v, list) else str(v))

    lines = [f"{defs['rules'][k]}: {show(defs[k])}" for k in
             ("best_single", "lambda_pair", "lambda_pair_word_embedding", "feature_cross_pair", "mm_models")]
    for m, why in (defs.get("mm_excluded") or {}).items():
        lines.append(f"left out of the MM selection as chance-level: {m}, {why}")
    return lines


def short_setting(chosen: dict) -> str:
    """A one-line summary of the settings a method chose on validation (numbers: 3 significant digits)."""
    parts = []
    for k, v in chosen.items():
        if isinstance(v, float):
            parts.append(f"{k}={v:.3g}")
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
        ``table`` (records: method, recommended, chosen, val/test accuracy with their Wilson 95 %
        bounds, top-2 on split, delta, McNemar mid-p, bootstrap CI), ``topk`` (method -> curve on
        split), ``configs`` (method -> config + chosen), ``best`` (the best single model's name),
        ``n`` (pins in split), ``definitions`` (:func:`definitions`) and ``warning`` (a
        small-test-set note or None).
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
        mc = stats.paired_test(pred, pred_b, y)
        bs = metrics.paired_bootstrap(pred, pred_b, y, n_boot=n_boot)
        curve = metrics.topk_curve(p, y)
        vlo, vhi = stats.accuracy_interval(r.val_accuracy, len(outputs.y["val"]))
        tlo, thi = stats.accuracy_interval(r.test_accuracy, len(outputs.y["test"]))
        rows.append({
            "method": m, "recommended": m == RECOMMENDED,
            "chosen on validation": short_setting(r.chosen),
            "val accuracy": r.val_accuracy, "val accuracy 95% low": vlo, "val accuracy 95% high": vhi,
            "test accuracy": r.test_accuracy, "test accuracy 95% low": tlo, "test accuracy 95% high": thi,
            f"{split} top-2": float(curve[1]),
            f"Δ vs {best}": metrics.accuracy(p, y) - acc_b,
            "McNemar mid-p": mc.p_mid, "CI low": bs.low, "CI high": bs.high,
        })
        topk[m] = curve.tolist()
        configs[m] = {"config": r.config, "chosen": r.chosen}
    return {"table": rows, "topk": topk, "configs": configs, "best": best, "n": len(y),
            "definitions": definitions(outputs), "warning": stats.small_test_warning(len(outputs.y["test"]))}


def display_table(cmp: dict, split: str) -> list[dict]:
    """The :func:`compare_methods` table as people read it: readable column names, every number
    through the one formatting rule (:func:`stats.fmt_interval`, :func:`stats.fmt_diff`,
    :func:`stats.fmt_p`). Downloads keep the numeric table."""
    best = cmp["best"]
    rows = []
    for r in cmp["table"]:
        rows.append({
            "method": r["method"] + (" (recommended)" if r.get("recommended") else ""),
            "chosen on validation": r["chosen on validation"],
            "validation accuracy [95 %]": _fmt_ci(r, "val"),
            "test accuracy [95 %]": _fmt_ci(r, "test"),
            f"{split} top-2": f"{r[f'{split} top-2']:.3f}",
            f"{split} difference vs {best} [95 % bootstrap]": stats.fmt_diff(r[f"Δ vs {best}"], r["CI low"], r["CI high"]),
            "McNemar mid-p": stats.fmt_p(r["McNemar mid-p"]),
        })
    return rows


def _fmt_ci(r: dict, split: str) -> str:
    return f"{r[f'{split} accuracy']:.3f} [{r[f'{split} accuracy 95% low']:.2f}, {r[f'{split} accuracy 95% high']:.2f}]"


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


CALIBRATION_METHODS = ("mm", "lambda", "equal", "optimized")  # the reliability diagrams' methods


def calibration_methods(compared: list[str]) -> tuple[str, ...]:
    """The methods whose reliability diagrams are drawn: :data:`CALIBRATION_METHODS` among ``compared``."""
    return tuple(m for m in CALIBRATION_METHODS if m in compared)


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
