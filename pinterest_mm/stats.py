"""Uncertainty of accuracies and of differences between two models: pure functions.

- :func:`wilson` — 95 % Wilson score interval of a proportion (an accuracy on n pins).
- :func:`mcnemar_midp` — McNemar's exact test and its mid-p on the discordant pins: are the
  pins only A gets right as many as the pins only B gets right?
- :func:`paired_bootstrap` — seeded percentile CI of the accuracy difference acc(A) - acc(B)
  (re-exported from :mod:`pinterest_mm.metrics`).
- :func:`above_midp` — one-sided binomial mid-p of an accuracy against a baseline share.
- :func:`holm` — Holm's step-down adjustment of several p-values.
- :func:`fmt_interval`, :func:`fmt_diff`, :func:`fmt_p` — the one formatting rule of every page and
  report: accuracies and differences 3 decimals, their 95 % bounds 2, p-values 3 significant digits.
- :func:`verdict` — holds / fails / inconclusive from an adjusted p-value and a direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _sp

from .metrics import BootstrapCI, paired_bootstrap  # noqa: F401 - one definition, re-exported

__all__ = ["ALPHA", "SMALL_TEST", "BootstrapCI", "PairedTest", "above_midp", "accuracy_interval", "add_intervals",
           "binom_midp", "fmt_diff", "fmt_interval", "fmt_p", "holm", "mcnemar_midp", "paired_bootstrap", "paired_test",
           "small_test_warning", "verdict", "wilson"]

Z95 = 1.959963984540054
ALPHA = 0.05
SMALL_TEST = 200  # fewer test pins than this: verdicts get a visible warning


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of the proportion k / n (95 % by default).

    Returns ``(low, high)``; ``(0.0, 1.0)`` when n is 0 (nothing is known).
    """
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return float(max(0.0, center - half)), float(min(1.0, center + half))


def accuracy_interval(accuracy: float, n: int) -> tuple[float, float]:
    """Wilson 95 % interval of an accuracy measured on n pins."""
    return wilson(int(round(accuracy * n)), n)


def fmt_interval(accuracy: float, n: int, digits: int = 3) -> str:
    """``"0.812 [0.71, 0.88]"``: an accuracy with its Wilson 95 % interval."""
    lo, hi = accuracy_interval(accuracy, n)
    return f"{accuracy:.{digits}f} [{lo:.2f}, {hi:.2f}]"


def fmt_diff(diff: float, low: float, high: float) -> str:
    """``"+0.012 [-0.05, +0.08]"``: a difference with its 95 % interval (same digits as :func:`fmt_interval`)."""
    return f"{diff:+.3f} [{low:+.2f}, {high:+.2f}]"


def fmt_p(p: float) -> str:
    """A p-value with 3 significant digits (``"0.0412"``, ``"1"``)."""
    return f"{p:.3g}"


@dataclass
class PairedTest:
    """McNemar's test of A vs B on the same pins.

    Attributes:
        b: Pins only A gets right.
        c: Pins only B gets right.
        n: Pins compared.
        diff: acc(A) - acc(B) = (b - c) / n.
        p_exact: Two-sided exact binomial p-value of b given b + c (p = 0.5).
        p_mid: Two-sided mid-p (the exact p less the probability of the observed count).
    """

    b: int
    c: int
    n: int
    diff: float
    p_exact: float
    p_mid: float


def mcnemar_midp(b: int, c: int, n: int | None = None) -> PairedTest:
    """McNemar's exact test and mid-p from the discordant counts b and c.

    Args:
        b: Pins only A gets right.
        c: Pins only B gets right.
        n: All pins compared (for ``diff``; default b + c).
    """
    m = b + c
    n = m if n is None else n
    if m == 0:
        return PairedTest(b, c, n, 0.0, 1.0, 1.0)
    k = min(b, c)
    tail = float(_sp.binom.cdf(k, m, 0.5))
    point = float(_sp.binom.pmf(k, m, 0.5))
    exact = min(1.0, 2 * tail)
    mid = min(1.0, 2 * (tail - 0.5 * point))
    return PairedTest(b, c, n, (b - c) / n if n else 0.0, exact, mid)


