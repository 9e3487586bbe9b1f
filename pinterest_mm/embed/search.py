"""Nearest neighbours in a joint space, for the Search page.

Exact search: one matrix product of unit vectors (cosine) and a partial sort
(``argpartition``), in NumPy. Measured on 2 busy CPU cores with D = 256 (see
``benchmarks/bench_embed_search.py``), it stays far below the page's 300 ms budget up to the
~200,000 vectors it is meant for; see the README for the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..store import Store, validate_name
from .space import JointSpace, unit


def nearest(matrix: np.ndarray, query: np.ndarray, k: int = 10, exclude: np.ndarray | None = None):
    """The k rows of ``matrix`` most similar to ``query`` (both unit vectors).

    Args:
        matrix: (N, D) unit rows.
        query: (D,) unit vector.
        k: How many.
        exclude: Row indices never returned.

    Returns:
        (indices (k',), cosine similarities (k',)), best first (k' <= k).
    """
    s = matrix @ np.asarray(query, np.float32)
    if exclude is not None and len(exclude):
        s = s.copy()
        s[np.asarray(exclude)] = -np.inf
    k = min(k, int(np.isfinite(s).sum()))
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    top = np.argpartition(-s, k - 1)[:k]
    top = top[np.argsort(-s[top], kind="stable")]
    return top, s[top]


def spaces_dir(store: Store, dataset: str) -> Path:
    """The folder whose ``embed-*`` subfolders hold a dataset's spaces."""
    return store.root / "checkpoints" / validate_name(dataset)


def available_spaces(store: Store, dataset: str) -> list[str]:
    """Tags of the finished spaces of a dataset (``embed-<l1>-<l2>``), sorted."""
    folder = spaces_dir(store, dataset)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.glob("embed-*") if (p / "space.json").exists())


