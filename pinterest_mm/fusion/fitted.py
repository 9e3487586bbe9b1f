"""Late fusions whose weights are fitted to validation log-loss: simplex weights optimized with
L-BFGS, and Caruana's greedy ensemble selection (the recommended fusion).

Both combine the cached probability vectors with :func:`~.late.weighted_sum`; the weights are
fitted on validation only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from .. import metrics
from ..outputs import Outputs
from .late import prob_stack, weighted_sum
from .registry import FusionResult, finish, register
from .select import SelectConfig, first_model, rank_by_val, select_models, usable_models


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

    # A trial's log-loss reads only the true class's probability: adding a model is tried on
    # those columns, shape (M, n_val), C times less work than on the whole (n_val, C) average
    # and the same numbers (the sums are elementwise).
    true = stack[:, rows, y]
    counts = np.zeros(M)
    counts[start] = 1
    total = stack[start].copy()
    loss, acc0 = scores(total)
    best_counts, best_loss = counts.copy(), loss
    for _ in range(rounds):
        k = counts.sum()
        total_true = total[rows, y]
        trials = [float(-np.log(np.maximum((total_true + true[j]) / (k + 1), eps)).mean()) for j in range(M)]
        j = int(np.argmin(trials))  # ties: the first (candidates come best-first)
        counts[j] += 1
        total += stack[j]
        loss = trials[j]  # the log-loss of the new average, computed just above
        if loss < best_loss and scores(total / counts.sum())[1] >= acc0:  # accuracy only when it matters
            best_counts, best_loss = counts.copy(), loss
    return best_counts / best_counts.sum()


@register("ensemble", EnsembleConfig,
          "Recommended: greedy ensemble selection on val log-loss, from the best single model", "late")
def fit_ensemble(outputs: Outputs, cfg: EnsembleConfig) -> FusionResult:
    """Greedy ensemble selection over every built model (the recommended fusion)."""
    cands = list(cfg.models) if cfg.models else usable_models(outputs)
    cands = rank_by_val(outputs, cands)
    first_model(cands, "usable")
    stack_val, stack_test = prob_stack(outputs, cands, "val"), prob_stack(outputs, cands, "test")
    w = ensemble_selection(stack_val, outputs.y["val"], 0, cfg.rounds, cfg.eps)
    keep = [i for i in range(len(cands)) if w[i] > 0]
    pv, pt = weighted_sum(stack_val[keep], w[keep]), weighted_sum(stack_test[keep], w[keep])
    chosen = {"models": [cands[i] for i in keep], "start": cands[0],
              "val_log_loss": metrics.log_loss(pv, outputs.y["val"])}
    return finish(outputs, "ensemble", cfg, chosen, pv, pt, weights={cands[i]: float(w[i]) for i in keep})
