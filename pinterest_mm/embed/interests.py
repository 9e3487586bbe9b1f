"""User interests from user vectors (001 §4.4.2, Table 3) and clusters of users (001 §4.5.1).

Interest labels come from the users' saves: a user is interested in a category when at
least ``threshold`` of their saves (in ``label_splits``) fall in it (:func:`pinterest_mm.users.interest_set`).
By default the labels come from the **held-out** (val + test) saves while every user vector
is made from train pins only, so the task is to predict interests shown in pins the vectors
never saw. Per category with enough positives and negatives, a linear SVM (C = 1) is scored
by F1 with 5-fold stratified cross-validation over users; the table gives the mean over
categories (macro) and the F1 of all pooled predictions (micro).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..users import interest_set
from .data import EmbedData


@dataclass(frozen=True)
class InterestConfig:
    """Settings of the user-interest task.

    Attributes:
        threshold: Share of a user's saves that makes a category an interest.
        label_splits: Whose saves define the labels.
        min_saves: Users with fewer saves there are left out.
        folds: Stratified CV folds; a category needs this many positives and negatives.
        C: The linear SVM's C (001: 1).
        seed: Of the folds and the random baseline.
    """

    threshold: float = 0.2
    label_splits: tuple[str, ...] = ("val", "test")
    min_saves: int = 3
    folds: int = 5
    C: float = 1.0
    seed: int = 0


def interest_labels(data: EmbedData, cfg: InterestConfig = InterestConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Per user with a vector: the binary interest labels.

    Returns:
        (user indices (U,) into ``data.users``, labels (U, C) bool).
    """
    s = data.saves[data.saves["split"].isin(cfg.label_splits) & (data.saves["user"] >= 0)]
    C = len(data.classes)
    K = len(data.users)
    counts = np.zeros((K, C))
    labels = data.pins["label"].to_numpy()[s["row"].to_numpy()]
    np.add.at(counts, (s["user"].to_numpy(), labels), 1.0)
    n = counts.sum(1)
    keep = np.flatnonzero(n >= cfg.min_saves)
    share = counts[keep] / n[keep, None]
    return keep, interest_set(share, "threshold", cfg.threshold)


def interest_f1(X: np.ndarray, Y: np.ndarray, cfg: InterestConfig = InterestConfig()) -> dict:
    """5-fold stratified CV F1 of a linear SVM per category, on user vectors.

    Args:
        X: (U, d) user vectors.
        Y: (U, C) bool labels.

    Returns:
        ``macro_f1`` (mean over scored categories), ``micro_f1`` (pooled), ``n_categories``
        scored, ``per_category`` (index -> F1).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    per, tp, fp, fn = {}, 0, 0, 0
    for c in range(Y.shape[1]):
        y = Y[:, c].astype(int)
        if min(y.sum(), len(y) - y.sum()) < cfg.folds:
            continue
        clf = make_pipeline(StandardScaler(), LinearSVC(C=cfg.C, max_iter=10_000))
        cv = StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed)
        with warnings.catch_warnings():  # liblinear's "failed to converge" on tiny folds: noise here
            warnings.simplefilter("ignore", ConvergenceWarning)
            p = cross_val_predict(clf, X, y, cv=cv)
        t = int(((p == 1) & (y == 1)).sum())
        f, n = int(((p == 1) & (y == 0)).sum()), int(((p == 0) & (y == 1)).sum())
        per[c] = 2 * t / max(2 * t + f + n, 1)
        tp, fp, fn = tp + t, fp + f, fn + n
    return {"macro_f1": float(np.mean(list(per.values()))) if per else float("nan"),
            "micro_f1": 2 * tp / max(2 * tp + fp + fn, 1) if per else float("nan"),
            "n_categories": len(per), "per_category": per}


def interest_table(data: EmbedData, user_vectors: dict[str, np.ndarray],
                   cfg: InterestConfig = InterestConfig()) -> pd.DataFrame:
    """F1 of each user representation (001 Table 3), with a random-vector baseline.

    Args:
        data: The dataset.
        user_vectors: Name -> (K, d) vectors of all users with a vector (e.g. the joint
            spaces' users, ``avg-text``, ``avg-image``).

    Returns:
        One row per representation: representation, users, categories, macro_f1, micro_f1.
    """
    idx, Y = interest_labels(data, cfg)
    rng = np.random.default_rng(cfg.seed)
    reps = {"random": rng.normal(size=(len(data.users), 32)).astype(np.float32), **user_vectors}
    rows = []
    for name, V in reps.items():
        r = interest_f1(np.asarray(V)[idx], Y, cfg)
        rows.append({"representation": name, "users": len(idx), "categories": r["n_categories"],
                     "macro_f1": r["macro_f1"], "micro_f1": r["micro_f1"]})
    return pd.DataFrame(rows)


def user_profiles(data: EmbedData, splits: tuple[str, ...] = ("train", "val", "test")) -> np.ndarray:
    """(K, C) each user's share of saves per category in ``splits``."""
    s = data.saves[data.saves["split"].isin(splits) & (data.saves["user"] >= 0)]
    P = np.zeros((len(data.users), len(data.classes)))
    np.add.at(P, (s["user"].to_numpy(), data.pins["label"].to_numpy()[s["row"].to_numpy()]), 1.0)
    return P / np.maximum(P.sum(1, keepdims=True), 1e-12)


def user_clusters(data: EmbedData, users: np.ndarray, pins: np.ndarray, k: int = 8, n_top: int = 3,
                  n_pins: int = 4, seed: int = 0) -> pd.DataFrame:
    """k-means clusters of user vectors (001 §4.5.1), each with its top categories and pins.

    Args:
        data: The dataset.
        users: (K, D) unit user vectors; pins: (N, D) unit pin vectors in the same space.
        k: Clusters (at most K).
        n_top: Categories named per cluster (by share of the members' saves).
        n_pins: Example pins per cluster: the pins nearest the cluster's centroid.

    Returns:
        One row per cluster (largest first): cluster, users, top_categories, example_pins
        (pin ids), example_categories.
    """
    from sklearn.cluster import KMeans

    K = len(users)
    if K == 0:
        return pd.DataFrame(columns=["cluster", "users", "top_categories", "example_pins", "example_categories"])
    k = max(1, min(k, K))
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(users)
    prof = user_profiles(data)
    names = np.asarray(data.classes, dtype=object)
    cats = data.pins["category"].astype(str).to_numpy()
    ids = data.pins["pin_id"].astype(str).to_numpy()
    rows = []
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        share = prof[members].mean(0)
        top = np.argsort(-share, kind="stable")[:n_top]
        centroid = km.cluster_centers_[c]
        near = np.argsort(-(pins @ centroid), kind="stable")[:n_pins]
        rows.append({"cluster": c, "users": len(members),
                     "top_categories": ", ".join(f"{names[t]} ({share[t]:.0%})" for t in top if share[t] > 0),
                     "example_pins": ", ".join(ids[near]), "example_categories": ", ".join(cats[near])})
    return pd.DataFrame(rows).sort_values("users", ascending=False, kind="stable").reset_index(drop=True)