@dataclass
class SearchContext:
    """A space with its pins and saves, ready to answer queries.

    Attributes:
        space: The joint space.
        pins: Pins in row order (pin_id, category, description, image, split, label).
        saves: (pin_id, user_id, row) of every save.
        classes: Category names.
        pin_vecs: (N, D) one unit vector per pin; user_vecs: (K, D).
    """

    space: JointSpace
    pins: pd.DataFrame
    saves: pd.DataFrame
    classes: list[str]
    pin_vecs: np.ndarray
    user_vecs: np.ndarray

    @property
    def has_users(self) -> bool:
        return len(self.space.user_ids) > 0

    def pins_table(self, idx: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        """Rows of pins with their similarity."""
        t = self.pins.iloc[idx][["pin_id", "category", "description", "image", "split"]].copy()
        t.insert(0, "similarity", np.round(scores, 3))
        return t.reset_index(drop=True)

    @cached_property
    def user_summary(self) -> pd.DataFrame:
        """Per user id: saves (count) and top_categories (the 3 largest shares), computed once."""
        s = self.saves.assign(category=self.pins["category"].astype(str).to_numpy()[self.saves["row"].to_numpy()])
        counts = s.groupby(["user_id", "category"]).size().rename("n").reset_index()
        counts = counts.sort_values(["user_id", "n", "category"], ascending=[True, False, True], kind="stable")
        top = counts.groupby("user_id")["category"].apply(lambda c: ", ".join(c.head(3)))
        return pd.DataFrame({"saves": s.groupby("user_id").size(), "top_categories": top})

    def users_table(self, idx: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        """Rows of users with their similarity, saves and top categories."""
        ids = [self.space.user_ids[i] for i in idx]
        summ = self.user_summary.reindex(ids)
        return pd.DataFrame({"user_id": ids, "similarity": np.round(scores, 3),
                             "saves": summ["saves"].fillna(0).astype(int).to_numpy(),
                             "top_categories": summ["top_categories"].fillna("").to_numpy()})

    def search(self, query: np.ndarray, k: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
        """A query vector (D,) -> (nearest pins, nearest users)."""
        q = unit(np.asarray(query, np.float32)[None])[0]
        pi, ps = nearest(self.pin_vecs, q, k)
        ui, us = nearest(self.user_vecs, q, k) if self.has_users else (np.zeros(0, int), np.zeros(0))
        return self.pins_table(pi, ps), self.users_table(ui, us)

    @cached_property
    def _rows_of_user(self) -> dict:
        return {u: g.to_numpy() for u, g in self.saves.groupby("user_id")["row"]}

    def profile(self, user_id: str) -> pd.Series:
        """A user's share of saves per category (largest first, ties by name; non-zero only)."""
        rows = self._rows_of_user.get(user_id, np.zeros(0, np.int64))
        cats = pd.Series(self.pins["category"].astype(str).to_numpy()[rows])
        vc = cats.value_counts(normalize=True).rename("share")
        return vc.iloc[np.lexsort((vc.index.to_numpy(), -vc.to_numpy()))]

    def user_view(self, user_id: str, k: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(pins nearest the user, with ``own_save`` marked; the user's nearest users)."""
        u = self.space.user_ids.index(user_id)
        q = self.user_vecs[u]
        pi, ps = nearest(self.pin_vecs, q, k)
        pins = self.pins_table(pi, ps)
        own = set(self.pins["pin_id"].to_numpy()[self._rows_of_user.get(user_id, [])])
        pins.insert(1, "own_save", pins["pin_id"].isin(own))
        ui, us = nearest(self.user_vecs, q, k, exclude=np.array([u]))
        return pins, self.users_table(ui, us)


def load_context(store: Store, dataset: str, tag: str) -> SearchContext:
    """Load a finished space and the pins/saves it answers with.

    Raises:
        FileNotFoundError: No finished space ``tag`` (train it with ``pinterest-mm embed``).
    """
    space = JointSpace.load(spaces_dir(store, dataset) / validate_name(tag, "space"))
    if space is None:
        raise FileNotFoundError(f"No joint space {tag!r} for {dataset!r}: run `pinterest-mm embed {dataset}`.")
    pins = store.pins(dataset).reset_index(drop=True)
    if pins["pin_id"].astype(str).tolist() != space.pin_ids:
        raise FileNotFoundError(f"The joint space {tag!r} was trained on another import of {dataset!r}: "
                                f"run `pinterest-mm embed {dataset}` again.")
    row_of = pd.Series(np.arange(len(pins)), index=pins["pin_id"].astype(str).to_numpy())
    saves = store.saves(dataset)[["pin_id", "user_id"]].drop_duplicates()
    saves = saves.assign(pin_id=saves["pin_id"].astype(str), user_id=saves["user_id"].astype(str))
    saves["row"] = row_of.loc[saves["pin_id"].to_numpy()].to_numpy()
    return SearchContext(space, pins, saves, store.classes(dataset), space.pin_vectors(), unit(space.users))


def map_2d(ctx: SearchContext, max_pins: int = 3000, seed: int = 0) -> pd.DataFrame:
    """A 2-D PCA map of pins (a seeded sample of at most ``max_pins``) and all users.

    Returns:
        Columns x, y, kind (``pin``/``user``), category (a user's: their top category), name
        (pin id or user id), text (description; a user's top categories).
    """
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    n = len(ctx.pins)
    idx = np.sort(rng.choice(n, max_pins, replace=False)) if n > max_pins else np.arange(n)
    X = np.concatenate([ctx.pin_vecs[idx], ctx.user_vecs])
    xy = PCA(n_components=2, random_state=seed).fit_transform(X) if len(X) >= 2 else np.zeros((len(X), 2))
    p = ctx.pins.iloc[idx]
    prof = [ctx.profile(u) for u in ctx.space.user_ids]
    return pd.DataFrame({
        "x": xy[:, 0], "y": xy[:, 1],
        "kind": ["pin"] * len(idx) + ["user"] * len(ctx.space.user_ids),
        "category": p["category"].astype(str).tolist() + [str(s.index[0]) if len(s) else "" for s in prof],
        "name": p["pin_id"].astype(str).tolist() + list(ctx.space.user_ids),
        "text": p["description"].astype(str).str.slice(0, 120).tolist()
        + [", ".join(s.head(3).index) for s in prof],
    })


def image_encoder(image_model: str):
    """The backbone that turns new images into the features a space was trained on."""
    from ..models.registry import get_model

    return get_model(image_model).create()
