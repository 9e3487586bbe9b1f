"""Evaluation metrics: pure functions over arrays (thesis 2.4.2 and beyond).

Every function takes true labels ``y`` of shape (n,) (ints in ``[0, C)``) and probabilities
``probs`` of shape (n, C) and returns arrays or small dataclasses. Labels are always *all*
classes ``0..C-1`` so a filtered subset never changes the shape of a result (scikit-learn
#21568).

Top-k ties follow :func:`sklearn.metrics.top_k_accuracy_score`: among classes with equal
probability the one with the *higher* index ranks first. Top-1 prediction (``argmax``) keeps
numpy's rule (lowest index); the two only differ on exact ties.

These are the reference implementations; the live slider path
(:mod:`pinterest_mm.fusion.live`) computes the same accuracy, top-k and confusion counts in
one blockwise pass and is tested against them.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import log_loss as _sk_log_loss
from sklearn.metrics import precision_recall_fscore_support

from .config import KMAX

__all__ = [
    "KMAX", "Agreement", "BootstrapCI", "Calibration", "McNemar", "PerClass", "accuracy", "agreement",
    "calibration", "cell_pins", "confusion", "log_loss", "mcnemar", "mcnemar_from_counts",
    "normalize_confusion", "paired_bootstrap", "per_class", "remembered_accuracy", "topk_curve", "true_class_rank",
]


# ----------------------------------------------------------------------------- basics
def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy.

    Args:
        probs: Probabilities, shape (n, C).
        y: True labels, shape (n,).

    Returns:
        Share of pins whose argmax equals the label (0.0 for n = 0).
    """
    y = np.asarray(y)
    if len(y) == 0:
        return 0.0
    return float((np.asarray(probs).argmax(1) == y).mean())


_ACCURACY_MEMO: dict[tuple[int, int], tuple[weakref.ref, weakref.ref, float]] = {}


def remembered_accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    """:func:`accuracy` of (probs (n, C), y (n,)), remembered per pair of array objects.

    Ranking models by validation accuracy is asked on every page run (usable models, the
    thesis selection, the best single model); at 100,000 validation pins each argmax costs
    ~10 ms, dozens of them per run. The cached arrays are never written after loading, so an
    answer holds while both arrays live; weak references tell a reused ``id`` from the same array.
    """
    key = (id(probs), id(y))
    hit = _ACCURACY_MEMO.get(key)
    if hit is not None and hit[0]() is probs and hit[1]() is y:
        return hit[2]
    acc = accuracy(probs, y)
    try:
        if len(_ACCURACY_MEMO) > 4096:
            for k, v in list(_ACCURACY_MEMO.items()):  # a snapshot: sessions share the memo
                if v[0]() is None or v[1]() is None:
                    _ACCURACY_MEMO.pop(k, None)
        _ACCURACY_MEMO[key] = (weakref.ref(probs), weakref.ref(y), acc)
    except TypeError:  # not weak-referenceable (e.g. a list): not remembered
        pass
    return acc


