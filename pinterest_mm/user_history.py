"""A user's history as a feature of their pins (after 003, which adds the user's previous posts).

The history of a user is the category distribution of the pins they saved in the TRAIN split;
labels of validation and test pins never enter it. A pin's history vector is the mean of the
histories of the users who saved it. For a train pin its own label is left out of its savers'
histories (leave-one-out), so a model trained on train pins cannot read a pin's label off its
history. A pin whose savers have no (other) train pins has no history (``has`` is False).

Pure computation over the ``saves`` table; no database access.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .outputs import SPLITS, Outputs


@dataclass
class UserHistory:
    """History vectors of every pin of one dataset.

    Attributes:
        vectors: Split to the pins' history distributions, shape (n_split, C), float32;
            rows sum to 1 where ``has`` is True and are zero elsewhere.
        has: Split to whether the pin has a history, shape (n_split,), bool.
        counts: Train-label counts per user, shape (U, C), float64 (``users`` order).
        users: User ids with at least one train pin, length U.
    """

    vectors: dict[str, np.ndarray]
    has: dict[str, np.ndarray]
    counts: np.ndarray
    users: list


def train_label_counts(outputs: Outputs) -> tuple[np.ndarray, pd.Index]:
    """Per user, how many of their saved TRAIN pins fall in each category.

    Labels come from ``outputs.y["train"]`` through each save's ``split_row``; no other
    split is read.

    Returns:
        (counts of shape (U, C), float64; the users as a pandas Index, length U).
    """
    saves = _saves(outputs)
    train = saves[saves["split"] == "train"]
    users = pd.Index(pd.unique(train["user_id"]))
    counts = np.zeros((len(users), outputs.n_classes))
    if len(train):
        labels = np.asarray(outputs.y["train"], np.int64)[train["split_row"].to_numpy(np.int64)]
        np.add.at(counts, (users.get_indexer(train["user_id"]), labels), 1.0)
    return counts, users


def user_history(outputs: Outputs) -> UserHistory:
    """Every pin's history vector from its savers' train pins (see the module docstring).

    Args:
        outputs: Provides ``saves`` (pin_id, user_id, split, split_row), ``y["train"]``
            and the number of classes C.

    Returns:
        The :class:`UserHistory`; a dataset without users gives every pin no history.
    """
    C = outputs.n_classes
    counts, users = train_label_counts(outputs)
    saves = _saves(outputs)
    vectors, has = {}, {}
    for split in SPLITS:
        n = len(outputs.y[split])
        rows = saves[saves["split"] == split]
        r = rows["split_row"].to_numpy(np.int64)
        u = users.get_indexer(rows["user_id"]) if len(rows) else np.zeros(0, np.int64)
        known = u >= 0
        r, u = r[known], u[known]
        vec = counts[u].copy()  # (n_saves, C)
        if split == "train" and len(r):  # leave the pin's own label out of its savers' histories
            vec[np.arange(len(r)), np.asarray(outputs.y["train"], np.int64)[r]] -= 1.0
        tot = vec.sum(1)
        ok = tot > 0
        acc = np.zeros((n, C))
        np.add.at(acc, r[ok], vec[ok] / tot[ok, None])
        k = np.bincount(r[ok], minlength=n)
        has[split] = k > 0
        vectors[split] = np.divide(acc, k[:, None], out=np.zeros_like(acc), where=k[:, None] > 0).astype(np.float32)
    return UserHistory(vectors, has, counts, list(users))


def _saves(outputs: Outputs) -> pd.DataFrame:
    if outputs.saves is None:
        return pd.DataFrame({"pin_id": [], "user_id": [], "split": [], "split_row": np.zeros(0, np.int64)})
    return outputs.saves
