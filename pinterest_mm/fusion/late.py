"""Late fusion of cached probability vectors: MM (thesis 3.4.3-3.4.4), lambda (4.3),
baselines and log-linear pooling; the pure combination rules they share.

Which models are fused is :mod:`.select`'s; fusions with weights fitted to validation
log-loss (optimized, ensemble) are in :mod:`.fitted`.

The live sliders use :func:`mm_weights` with :class:`pinterest_mm.fusion.live.FusionStack`.
Every ``fit_*`` chooses settings on validation only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import metrics
from ..outputs import Outputs
from .registry import FusionResult, finish, register
from .select import (
    LAMBDA_PAIR_RULE,
    SelectConfig,
    first_model,
    grid_row,
    lambda_pair,
    pick_on_val,
    rank_by_val,
    select_models,
    usable_models,
    val_accuracy,
)

__all__ = [  # the selection helpers stay importable from here
    "LAMBDA_GRID", "LAMBDA_PAIR_RULE", "MM_L_GRID", "SelectConfig", "lambda_pair", "lambda_table",
    "log_linear", "mm_weights", "prob_stack", "select_models", "usable_models", "val_accuracy",
    "weighted_sum",
]

MM_L_GRID = (1.0, 2.0, 3.0, 4.0, 5.0)
LAMBDA_GRID = (0.0, 0.3, 0.5, 0.7, 1.0)


# ----------------------------------------------------------------------------- pure functions
def mm_weights(accs, l: float) -> np.ndarray:
    """MM weights w_i = exp(acc_i * l) / sum_j exp(acc_j * l) (eq. 3.4).

    Args:
        accs: Validation accuracies, shape (M,).
        l: The temperature-like factor (thesis grid 1..5).

    Returns:
        Weights, shape (M,), float64, summing to 1.
    """
    z = np.asarray(accs, dtype=np.float64) * float(l)
    z = np.exp(z - z.max())
    return z / z.sum()


def weighted_sum(prob_stack: np.ndarray, weights) -> np.ndarray:
    """Fused probabilities sum_i w_i b_i (eq. 3.5).

    Args:
        prob_stack: Stacked probabilities, shape (M, n, C).
        weights: Shape (M,).

    Returns:
        Shape (n, C), float32.
    """
    w = np.asarray(weights, dtype=np.float32)
    return np.tensordot(w, np.asarray(prob_stack, dtype=np.float32), axes=(0, 0))


def log_linear(prob_stack: np.ndarray, weights, eps: float = 1e-6) -> np.ndarray:
    """Product of experts: normalize(exp(sum_i w_i log(b_i + eps))), shape (n, C)."""
    w = np.asarray(weights, dtype=np.float32)
    logp = np.tensordot(w, np.log(np.asarray(prob_stack, np.float32) + eps), axes=(0, 0))
    logp -= logp.max(1, keepdims=True)
    p = np.exp(logp)
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def prob_stack(outputs: Outputs, models: list[str], split: str) -> np.ndarray:
    """Stack the models' probabilities of one split, shape (M, n, C), float32."""
    return np.stack([np.asarray(outputs.probs[m][split], np.float32) for m in models])


# ----------------------------------------------------------------------------- MM
@dataclass(frozen=True)
class MMConfig(SelectConfig):
    """Mix-Modality: softmax(acc * l) weights over the selected models.

    Attributes:
        l: A fixed l; None chooses it from ``l_grid`` on validation.
        l_grid: Values tried (thesis: 1..5); ties go to the first.
    """

    l: float | None = None
    l_grid: tuple[float, ...] = MM_L_GRID


