"""Nearest neighbours in a joint space, and everything the Search page shows.

Pins and users are searched through :func:`~pinterest_mm.embed.index.build_index`: exact
NumPy search (one matrix product of unit vectors and a partial sort) below
``IndexConfig.exact_below`` vectors, a tuned faiss index above, saved in the space's
``index/`` folder and reused on the next load (see :mod:`.index`, :mod:`.index_files` and
``pinterest-mm bench index`` for the measurements). The page only draws what
:class:`SearchContext` and the helpers here return."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..store import Store, validate_name
from .index import ExactIndex, IndexConfig, build_index
from .space import JointSpace, run_inference, unit

DEFAULT_SPACES = ("embed-0.1-0.45", "embed-0.33-0.33")  # the page opens the first one present


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
    return ExactIndex(matrix).search(query, k, exclude)


def spaces_dir(store: Store, dataset: str) -> Path:
    """The folder whose ``embed-*`` subfolders hold a dataset's spaces."""
    return store.root / "checkpoints" / validate_name(dataset)


def available_spaces(store: Store, dataset: str) -> list[str]:
    """Tags of the finished spaces of a dataset (``embed-<l1>-<l2>``), sorted."""
    folder = spaces_dir(store, dataset)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.glob("embed-*") if (p / "space.json").exists())


def space_stamps(store: Store, dataset: str) -> dict[str, int]:
    """Tag -> modification time (ns) of each finished space (a retrained space gets a new one)."""
    folder = spaces_dir(store, dataset)
    return {t: (folder / t / "space.json").stat().st_mtime_ns for t in available_spaces(store, dataset)}


def default_space(tags: list[str]) -> str:
    """The space the page opens: the first of :data:`DEFAULT_SPACES` present, else the first tag."""
    return next((t for t in DEFAULT_SPACES if t in tags), tags[0])


def space_label(tag: str) -> str:
    """A tag with its text encoder spelled out, for the space picker."""
    return f"{tag} (MiniLM text encoder)" if tag.endswith("-minilm") else f"{tag} (word-vector CNN text encoder)"


@dataclass
class QueryResult:
    """The answer to one query of the Search page.

    Attributes:
        pins, users: The nearest pins and users (see :meth:`SearchContext.search`); empty
            when nothing could be embedded.
        used: What the query was made of (``text``, ``image``).
        warnings: Why a part of the query was left out.
        search_ms: Time of the nearest-neighbour search itself.
        n_pins: Pins searched; index: the pin index's kind (``exact``, ``flat``, ``ivf``, ``hnsw``).
    """

    pins: pd.DataFrame
    users: pd.DataFrame
    used: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    search_ms: float = 0.0
    n_pins: int = 0
    index: str = "exact"

    @property
    def empty(self) -> bool:
        return not self.used

    @property
    def caption(self) -> str:
        how = "exact search" if self.index in ("exact", "flat") else f"approximate ({self.index.upper()}) search"
        return (f"Nearest to the {' + '.join(self.used)} · {how} {self.search_ms:.0f} ms over "
                f"{self.n_pins:,} pins")


