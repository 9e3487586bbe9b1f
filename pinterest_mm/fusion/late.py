"""Late fusion of cached probability vectors: MM (thesis 3.4.3-3.4.4), lambda (4.3),
baselines, log-linear pooling and validation-optimized weights.

The live sliders use :func:`mm_weights` with :class:`pinterest_mm.fusion.live.FusionStack`.
Every ``fit_*`` chooses settings on validation only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize

from .. import metrics
from ..outputs import FAMILIES, Outputs
from .chance import chance_level
from .registry import FusionResult, finish, register

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


# ----------------------------------------------------------------------------- selection
@dataclass(frozen=True)
class SelectConfig:
    """Which models to fuse: an explicit list, or the best ``n_<family>`` by val accuracy.

    Attributes:
        models: Explicit model names (overrides the rule).
        n_image, n_word_embedding, n_transformer, n_other: How many of each family to keep,
            best validation accuracy first; -1 keeps all (thesis: 2, 2, all).
        exclude_chance: Leave chance-level models out of the rule (:mod:`.chance`); an
            explicit ``models`` list is kept as given.
    """

    models: tuple[str, ...] | None = None
    n_image: int = 2
    n_word_embedding: int = 2
    n_transformer: int = -1
    n_other: int = 0
    exclude_chance: bool = True


def val_accuracy(outputs: Outputs, model: str) -> float:
    """Validation accuracy of one model, recomputed from its cached probabilities."""
    return metrics.accuracy(outputs.probs[model]["val"], outputs.y["val"])


def usable_models(outputs: Outputs, family: str | None = None, modality: str | None = None) -> list[str]:
    """Models with val and test probabilities, best validation accuracy first (ties: name)."""
    names = [
        m for m in outputs.model_names(family, modality)
        if "val" in outputs.probs.get(m, {}) and "test" in outputs.probs.get(m, {})
    ]
    return sorted(names, key=lambda m: (-val_accuracy(outputs, m), m))


def select_models(outputs: Outputs, cfg: SelectConfig = SelectConfig()) -> list[str]:
    """Apply a :class:`SelectConfig`; raises ValueError when nothing is selected."""
    if cfg.models:
        unknown = [m for m in cfg.models if m not in outputs.models]
        if unknown:
            raise ValueError(f"Unknown models {unknown}; known: {sorted(outputs.models)}")
        return list(cfg.models)
    chosen: list[str] = []
    drop = chance_level(outputs, usable_models(outputs)) if cfg.exclude_chance else {}
    for fam in FAMILIES:
        k = getattr(cfg, f"n_{fam}")
        ranked = [m for m in usable_models(outputs, fam) if m not in drop]
        chosen += ranked if k < 0 else ranked[:k]
    if not chosen and drop:  # every candidate is at chance: keep them rather than fuse nothing
        return select_models(outputs, replace(cfg, exclude_chance=False))
    if not chosen:
        raise ValueError("No model selected: build models first or pass models=[...].")
    return chosen


def _pick(grid: list[dict]) -> int:
    """Index of the best validation accuracy (first on ties: grid order is the preference)."""
    accs = [g["val_accuracy"] for g in grid]
    return int(np.argmax(accs))


def _row(setting: dict, pv: np.ndarray, pt: np.ndarray, outputs: Outputs) -> dict:
    return {
        "setting": setting,
        "val_accuracy": metrics.accuracy(pv, outputs.y["val"]),
        "test_accuracy": metrics.accuracy(pt, outputs.y["test"]),
    }


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
        grid.append(_row({"l": float(l)}, pv, pt, outputs))
        fused.append((w, pv, pt))
    i = _pick(grid)
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
        grid.append(_row({"lambda": float(lam)}, pv, pt, outputs))
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
    i = _pick(grid)
    lam = float(lams[i])
    chosen = {"lambda": lam, "image_model": img, "text_model": txt}
    return finish(outputs, "lambda", cfg, chosen, *fused[i], weights={img: lam, txt: 1 - lam}, grid=grid)


LAMBDA_PAIR_RULE = ("lambda pair: the best image model x the best text model ({family}), "
                    "each by validation accuracy (ties: name)")


def lambda_pair(outputs: Outputs, text_family: str | None = None) -> tuple[str, str]:
    """The (image, text) pair lambda fusion uses by default: the one rule (``LAMBDA_PAIR_RULE``).

    Args:
        text_family: ``word_embedding``, ``transformer`` or None (any text model).
    """
    img = _first(usable_models(outputs, "image"), "image")
    if text_family:
        txt = _first(usable_models(outputs, text_family), text_family)
    else:
        txt = _first(usable_models(outputs, modality="text"), "text")
    return img, txt


def _first(names: list[str], what: str) -> str:
    if not names:
        raise ValueError(f"No {what} model with val and test probabilities is built.")
    return names[0]


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
            i = _pick(grid)
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
    cands = sorted(cands, key=lambda m: (-val_accuracy(outputs, m), m))
    grid = [_row({"model": m}, outputs.probs[m]["val"], outputs.probs[m]["test"], outputs) for m in cands]
    best = _first(cands, "usable")
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
        grid.append(_row({name: l}, pv, pt, outputs))
        fused.append((w, pv, pt))
    i = _pick(grid)
    w, pv, pt = fused[i]
    chosen = {"models": models, **grid[i]["setting"]}
    return finish(outputs, "log_linear", cfg, chosen, pv, pt, weights=dict(zip(models, w)), grid=grid)


@dataclass(frozen=True)
class OptimizedConfig(SelectConfig):
    """Weights on the simplex minimizing validation log-loss (softmax parametrization).

    The reported validation accuracy is in-sample for these weights (optimistic).

    Attributes:
        maxiter: L-BFGS iterations.
        eps: Probability floor inside the log.
    """

    maxiter: int = 500
    eps: float = 1e-7


def optimize_weights(prob_stack_val: np.ndarray, y_val: np.ndarray, maxiter: int = 500, eps: float = 1e-7) -> np.ndarray:
    """Simplex weights minimizing -mean log(sum_i w_i b_i[y]) on validation.

    Args:
        prob_stack_val: Shape (M, n_val, C).
        y_val: Shape (n_val,).

    Returns:
        Weights, shape (M,), summing to 1.
    """
    q = np.take_along_axis(prob_stack_val, np.asarray(y_val)[None, :, None], axis=2)[..., 0]
    q = q.astype(np.float64)  # (M, n): only the true-class probabilities matter

    def f(theta):
        w = np.exp(theta - theta.max())
        w /= w.sum()
        p = np.maximum(w @ q, eps)
        g = -(q / p).mean(1)  # dL/dw
        return -np.log(p).mean(), w * (g - w @ g)

    res = minimize(f, np.zeros(q.shape[0]), jac=True, method="L-BFGS-B", options={"maxiter": maxiter})
    w = np.exp(res.x - res.x.max())
    return w / w.sum()


@register("optimized", OptimizedConfig, "Simplex weights minimizing val log-loss", "late")
def fit_optimized(outputs: Outputs, cfg: OptimizedConfig) -> FusionResult:
    """Validation-optimized weights."""
    models = select_models(outputs, cfg)
    stack_val, stack_test = prob_stack(outputs, models, "val"), prob_stack(outputs, models, "test")
    w = optimize_weights(stack_val, outputs.y["val"], cfg.maxiter, cfg.eps)
    pv, pt = weighted_sum(stack_val, w), weighted_sum(stack_test, w)
    chosen = {"models": models, "val_log_loss": metrics.log_loss(pv, outputs.y["val"])}
    return finish(outputs, "optimized", cfg, chosen, pv, pt, weights=dict(zip(models, w)))


# ----------------------------------------------------------------------------- ensemble selection
@dataclass(frozen=True)
class EnsembleConfig:
    """Greedy ensemble selection with replacement (Caruana et al. 2004) on validation log-loss.

    Attributes:
        models: Candidate models (None = every built model).
        rounds: Greedy additions after the start (the best single model).
        eps: Probability floor inside the log.
    """

    models: tuple[str, ...] | None = None
    rounds: int = 25
    eps: float = 1e-7


def ensemble_selection(prob_stack_val: np.ndarray, y_val: np.ndarray, start: int, rounds: int = 25,
                       eps: float = 1e-7) -> np.ndarray:
    """Caruana's greedy selection with replacement, as AutoGluon's ``EnsembleSelection``.

    Starts from model ``start`` (the best single model), then adds, ``rounds`` times, the model
    (repeats allowed) whose inclusion gives the lowest validation log-loss of the average. Of the
    ensembles visited, returns the one with the lowest log-loss among those whose validation
    accuracy is at least the start's, so it is never worse than the start on validation.

    Args:
        prob_stack_val: Validation probabilities, shape (M, n_val, C).
        y_val: Labels, shape (n_val,).
        start: Index of the starting model.

    Returns:
        Weights, shape (M,): selection counts / total, summing to 1.
    """
    stack = np.asarray(prob_stack_val, np.float64)
    y = np.asarray(y_val)
    M = stack.shape[0]
    rows = np.arange(len(y))

    def scores(p: np.ndarray) -> tuple[float, float]:
        return float(-np.log(np.maximum(p[rows, y], eps)).mean()), float((p.argmax(1) == y).mean())

    counts = np.zeros(M)
    counts[start] = 1
    total = stack[start].copy()
    loss, acc0 = scores(total)
    best_counts, best_loss = counts.copy(), loss
    for _ in range(rounds):
        k = counts.sum()
        trials = [scores((total + stack[j]) / (k + 1))[0] for j in range(M)]
        j = int(np.argmin(trials))  # ties: the first (candidates come best-first)
        counts[j] += 1
        total += stack[j]
        loss, acc = scores(total / counts.sum())
        if loss < best_loss and acc >= acc0:
            best_counts, best_loss = counts.copy(), loss
    return best_counts / best_counts.sum()


@register("ensemble", EnsembleConfig,
          "Recommended: greedy ensemble selection on val log-loss, from the best single model", "late")
def fit_ensemble(outputs: Outputs, cfg: EnsembleConfig) -> FusionResult:
    """Greedy ensemble selection over every built model (the recommended fusion)."""
    cands = list(cfg.models) if cfg.models else usable_models(outputs)
    cands = sorted(cands, key=lambda m: (-val_accuracy(outputs, m), m))
    _first(cands, "usable")
    stack_val, stack_test = prob_stack(outputs, cands, "val"), prob_stack(outputs, cands, "test")
    w = ensemble_selection(stack_val, outputs.y["val"], 0, cfg.rounds, cfg.eps)
    keep = [i for i in range(len(cands)) if w[i] > 0]
    pv, pt = weighted_sum(stack_val[keep], w[keep]), weighted_sum(stack_test[keep], w[keep])
    chosen = {"models": [cands[i] for i in keep], "start": cands[0],
              "val_log_loss": metrics.log_loss(pv, outputs.y["val"])}
    return finish(outputs, "ensemble", cfg, chosen, pv, pt, weights={cands[i]: float(w[i]) for i in keep})