@register("mm", MMConfig, "Mix-Modality: weights softmax(val acc * l), l chosen on val", "late")
def fit_mm(outputs: Outputs, cfg: MMConfig) -> FusionResult:
    """Mix-Modality late fusion (eq. 3.4-3.5)."""
    models = select_models(outputs, cfg)
    stack_val, stack_test = prob_stack(outputs, models, "val"), prob_stack(outputs, models, "test")
    accs = np.array([val_accuracy(outputs, m) for m in models])
    ls = (cfg.l,) if cfg.l is not None else cfg.l_grid
    grid, fused = [], []
    for l in ls:
        w = mm_weights(accs, l)
        pv, pt = weighted_sum(stack_val, w), weighted_sum(stack_test, w)
        grid.append(grid_row({"l": float(l)}, pv, pt, outputs))
        fused.append((w, pv, pt))
    i = pick_on_val(grid)
    w, pv, pt = fused[i]
    chosen = {"l": float(ls[i]), "models": models, "val_accuracies": dict(zip(models, accs.tolist()))}
    return finish(outputs, "mm", cfg, chosen, pv, pt, weights=dict(zip(models, w)), grid=grid)


# ----------------------------------------------------------------------------- lambda
@dataclass(frozen=True)
class LambdaConfig:
    """Cinar et al. late fusion lambda * b_image + (1 - lambda) * b_text (eq. 4.1).

    Attributes:
        image_model: Image model; None = best image model on validation.
        text_model: Text model; None = best text model of ``text_family`` on validation.
        text_family: ``word_embedding``, ``transformer`` or None (any text model).
        lam: A fixed lambda; None chooses it from ``lam_grid`` on validation.
        lam_grid: Values tried (thesis: 0, .3, .5, .7, 1); ties go to the first.
    """

    image_model: str | None = None
    text_model: str | None = None
    text_family: str | None = None
    lam: float | None = None
    lam_grid: tuple[float, ...] = LAMBDA_GRID


def _lambda_grid(outputs: Outputs, img: str, txt: str, lams) -> tuple[list[dict], list]:
    bi, bt = outputs.probs[img], outputs.probs[txt]
    grid, fused = [], []
    for lam in lams:
        pv = (lam * bi["val"] + (1 - lam) * bt["val"]).astype(np.float32)
        pt = (lam * bi["test"] + (1 - lam) * bt["test"]).astype(np.float32)
        grid.append(grid_row({"lambda": float(lam)}, pv, pt, outputs))
        fused.append((pv, pt))
    return grid, fused


@register("lambda", LambdaConfig, "lambda * image + (1 - lambda) * text, lambda chosen on val", "late")
def fit_lambda(outputs: Outputs, cfg: LambdaConfig) -> FusionResult:
    """Lambda late fusion of one (image, text) pair."""
    img, txt = cfg.image_model, cfg.text_model
    if img is None or txt is None:
        best_img, best_txt = lambda_pair(outputs, cfg.text_family)
        img, txt = img or best_img, txt or best_txt
    lams = (cfg.lam,) if cfg.lam is not None else cfg.lam_grid
    grid, fused = _lambda_grid(outputs, img, txt, lams)
    i = pick_on_val(grid)
    lam = float(lams[i])
    chosen = {"lambda": lam, "image_model": img, "text_model": txt}
    return finish(outputs, "lambda", cfg, chosen, *fused[i], weights={img: lam, txt: 1 - lam}, grid=grid)


def lambda_table(outputs: Outputs, text_family: str = "word_embedding", lam_grid=LAMBDA_GRID) -> list[dict]:
    """Every (image, text) pair x lambda (thesis Tables 4.5/4.6).

    Returns:
        One row per pair: ``image``, ``text``, ``val`` and ``test`` (lambda -> accuracy),
        ``best_lambda`` (chosen on validation), ``val_accuracy``, ``test_accuracy`` (at
        best_lambda) and ``test_topk`` (k = 1..10). Sorted by validation accuracy, desc.
    """
    rows = []
    for img in usable_models(outputs, "image"):
        for txt in usable_models(outputs, text_family):
            grid, fused = _lambda_grid(outputs, img, txt, lam_grid)
            i = pick_on_val(grid)
            rows.append({
                "image": img,
                "text": txt,
                "val": {float(l): g["val_accuracy"] for l, g in zip(lam_grid, grid)},
                "test": {float(l): g["test_accuracy"] for l, g in zip(lam_grid, grid)},
                "best_lambda": float(lam_grid[i]),
                "val_accuracy": grid[i]["val_accuracy"],
                "test_accuracy": grid[i]["test_accuracy"],
                "test_topk": metrics.topk_curve(fused[i][1], outputs.y["test"]).tolist(),
            })
    return sorted(rows, key=lambda r: -r["val_accuracy"])