@dataclass
class SearchContext:
    """A space with its pins and saves, ready to answer queries.

    Attributes:
        space: The joint space.
        pins: Pins in row order (pin_id, category, description, image, split, label).
        saves: (pin_id, user_id, row) of every save.
        classes: Category names.
        pin_vecs: (N, D) one unit vector per pin; user_vecs: (K, D).
        index_config: How the pin and user indexes are chosen (exact below a size).
        index_dir: Where a built approximate index is kept and found again (None: not kept).
    """

    space: JointSpace
    pins: pd.DataFrame
    saves: pd.DataFrame
    classes: list[str]
    pin_vecs: np.ndarray
    user_vecs: np.ndarray
    index_config: IndexConfig = IndexConfig()
    index_dir: Path | None = None

    def _cache(self, name: str) -> Path | None:
        return None if self.index_dir is None else Path(self.index_dir) / name

    @property
    def has_users(self) -> bool:
        return len(self.space.user_ids) > 0

    @cached_property
    def pin_index(self):
        """The pins' index, tuned (when approximate) on the space's own text and image vectors,
        the kind of vectors queries bring."""
        sp = self.space
        queries = np.concatenate([sp.text[sp.has_text], sp.image[sp.has_image]])
        return build_index(self.pin_vecs, self.index_config, queries=queries, cache=self._cache("pins"))

    @cached_property
    def user_index(self):
        return build_index(self.user_vecs, self.index_config, cache=self._cache("users"))

    @property
    def caption(self) -> str:
        """One line about the space: width, lambdas, sizes, text encoder, chosen epoch, index."""
        sp = self.space
        enc = "MiniLM sentences" if sp.text_encoder == "minilm" else "word-vector CNN"
        return (f"D = {sp.dim}, lambdas {tuple(sp.meta.get('weights', []))}, text encoder: {enc}, "
                f"{len(sp.pin_ids):,} pins, {len(sp.user_ids):,} users; epoch {sp.meta.get('best_epoch')} "
                f"chosen on validation; {self.pin_index.kind} pin search.")

    def users_by_saves(self) -> list[tuple[str, int]]:
        """(user id, number of saves) of every user with a vector, most saves first, ties by id."""
        n = self.saves.groupby("user_id").size()
        return sorted(((u, int(n.get(u, 0))) for u in self.space.user_ids), key=lambda x: (-x[1], x[0]))

    def query(self, text: str = "", image=None, image_encoder: Callable[[], Any] | None = None,
              k: int = 12) -> QueryResult:
        """Embed a text and/or an image (PIL, already checked) and search with their sum.

        Args:
            text: A description (blank: none).
            image: An RGB PIL image or None.
            image_encoder: Returns the backbone of the space's ``image_model`` (called only
                when there is an image; the page caches it).
            k: Pins and users to return.
        """
        parts, used, warnings = [], [], []
        if str(text or "").strip():
            v = self.space.embed_texts([text])[0]
            if np.any(v):
                parts.append(v)
                used.append("text")
            elif self.space.text_encoder == "minilm":
                warnings.append("This text is empty once cleaned (URLs removed); try other words.")
            else:
                warnings.append("None of the words of this text is known to the space's word vectors; "
                                "try other words.")
        if image is not None:
            if image_encoder is None:
                raise ValueError("An image query needs image_encoder (the space's backbone).")
            enc = image_encoder()
            feats = run_inference(lambda: enc.featurize(images=[image]))
            parts.append(self.space.embed_image_features(feats)[0])
            used.append("image")
        if not parts:
            return QueryResult(self.pins_table(np.zeros(0, int), np.zeros(0)), self.users_table([], []),
                               used, warnings, 0.0, len(self.pins), self.pin_index.kind)
        import time

        t0 = time.perf_counter()
        pins, users = self.search(np.sum(parts, axis=0), k=k)
        ms = (time.perf_counter() - t0) * 1000
        return QueryResult(pins, users, used, warnings, ms, len(self.pins), self.pin_index.kind)

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
        pi, ps = self.pin_index.search(q, k)
        ui, us = self.user_index.search(q, k) if self.has_users else (np.zeros(0, int), np.zeros(0))
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
        pi, ps = self.pin_index.search(q, k)
        pins = self.pins_table(pi, ps)
        own = set(self.pins["pin_id"].to_numpy()[self._rows_of_user.get(user_id, [])])
        pins.insert(1, "own_save", pins["pin_id"].isin(own))
        ui, us = self.user_index.search(q, k, exclude=np.array([u]))
        return pins, self.users_table(ui, us)


def load_context(store: Store, dataset: str, tag: str, index_config: IndexConfig = IndexConfig()) -> SearchContext:
    """Load a finished space and the pins/saves it answers with, its indexes built (an
    approximate index is read from the space's ``index/`` folder when it was saved there for
    these vectors and settings, else built and saved there).

    Raises:
        FileNotFoundError: No finished space ``tag`` (train it with ``pinterest-mm embed``).
    """
    folder = spaces_dir(store, dataset) / validate_name(tag, "space")
    space = JointSpace.load(folder)
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
    ctx = SearchContext(space, pins, saves, store.classes(dataset), space.pin_vectors(), unit(space.users),
                        index_config, folder / "index")
    _ = (ctx.pin_index, ctx.user_index)  # built now, while the caller shows its loading message
    return ctx


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


def map_caption(m: pd.DataFrame) -> str:
    """What :func:`map_2d`'s frame shows, in one line."""
    n_pins, n_users = int((m["kind"] == "pin").sum()), int((m["kind"] == "user").sum())
    return (f"PCA of {n_pins:,} pins (a seeded sample when there are more than 3,000) and {n_users:,} "
            "users; a user is coloured by their top category.")


def image_encoder(image_model: str):
    """The backbone that turns new images into the features a space was trained on."""
    from ..models.registry import get_model

    return get_model(image_model).create()