def true_class_rank(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """0-based rank of the true class in each row, ties as in scikit-learn.

    rank = #classes with a larger probability + #classes with an equal probability and a
    higher index (scikit-learn sorts with a stable argsort and reverses it).

    Args:
        probs: Probabilities, shape (n, C).
        y: True labels, shape (n,).

    Returns:
        Ranks, shape (n,), int64; the true class is in the top-k iff rank < k.
    """
    probs = np.asarray(probs)
    y = np.asarray(y, dtype=np.int64)
    pt = np.take_along_axis(probs, y[:, None], axis=1)
    rank = (probs > pt).sum(1)
    eq = probs == pt
    tied = eq.sum(1) > 1
    if tied.any():
        cols = np.arange(probs.shape[1])[None, :]
        rank[tied] += (eq[tied] & (cols > y[tied, None])).sum(1)
    return rank.astype(np.int64)


def topk_curve(probs: np.ndarray, y: np.ndarray, kmax: int = KMAX) -> np.ndarray:
    """Top-k accuracy for every k = 1..kmax at once (eq. 2.17).

    Args:
        probs: Probabilities, shape (n, C).
        y: True labels, shape (n,).
        kmax: Largest k.

    Returns:
        Accuracies, shape (kmax,); entry k-1 is top-k accuracy (1.0 once k >= C).
    """
    y = np.asarray(y)
    if len(y) == 0:
        return np.zeros(kmax)
    rank = true_class_rank(probs, y)
    counts = np.bincount(np.minimum(rank, kmax), minlength=kmax + 1)[:kmax]
    return np.cumsum(counts) / len(y)


def confusion(
    y: np.ndarray, pred: np.ndarray, n_classes: int, normalize: str | None = None
) -> np.ndarray:
    """Confusion matrix over all classes, rows = true, columns = predicted.

    Args:
        y: True labels, shape (n,).
        pred: Predicted labels, shape (n,).
        n_classes: C.
        normalize: None (counts), ``'true'`` (rows sum to 1), ``'pred'`` (columns sum to
            1) or ``'all'`` (the matrix sums to 1). Empty rows/columns stay 0.

    Returns:
        Matrix, shape (C, C): int64 counts or float64 shares.
    """
    y = np.asarray(y, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    cm = np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
    return normalize_confusion(cm, normalize)


def normalize_confusion(counts: np.ndarray, normalize: str | None) -> np.ndarray:
    """Normalize confusion counts (C, C) as :func:`confusion` does (None returns the counts)."""
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', not {normalize!r}")
    if normalize is None:
        return counts
    cm = np.asarray(counts).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if normalize == "true":
            cm = cm / cm.sum(1, keepdims=True)
        elif normalize == "pred":
            cm = cm / cm.sum(0, keepdims=True)
        else:
            cm = cm / cm.sum()
    return np.nan_to_num(cm)


@dataclass
class PerClass:
    """Per-class scores over all C classes.

    Attributes:
        precision, recall, f1: Shape (C,).
        support: True pins per class, shape (C,).
        macro_f1: Unweighted mean of ``f1``.
    """

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    macro_f1: float


def per_class(y: np.ndarray, pred: np.ndarray, n_classes: int) -> PerClass:
    """Per-class precision, recall, F1 (zero_division=0) and macro F1."""
    labels = np.arange(n_classes)
    p, r, f, s = precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0, average=None
    )
    return PerClass(p, r, f, s, float(np.mean(f)) if n_classes else 0.0)


def log_loss(probs: np.ndarray, y: np.ndarray, eps: float = 1e-7) -> float:
    """Multiclass log-loss with probabilities clipped to [eps, 1] and renormalized.

    Args:
        probs: Probabilities, shape (n, C).
        y: True labels, shape (n,).
        eps: Clip floor.
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), eps, 1.0)
    p /= p.sum(1, keepdims=True)
    return float(_sk_log_loss(y, p, labels=np.arange(p.shape[1])))


# ----------------------------------------------------------------------------- calibration
@dataclass
class Calibration:
    """Top-label reliability diagram data.

    Attributes:
        edges: Bin edges, shape (n_bins + 1,).
        confidence: Mean top-label confidence per bin, shape (n_bins,) (NaN when empty).
        accuracy: Accuracy per bin, shape (n_bins,) (NaN when empty).
        count: Pins per bin, shape (n_bins,).
        ece: Expected calibration error, sum_b n_b / n * |acc_b - conf_b|.
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray
    ece: float


def calibration(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> Calibration:
    """Top-label calibration with equal-width bins on [0, 1] (right-closed, first bin closed).

    Args:
        probs: Probabilities, shape (n, C).
        y: True labels, shape (n,).
        n_bins: Number of bins.
    """
    probs = np.asarray(probs)
    conf = probs.max(1).astype(np.float64)
    correct = (probs.argmax(1) == np.asarray(y)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    sum_conf = np.bincount(idx, weights=conf, minlength=n_bins)
    sum_acc = np.bincount(idx, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mconf = sum_conf / count
        macc = sum_acc / count
    n = max(len(conf), 1)
    ece = float(np.abs(sum_acc - sum_conf).sum() / n)
    return Calibration(edges, mconf, macc, count, ece)


# ----------------------------------------------------------------------------- paired tests
@dataclass
class Agreement:
    """How two prediction sets agree with the truth.

    Attributes:
        both_right, only_a, only_b, both_wrong: Pin counts.
        n: Total pins.
    """

    both_right: int
    only_a: int
    only_b: int
    both_wrong: int
    n: int

    def rates(self) -> dict[str, float]:
        """Return each count divided by n."""
        n = max(self.n, 1)
        return {k: getattr(self, k) / n for k in ("both_right", "only_a", "only_b", "both_wrong")}


def agreement(pred_a: np.ndarray, pred_b: np.ndarray, y: np.ndarray) -> Agreement:
    """Count pins both/only A/only B/neither predicted right; preds shape (n,)."""
    a = np.asarray(pred_a) == np.asarray(y)
    b = np.asarray(pred_b) == np.asarray(y)
    return Agreement(
        int((a & b).sum()), int((a & ~b).sum()), int((~a & b).sum()), int((~a & ~b).sum()), len(a)
    )


@dataclass
class McNemar:
    """McNemar's test on the discordant pairs.

    Attributes:
        b: Pins only A got right.
        c: Pins only B got right.
        statistic: Chi-square statistic with continuity correction (NaN when exact).
        p_value: Two-sided p-value.
        method: ``'exact'`` (binomial, b + c < threshold) or ``'chi2'``.
    """

    b: int
    c: int
    statistic: float
    p_value: float
    method: str


def mcnemar(pred_a: np.ndarray, pred_b: np.ndarray, y: np.ndarray, exact_below: int = 25) -> McNemar:
    """Paired McNemar test of two classifiers on the same pins.

    Exact two-sided binomial test (p = 0.5) when the discordant count b + c is below
    ``exact_below``, else chi-square (1 dof) with continuity correction (|b-c|-1)^2/(b+c).
    """
    ag = agreement(pred_a, pred_b, y)
    return mcnemar_from_counts(ag.only_a, ag.only_b, exact_below)


def mcnemar_from_counts(b: int, c: int, exact_below: int = 25) -> McNemar:
    """McNemar's test from the discordant counts b (only A right) and c (only B right)."""
    n = b + c
    if n == 0:
        return McNemar(b, c, float("nan"), 1.0, "exact")
    if n < exact_below:
        p = stats.binomtest(min(b, c), n, 0.5, alternative="two-sided").pvalue
        return McNemar(b, c, float("nan"), float(min(p, 1.0)), "exact")
    stat = (abs(b - c) - 1) ** 2 / n
    return McNemar(b, c, float(stat), float(stats.chi2.sf(stat, 1)), "chi2")


@dataclass
class BootstrapCI:
    """Paired bootstrap of the accuracy difference A - B.

    Attributes:
        diff: Observed accuracy difference.
        low, high: Percentile confidence interval bounds.
        level: Confidence level.
        p_value: Two-sided share of resamples on the other side of 0 (times 2, capped at 1).
    """

    diff: float
    low: float
    high: float
    level: float
    p_value: float


def paired_bootstrap(
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    y: np.ndarray,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapCI:
    """Percentile CI of acc(A) - acc(B) by resampling pins with replacement (seeded)."""
    d = (np.asarray(pred_a) == y).astype(np.float64) - (np.asarray(pred_b) == y)
    n = len(d)
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    step = max(1, min(256, 4_000_000 // max(n, 1)))  # bound the (step, n) index matrix
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        boots[start:stop] = d[idx].mean(1)
    alpha = (1 - level) / 2
    low, high = np.quantile(boots, [alpha, 1 - alpha])
    diff = float(d.mean()) if n else 0.0
    p = 2 * min((boots <= 0).mean(), (boots >= 0).mean())
    return BootstrapCI(diff, float(low), float(high), level, float(min(p, 1.0)))


# ----------------------------------------------------------------------------- drill-down
def cell_pins(probs: np.ndarray, y: np.ndarray, true_class: int, pred_class: int) -> np.ndarray:
    """Indices of pins in one confusion cell, most confident prediction first.

    Args:
        probs: Probabilities, shape (n, C).
        y: True labels, shape (n,).
        true_class: Row of the cell.
        pred_class: Column of the cell.

    Returns:
        Row indices into ``probs``, shape (m,), sorted by probability of ``pred_class`` desc.
    """
    probs = np.asarray(probs)
    idx = np.flatnonzero((np.asarray(y) == true_class) & (probs.argmax(1) == pred_class))
    order = np.argsort(-probs[idx, pred_class], kind="stable")
    return idx[order]
