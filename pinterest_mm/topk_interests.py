"""Interests as a top-K recommendation (seed 003, Table 1 and Figs. 3-4).

For each user with held-out pins, recommend K categories: the K highest scores of the mean
fused probability vector of their held-out pins ("fused"), or of that mean mixed with the
user's history, the category distribution of their TRAIN pins ("fused + history",
``(1 - a) * fused + a * history``, ``a`` chosen on validation). The ground truth G of a user is
the set of categories of their held-out pins. With R the K recommended categories and
Ch = R & G, as 003 defines them per post (here per user):

- hit rate = min(1, |Ch|), precision = |Ch| / |R|, recall = |Ch| / |G|, each averaged over users;
- F1 = 2 P R / (P + R) of the averaged precision and recall (003's Table 1 satisfies this:
  P 0.340, R 0.334 -> F1 0.337).

K runs over 1..min(10, C); the K with the highest F1 is reported, as 003 reports K = 7.
Pure computation over arrays and the ``saves`` table; no database access.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .outputs import Outputs
from .stats import wilson
from .user_history import train_label_counts

KMAX = 10
ALPHA_GRID = tuple(round(a, 1) for a in np.linspace(0, 1, 11))
VARIANTS = ("fused", "fused + history")


def recommend(scores: np.ndarray, k: int) -> np.ndarray:
    """The k highest-scoring categories per user (ties: the lower class index first).

    Args:
        scores: Shape (U, C).
        k: How many (1 <= k <= C).

    Returns:
        Boolean mask of the recommended categories, shape (U, C), k True per row.
    """
    S = np.asarray(scores, np.float64)
    order = np.argsort(-S, axis=1, kind="stable")[:, :k]
    out = np.zeros(S.shape, dtype=bool)
    np.put_along_axis(out, order, True, axis=1)
    return out


def topk_scores(truth: np.ndarray, scores: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user hit, precision and recall of the top-k recommendation.

    Args:
        truth: Each user's ground-truth categories, boolean, shape (U, C), at least one True.
        scores: Recommendation scores, shape (U, C).
        k: Recommended categories per user.

    Returns:
        ``{"hit", "precision", "recall"}``, each shape (U,), float64.
    """
    rec = recommend(scores, k)
    ch = (rec & truth).sum(1).astype(np.float64)
    return {"hit": np.minimum(ch, 1.0), "precision": ch / k, "recall": ch / truth.sum(1)}


def curve(truth: np.ndarray, scores: np.ndarray, kmax: int = KMAX) -> pd.DataFrame:
    """Hit rate, precision, recall and F1 (of the means) for K = 1..min(kmax, C).

    Returns:
        One row per K: K, hit_rate, precision, recall, f1.
    """
    rows = []
    for k in range(1, min(kmax, truth.shape[1]) + 1):
        s = topk_scores(truth, scores, k)
        p, r = float(s["precision"].mean()), float(s["recall"].mean())
        rows.append({"K": k, "hit_rate": float(s["hit"].mean()), "precision": p, "recall": r,
                     "f1": 2 * p * r / (p + r) if p + r > 0 else 0.0})
    return pd.DataFrame(rows, columns=["K", "hit_rate", "precision", "recall", "f1"])


@dataclass
class TopKReport:
    """Top-K interest recommendation on the test users.

    Attributes:
        table: One row per (variant, K): variant, K, hit_rate, hit_low, hit_high (95 %
            Wilson interval over users), precision, recall, f1.
        best: Variant to its row of highest F1 (ties: the smaller K), as a dict.
        alpha: The history weight ``a`` chosen on validation (mean F1 over K).
        alpha_grid: Rows ``{"alpha", "val_mean_f1"}`` of every ``a`` tried.
        n_users: Test users scored.
        n_users_val: Validation users that chose ``a``.
        with_history: Share of test users with train pins (the others get the fused scores).
    """

    table: pd.DataFrame
    best: dict[str, dict]
    alpha: float
    alpha_grid: list[dict] = field(default_factory=list)
    n_users: int = 0
    n_users_val: int = 0
    with_history: float = 0.0

    def to_dict(self) -> dict:
        """JSON-able form."""
        return {"table": self.table.to_dict("records"), "best": self.best, "alpha": self.alpha,
                "alpha_grid": self.alpha_grid, "n_users": self.n_users, "n_users_val": self.n_users_val,
                "with_history": self.with_history}


