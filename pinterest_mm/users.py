"""User interest profiles: true (share of a user's pins per category) vs predicted (from fused
probabilities), compared per user by top-k interest recall, Jensen-Shannon distance and a
user-level F1 over interest sets (after 001, where a user's interests are binary labels).

Pure computation over arrays and the ``saves`` table; no database access.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.spatial.distance import jensenshannon

from .outputs import Outputs


def predict_profile(probs: np.ndarray, mode: str = "mean") -> np.ndarray:
    """Interest profile of a set of pins.

    Args:
        probs: Probabilities of the pins, shape (n, C).
        mode: ``mean`` (mean probability vector) or ``top1`` (share of top-1 predictions).

    Returns:
        Profile, shape (C,), summing to 1 (zeros for n = 0).
    """
    probs = np.asarray(probs, dtype=np.float64)
    C = probs.shape[1]
    if len(probs) == 0:
        return np.zeros(C)
    if mode == "mean":
        p = probs.mean(0)
    elif mode == "top1":
        p = np.bincount(probs.argmax(1), minlength=C).astype(np.float64)
    else:
        raise ValueError("mode must be 'mean' or 'top1'")
    return p / p.sum()


def interest_set(profile: np.ndarray, rule: str = "threshold", threshold: float = 0.1, k: int = 3) -> np.ndarray:
    """Boolean interest set(s) from profile(s).

    Args:
        profile: Shape (C,) or (U, C).
        rule: ``threshold`` (share >= threshold) or ``topk`` (the k largest non-zero shares,
            ties to the lower class index).
        threshold: Share threshold.
        k: Set size for ``topk``.

    Returns:
        Boolean mask of the same shape.
    """
    P = np.atleast_2d(np.asarray(profile, dtype=np.float64))
    if rule == "threshold":
        out = P >= threshold
    elif rule == "topk":
        order = np.argsort(-P, axis=1, kind="stable")[:, :k]
        out = np.zeros_like(P, dtype=bool)
        np.put_along_axis(out, order, True, axis=1)
        out &= P > 0
    else:
        raise ValueError("rule must be 'threshold' or 'topk'")
    return out if np.ndim(profile) == 2 else out[0]


def topk_recall(true: np.ndarray, pred: np.ndarray, k: int = 3) -> np.ndarray:
    """Per user: of the true top-k categories, the share found in the predicted top-k.

    A user with fewer than k categories is scored on those (k_u = min(k, #non-zero)).

    Args:
        true: True profiles, shape (U, C).
        pred: Predicted profiles, shape (U, C).

    Returns:
        Recall per user, shape (U,) (NaN for a user with no pins).
    """
    t = interest_set(true, "topk", k=k)
    p = interest_set(pred, "topk", k=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (t & p).sum(1) / t.sum(1)


def set_f1(true_set: np.ndarray, pred_set: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row precision, recall and F1 of boolean sets, shape (U, C) each -> (U,) x 3 (0 if empty)."""
    tp = (true_set & pred_set).sum(1).astype(np.float64)
    npred, ntrue = pred_set.sum(1), true_set.sum(1)
    prec = np.divide(tp, npred, out=np.zeros_like(tp), where=npred > 0)
    rec = np.divide(tp, ntrue, out=np.zeros_like(tp), where=ntrue > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros_like(tp), where=(prec + rec) > 0)
    return prec, rec, f1


@dataclass
class UserReport:
    """Per-user comparison of true and predicted interest profiles.

    Attributes:
        users: User ids, length U, in the order of the arrays.
        true: True profiles, shape (U, C).
        pred: Predicted profiles, shape (U, C).
        table: One row per user: user_id, n_pins, topk_recall, js_distance, precision,
            recall, f1, true_top, pred_top (category names); sorted best first (f1 desc,
            js_distance asc).
        summary: Means over users of the scores, plus micro F1 and the settings.
    """

    users: list
    true: np.ndarray
    pred: np.ndarray
    table: pd.DataFrame
    summary: dict

    def best(self, n: int = 10) -> pd.DataFrame:
        """The n best users."""
        return self.table.head(n)

    def worst(self, n: int = 10) -> pd.DataFrame:
        """The n worst users (worst first)."""
        return self.table.tail(n).iloc[::-1]

    def ordered(self, order: str = "best") -> pd.DataFrame:
        """The table in one of :data:`USER_ORDERS`: ``best`` (f1 desc, JS distance asc),
        ``worst`` (the reverse) or ``most_pins`` (n_pins desc, then best)."""
        if order == "best":
            return self.table
        if order == "worst":
            return self.table.iloc[::-1].reset_index(drop=True)
        if order == "most_pins":
            return self.table.sort_values("n_pins", ascending=False, kind="stable").reset_index(drop=True)
        raise ValueError(f"Unknown user order {order!r}: use one of {', '.join(USER_ORDERS)}.")


USER_ORDERS = ("best", "worst", "most_pins")


def user_report(
    outputs: Outputs,
    probs: dict[str, np.ndarray],
    splits: tuple[str, ...] = ("test",),
    mode: str = "mean",
    k: int = 3,
    set_rule: str = "threshold",
    threshold: float = 0.1,
    min_pins: int = 1,
) -> UserReport:
    """Compare each user's true and predicted interest profiles.

    Args:
        outputs: Provides ``saves`` (pin_id, user_id, split, split_row, label) and classes.
        probs: Split to fused probabilities (n_split, C), e.g. ``{"val": r.val_probs,
            "test": r.test_probs}`` of a FusionResult.
        splits: Which splits' pins count (default test; ``("val", "test")`` for all
            held-out pins).
        mode: Predicted profile: ``mean`` probabilities or ``top1`` prediction counts.
        k: k of the top-k interest recall (and of the ``topk`` set rule).
        set_rule: Interest sets for F1: ``threshold`` (share >= threshold) or ``topk``.
        threshold: Share threshold of the ``threshold`` rule.
        min_pins: Users with fewer pins in the chosen splits are left out.

    Returns:
        The :class:`UserReport`.

    Raises:
        ValueError: The dataset has no users (no ``saves``).
    """
    saves = outputs.saves
    if saves is None or len(saves) == 0:
        raise ValueError(f"Dataset {outputs.dataset!r} has no users (no saves).")
    C = outputs.n_classes
    rows = saves[saves["split"].isin(splits)]
    offsets, P_parts, offset = {}, [], 0
    for s in splits:
        P_parts.append(np.asarray(probs[s], np.float64))
        offsets[s] = offset
        offset += len(probs[s])
    if offset == 0 or len(rows) == 0:
        raise ValueError("No pins in the chosen splits.")
    P = np.concatenate(P_parts)
    gidx = (rows["split_row"].to_numpy(np.int64) + rows["split"].map(offsets).to_numpy(np.int64))
    codes, users = pd.factorize(rows["user_id"], sort=True)
    U = len(users)
    n_pins = np.bincount(codes, minlength=U)
    keep = n_pins >= min_pins
    ind = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(U, len(codes)))
    labels = rows["label"].to_numpy(np.int64)
    true = np.zeros((U, C))
    np.add.at(true, (codes, labels), 1.0)
    if mode == "mean":
        pred = np.asarray(ind @ P[gidx])
    elif mode == "top1":
        pred = np.zeros((U, C))
        np.add.at(pred, (codes, P[gidx].argmax(1)), 1.0)
    else:
        raise ValueError("mode must be 'mean' or 'top1'")
    true, pred, n_pins, users = true[keep], pred[keep], n_pins[keep], list(users[keep])
    true /= np.maximum(true.sum(1, keepdims=True), 1e-12)
    pred /= np.maximum(pred.sum(1, keepdims=True), 1e-12)
    rec_k = topk_recall(true, pred, k)
    js = np.array([jensenshannon(t, p, base=2) for t, p in zip(true, pred)]) if len(users) else np.zeros(0)
    ts = interest_set(true, set_rule, threshold, k)
    ps = interest_set(pred, set_rule, threshold, k)
    prec, rec, f1 = set_f1(ts, ps)
    names = np.asarray(outputs.classes, dtype=object)
    table = pd.DataFrame({
        "user_id": users,
        "n_pins": n_pins,
        "topk_recall": rec_k,
        "js_distance": js,
        "precision": prec,
        "recall": rec,
        "f1": f1,
        "true_top": [", ".join(names[np.argsort(-t, kind="stable")[:k]]) for t in true],
        "pred_top": [", ".join(names[np.argsort(-p, kind="stable")[:k]]) for p in pred],
    }).sort_values(["f1", "js_distance"], ascending=[False, True], kind="stable").reset_index(drop=True)
    tp = (ts & ps).sum()
    micro = 2 * tp / max(ts.sum() + ps.sum(), 1)
    summary = {
        "n_users": len(users),
        "splits": list(splits),
        "mode": mode,
        "k": k,
        "set_rule": set_rule,
        "threshold": threshold,
        "mean_topk_recall": float(np.nanmean(rec_k)) if len(users) else float("nan"),
        "mean_js_distance": float(np.mean(js)) if len(users) else float("nan"),
        "mean_f1": float(np.mean(f1)) if len(users) else float("nan"),
        "micro_f1": float(micro),
    }
    return UserReport(users, true, pred, table, summary)


def user_pin_predictions(outputs: Outputs, probs: dict[str, np.ndarray], user: str,
                         splits: tuple[str, ...] = ("test",)) -> pd.DataFrame:
    """One user's saved pins in ``splits`` with the fusion's top-1 prediction for each.

    Args:
        outputs: The probability cache (its ``saves``).
        probs: Split to fused probabilities (n_split, C) (e.g. a fusion's val/test probs).
        user: The user id (compared as text).
        splits: Held-out splits to list.

    Returns:
        Columns pin_id, split, category (predicted) and probability, in save order.
    """
    saves = outputs.saves if outputs.saves is not None else pd.DataFrame(columns=["user_id", "split"])
    mine = saves[(saves["user_id"].astype(str) == str(user)) & saves["split"].isin(splits)]
    rows = []
    for pin_id, split, row in zip(mine["pin_id"], mine["split"], mine["split_row"]):
        p = probs[split][int(row)]
        j = int(p.argmax())
        rows.append({"pin_id": pin_id, "split": split, "category": outputs.classes[j], "probability": float(p[j])})
    return pd.DataFrame(rows, columns=["pin_id", "split", "category", "probability"])