def paired_test(pred_a: np.ndarray, pred_b: np.ndarray, y: np.ndarray) -> PairedTest:
    """:func:`mcnemar_midp` of two models' predicted labels (n,) against labels y (n,)."""
    a = np.asarray(pred_a) == np.asarray(y)
    b = np.asarray(pred_b) == np.asarray(y)
    return mcnemar_midp(int((a & ~b).sum()), int((~a & b).sum()), len(a))


def binom_midp(k: int, n: int, p0: float) -> float:
    """Two-sided mid-p of k successes in n trials against the share p0 (doubling the smaller tail)."""
    if n == 0:
        return 1.0
    lower = float(_sp.binom.cdf(k, n, p0)) - 0.5 * float(_sp.binom.pmf(k, n, p0))
    upper = float(_sp.binom.sf(k, n, p0)) + 0.5 * float(_sp.binom.pmf(k, n, p0))
    return float(min(1.0, 2 * min(lower, upper)))


def above_midp(k: int, n: int, p0: float) -> float:
    """One-sided binomial mid-p that k successes in n trials exceed the share p0.

    P(X > k) + P(X = k) / 2 under X ~ Binomial(n, p0): small when k / n is clearly above p0
    (the test of a model's accuracy against the majority-class baseline); 1.0 when n is 0.
    """
    if n == 0:
        return 1.0
    return float(min(1.0, _sp.binom.sf(k, n, p0) + 0.5 * _sp.binom.pmf(k, n, p0)))


def holm(p_values) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order.

    The i-th smallest of m p-values is multiplied by (m - i + 1), made non-decreasing and
    capped at 1; compare each adjusted value with the family-wise level (5 %).
    """
    p = np.asarray(list(p_values), dtype=np.float64)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adj
    return out.tolist()


def verdict(diff: float, p_adjusted: float, alpha: float = ALPHA) -> str:
    """``holds`` (significant, diff > 0), ``fails`` (significant, diff < 0) or ``inconclusive``."""
    if p_adjusted < alpha and diff > 0:
        return "holds"
    if p_adjusted < alpha and diff < 0:
        return "fails"
    return "inconclusive"


def small_test_warning(n_test: int) -> str | None:
    """A warning when the test split is too small for firm verdicts, else None."""
    if n_test >= SMALL_TEST:
        return None
    return (f"Small test set: {n_test} test pins (< {SMALL_TEST}). Accuracy intervals are wide and "
            "most differences between models will be inconclusive.")


def add_intervals(tree, n: dict[str, int]):
    """Add Wilson 95 % intervals next to every accuracy in a JSON-like report, in place.

    Every dict with ``val_accuracy`` / ``test_accuracy`` / ``test_topk`` gets
    ``val_accuracy_ci`` / ``test_accuracy_ci`` ([low, high]) / ``test_topk_ci`` ([[low, high], ...]),
    with n = ``n["val"]`` or ``n["test"]`` pins. Returns ``tree``.
    """
    if isinstance(tree, list):
        for item in tree:
            add_intervals(item, n)
    elif isinstance(tree, dict):
        for split in ("val", "test"):
            v = tree.get(f"{split}_accuracy")
            if isinstance(v, (int, float)) and not isinstance(v, bool) and n.get(split):
                tree[f"{split}_accuracy_ci"] = list(accuracy_interval(float(v), n[split]))
        topk = tree.get("test_topk")
        if isinstance(topk, list) and topk and n.get("test"):
            tree["test_topk_ci"] = [list(accuracy_interval(float(v), n["test"])) for v in topk]
        for key, value in list(tree.items()):
            if isinstance(value, (dict, list)) and not key.endswith("_ci"):
                add_intervals(value, n)
    return tree