def _split_users(outputs: Outputs, probs: np.ndarray, split: str, users: pd.Index, counts: np.ndarray):
    """(truth (U, C) bool, mean fused probs (U, C), history (U, C), has history (U,)) of a split's users."""
    saves = outputs.saves
    rows = saves[saves["split"] == split]
    C = outputs.n_classes
    codes, ids = pd.factorize(rows["user_id"], sort=True)
    U = len(ids)
    r = rows["split_row"].to_numpy(np.int64)
    truth = np.zeros((U, C), dtype=bool)
    truth[codes, np.asarray(outputs.y[split], np.int64)[r]] = True
    fused = np.zeros((U, C))
    np.add.at(fused, codes, np.asarray(probs, np.float64)[r])
    fused /= np.bincount(codes, minlength=U)[:, None]
    idx = users.get_indexer(ids)
    hist = np.where(idx[:, None] >= 0, counts[np.maximum(idx, 0)], 0.0)
    tot = hist.sum(1, keepdims=True)
    hist = np.divide(hist, tot, out=np.zeros_like(hist), where=tot > 0)
    return truth, fused, hist, tot[:, 0] > 0


def _mix(fused: np.ndarray, hist: np.ndarray, has: np.ndarray, a: float) -> np.ndarray:
    return np.where(has[:, None], (1 - a) * fused + a * hist, fused)


def topk_report(outputs: Outputs, probs: dict[str, np.ndarray], kmax: int = KMAX,
                alpha_grid: tuple[float, ...] = ALPHA_GRID) -> TopKReport:
    """Top-K interest recommendation of every test user, with and without their history.

    Args:
        outputs: Provides ``saves``, labels and classes.
        probs: ``{"val": (n_val, C), "test": (n_test, C)}`` fused probabilities, e.g. a
            :class:`~pinterest_mm.fusion.FusionResult`'s ``val_probs`` / ``test_probs``.
        kmax: Largest K (capped at C).
        alpha_grid: History weights tried on validation.

    Returns:
        The :class:`TopKReport`.

    Raises:
        ValueError: No users, or no user with test pins.
    """
    saves = outputs.saves
    if saves is None or len(saves) == 0:
        raise ValueError(f"Dataset {outputs.dataset!r} has no users (no user_id column in its manifest): "
                         "there are no users to recommend interests to.")
    if not (saves["split"] == "test").any():
        raise ValueError(f"Dataset {outputs.dataset!r} has no user with a test pin.")
    counts, users = train_label_counts(outputs)
    grid, alpha, n_val = [], 0.0, 0
    if (saves["split"] == "val").any():
        tv, fv, hv, has_v = _split_users(outputs, probs["val"], "val", users, counts)
        n_val = len(tv)
        for a in alpha_grid:
            grid.append({"alpha": float(a), "val_mean_f1": float(curve(tv, _mix(fv, hv, has_v, a), kmax)["f1"].mean())})
        alpha = max(grid, key=lambda g: (g["val_mean_f1"], -g["alpha"]))["alpha"]
    truth, fused, hist, has = _split_users(outputs, probs["test"], "test", users, counts)
    parts = []
    for name, scores in zip(VARIANTS, (fused, _mix(fused, hist, has, alpha))):
        c = curve(truth, scores, kmax)
        n = len(truth)
        ci = [wilson(int(round(h * n)), n) for h in c["hit_rate"]]
        c.insert(0, "variant", name)
        c.insert(3, "hit_low", [lo for lo, _ in ci])
        c.insert(4, "hit_high", [hi for _, hi in ci])
        parts.append(c)
    table = pd.concat(parts, ignore_index=True)
    best = {v: table[table["variant"] == v].sort_values(["f1", "K"], ascending=[False, True]).iloc[0].to_dict()
            for v in VARIANTS}
    return TopKReport(table, best, float(alpha), grid, n_users=len(truth),
                      n_users_val=n_val, with_history=float(has.mean()))


def format_topk_report(rep: TopKReport) -> str:
    """Plain-text table of a :class:`TopKReport` (one line per K, both variants side by side)."""
    from .textable import text_table

    t = rep.table
    a, b = (t[t["variant"] == v].reset_index(drop=True) for v in VARIANTS)
    rows = [[int(a["K"][i]), a["hit_rate"][i], a["precision"][i], a["recall"][i], a["f1"][i],
             b["hit_rate"][i], b["precision"][i], b["recall"][i], b["f1"][i]] for i in range(len(a))]
    head = (f"Top-K interests (003 Table 1): {rep.n_users} test users, history weight a = {rep.alpha:g} "
            f"(chosen on {rep.n_users_val} validation users), {rep.with_history:.0%} of test users have train pins")
    best = "; ".join(f"{v}: best K = {int(r['K'])}, F1 {r['f1']:.3f}" for v, r in rep.best.items())
    return "\n".join([head, text_table(["K", "hit", "prec", "rec", "F1", "hit+h", "prec+h", "rec+h", "F1+h"], rows), best])