# ----------------------------------------------------------------------------- baselines
@dataclass(frozen=True)
class BestSingleConfig:
    """The single model with the best validation accuracy among ``models`` (None = all)."""

    models: tuple[str, ...] | None = None


@register("best_single", BestSingleConfig, "The single model with the best val accuracy", "late")
def fit_best_single(outputs: Outputs, cfg: BestSingleConfig) -> FusionResult:
    """Best single model baseline."""
    cands = list(cfg.models) if cfg.models else usable_models(outputs)
    cands = rank_by_val(outputs, cands)
    grid = [grid_row({"model": m}, outputs.probs[m]["val"], outputs.probs[m]["test"], outputs) for m in cands]
    best = first_model(cands, "usable")
    p = outputs.probs[best]
    return finish(outputs, "best_single", cfg, {"model": best}, p["val"], p["test"], weights={best: 1.0}, grid=grid)


@dataclass(frozen=True)
class EqualConfig(SelectConfig):
    """Equal-weight average of the selected models."""


@register("equal", EqualConfig, "Equal-weight average of the selected models", "late")
def fit_equal(outputs: Outputs, cfg: EqualConfig) -> FusionResult:
    """Equal-weight average."""
    models = select_models(outputs, cfg)
    w = np.full(len(models), 1.0 / len(models))
    pv = weighted_sum(prob_stack(outputs, models, "val"), w)
    pt = weighted_sum(prob_stack(outputs, models, "test"), w)
    return finish(outputs, "equal", cfg, {"models": models}, pv, pt, weights=dict(zip(models, w)))


@dataclass(frozen=True)
class LogLinearConfig(SelectConfig):
    """Log-linear pooling (product of experts) of the selected models.

    Attributes:
        weighting: ``mm`` (softmax(acc * l), l chosen on val from ``l_grid``) or ``equal``.
        l: A fixed l (weighting ``mm``); None chooses it from ``l_grid`` on validation.
        l_grid: Values of l tried when weighting is ``mm``.
        eps: Added before the log.
    """

    weighting: str = "mm"
    l: float | None = None
    l_grid: tuple[float, ...] = MM_L_GRID
    eps: float = 1e-6


@register("log_linear", LogLinearConfig, "Product of experts: normalized exp(sum w log b)", "late")
def fit_log_linear(outputs: Outputs, cfg: LogLinearConfig) -> FusionResult:
    """Log-linear pooling."""
    if cfg.weighting not in ("mm", "equal"):
        raise ValueError("weighting must be 'mm' or 'equal'")
    models = select_models(outputs, cfg)
    stack_val, stack_test = prob_stack(outputs, models, "val"), prob_stack(outputs, models, "test")
    accs = np.array([val_accuracy(outputs, m) for m in models])
    ls = (cfg.l,) if cfg.l is not None else cfg.l_grid
    settings = [("l", float(l)) for l in ls] if cfg.weighting == "mm" else [("equal", 1.0)]
    grid, fused = [], []
    for name, l in settings:
        w = mm_weights(accs, l) if name == "l" else np.full(len(models), 1 / len(models))
        pv, pt = log_linear(stack_val, w, cfg.eps), log_linear(stack_test, w, cfg.eps)
        grid.append(grid_row({name: l}, pv, pt, outputs))
        fused.append((w, pv, pt))
    i = pick_on_val(grid)
    w, pv, pt = fused[i]
    chosen = {"models": models, **grid[i]["setting"]}
    return finish(outputs, "log_linear", cfg, chosen, pv, pt, weights=dict(zip(models, w)), grid=grid)
