"""Nearest-neighbour indexes over unit vectors (cosine), chosen by size.

- Below ``IndexConfig.exact_below`` vectors (200,000 by default): :class:`ExactIndex`, one
  matrix product and a partial sort in NumPy: exact, no build time.
- From there on: :class:`IVFIndex`, an inverted file (IVF-Flat): k-means (scikit-learn's
  ``MiniBatchKMeans``, fitted on a seeded sample) splits the vectors into ``nlist`` lists stored
  contiguously; a query scans only the ``nprobe`` lists whose centroids are nearest, exactly.
  ``nprobe`` is tuned at build time by measurement: the smallest (of 1, 2, 4, ...) whose
  recall@k against exact search on sample queries reaches ``target_recall`` (0.95).

faiss (``faiss-cpu``) is not a dependency (it is not installed in the lab's environment); the
same IVF-Flat scheme is built from scikit-learn and NumPy here. The threshold and the figures
come from ``pinterest-mm bench index`` (see :mod:`.index_bench` and the README).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IndexConfig:
    """How an index is chosen and tuned.

    Attributes:
        exact_below: Exact search below this many vectors, IVF from there on.
        nlist: IVF lists (None: ``sqrt(N)``, at least 8).
        target_recall: Recall@k against exact search that the tuned ``nprobe`` must reach.
        k: The k of that recall (10).
        calibration_queries: Sample queries used to tune ``nprobe``.
        train_per_list: k-means is fitted on ``train_per_list * nlist`` sampled vectors.
        seed: Of the samples and of k-means.
    """

    exact_below: int = 200_000
    nlist: int | None = None
    target_recall: float = 0.95
    k: int = 10
    calibration_queries: int = 200
    train_per_list: int = 40
    seed: int = 0

    def __post_init__(self) -> None:
        if self.exact_below < 0 or not 0 < self.target_recall <= 1 or self.k < 1:
            raise ValueError(f"IndexConfig: need exact_below >= 0, 0 < target_recall <= 1 and k >= 1 "
                             f"(got {self.exact_below}, {self.target_recall}, {self.k}).")


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest finite scores, best first (ties: lower position first)."""
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.zeros(0, np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.lexsort((top, -scores[top]))]


class ExactIndex:
    """Exact search over (N, D) unit rows.

    Args:
        vectors: (N, D) float32 unit rows (kept by reference).
    """

    kind = "exact"

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = np.asarray(vectors, np.float32)

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, query: np.ndarray, k: int = 10, exclude: np.ndarray | None = None):
        """The k rows most similar to ``query`` (D,): (indices (k',), similarities (k',)), best first."""
        s = self.vectors @ np.asarray(query, np.float32)
        if exclude is not None and len(exclude):
            s[np.asarray(exclude)] = -np.inf
        top = _top(s, k)
        return top, s[top]

    def search_many(self, queries: np.ndarray, k: int = 10, chunk: int = 32) -> list[np.ndarray]:
        """Exact top-k indices for each of ``queries`` (m, D), a few queries per matrix product."""
        out = []
        for a in range(0, len(queries), chunk):
            S = np.asarray(queries[a:a + chunk], np.float32) @ self.vectors.T
            out += [_top(s, k) for s in S]
        return out

    def describe(self) -> dict:
        return {"kind": self.kind, "n": len(self)}


class IVFIndex:
    """IVF-Flat over (N, D) unit rows (see the module docstring).

    Args:
        vectors: (N, D) float32 unit rows.
        nlist: Number of lists.
        nprobe: Lists scanned per query (tune with :meth:`calibrate`).
        train_size: Vectors k-means is fitted on (a seeded sample).
        seed: Of the sample and k-means.
    """

    kind = "ivf"

    def __init__(self, vectors: np.ndarray, nlist: int, nprobe: int = 8, train_size: int = 100_000,
                 seed: int = 0) -> None:
        from sklearn.cluster import MiniBatchKMeans

        X = np.asarray(vectors, np.float32)
        n = len(X)
        nlist = int(max(1, min(nlist, n)))
        rng = np.random.default_rng(seed)
        sample = X[np.sort(rng.choice(n, min(n, max(train_size, nlist)), replace=False))]
        # random initial centres: k-means++ costs more than the fit at thousands of lists
        km = MiniBatchKMeans(n_clusters=nlist, init="random", batch_size=8192, n_init=1, max_iter=10,
                             random_state=seed).fit(sample)
        C = km.cluster_centers_.astype(np.float32)
        self.centroids = C
        self._half_norm = 0.5 * (C * C).sum(1)
        lists = np.concatenate([self._nearest_list(X[a:a + 65536]) for a in range(0, n, 65536)])
        order = np.argsort(lists, kind="stable")
        self.ids = order.astype(np.int64)  # position in the stored order -> original row
        self.vectors = np.ascontiguousarray(X[order])
        self.offsets = np.concatenate([[0], np.cumsum(np.bincount(lists, minlength=nlist))]).astype(np.int64)
        self.nprobe = int(max(1, min(nprobe, nlist)))
        self.recall: float | None = None  # measured by calibrate()

    @property
    def nlist(self) -> int:
        return len(self.centroids)

    def __len__(self) -> int:
        return len(self.vectors)

    def _nearest_list(self, X: np.ndarray) -> np.ndarray:
        """The list of each row: the nearest centroid in L2 (argmax x.c - |c|^2 / 2)."""
        return np.argmax(X @ self.centroids.T - self._half_norm, axis=1)

    def search(self, query: np.ndarray, k: int = 10, exclude: np.ndarray | None = None,
               nprobe: int | None = None):
        """Like :meth:`ExactIndex.search`, scanning the ``nprobe`` lists nearest the query."""
        q = np.asarray(query, np.float32)
        p = int(min(nprobe or self.nprobe, self.nlist))
        lists = _top(self.centroids @ q - self._half_norm, p)
        starts, ends = self.offsets[lists], self.offsets[lists + 1]
        scores = np.concatenate([self.vectors[a:b] @ q for a, b in zip(starts, ends)])
        lengths = ends - starts  # positions of the scanned rows: the ranges [start, end) end to end
        pos = np.arange(int(lengths.sum())) + np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        rows = self.ids[pos]
        if exclude is not None and len(exclude):
            scores[np.isin(rows, np.asarray(exclude))] = -np.inf
        top = _top(scores, k)
        return rows[top], scores[top]

    def calibrate(self, queries: np.ndarray, exact: ExactIndex, k: int = 10, target: float = 0.95) -> float:
        """Set ``nprobe`` to the smallest of 1, 2, 4, ... (up to ``nlist``) whose mean recall@k
        against ``exact`` on ``queries`` (m, D) reaches ``target``; return that recall."""
        truth = exact.search_many(queries, k)
        p = 1
        while True:
            rec = float(np.mean([recall_at_k(self.search(q, k, nprobe=p)[0], t) for q, t in zip(queries, truth)]))
            if rec >= target or p >= self.nlist:
                self.nprobe, self.recall = p, rec
                return rec
            p = min(2 * p, self.nlist)

    def describe(self) -> dict:
        return {"kind": self.kind, "n": len(self), "nlist": self.nlist, "nprobe": self.nprobe,
                "calibration_recall": self.recall}


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the exact top-k (``truth``) that ``found`` contains (1.0 when ``truth`` is empty)."""
    return 1.0 if len(truth) == 0 else len(np.intersect1d(found, truth)) / len(truth)


def default_nlist(n: int) -> int:
    """``sqrt(n)`` lists, at least 8 (1,000 at one million vectors): assigning every vector to
    its list costs ``n * nlist * D`` multiply-adds, the IVF build's main cost."""
    return int(max(8, round(np.sqrt(n))))


def build_index(vectors: np.ndarray, cfg: IndexConfig = IndexConfig(),
                queries: np.ndarray | None = None) -> ExactIndex | IVFIndex:
    """Exact search below ``cfg.exact_below`` vectors, else a calibrated IVF index.

    Args:
        vectors: (N, D) unit rows.
        cfg: The settings.
        queries: (m, D) unit vectors like the queries to come (e.g. a space's text and image
            vectors), to tune ``nprobe`` on; default: a seeded sample of the rows themselves.

    Returns:
        The index (``describe()`` says which, and the measured recall).
    """
    X = np.asarray(vectors, np.float32)
    exact = ExactIndex(X)
    if len(X) < cfg.exact_below:
        return exact
    nlist = cfg.nlist or default_nlist(len(X))
    ivf = IVFIndex(X, nlist, train_size=cfg.train_per_list * nlist, seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)
    if queries is None or len(queries) == 0:
        queries = X
    Q = np.asarray(queries, np.float32)
    Q = Q[rng.choice(len(Q), min(len(Q), cfg.calibration_queries), replace=False)]
    ivf.calibrate(Q, exact, cfg.k, cfg.target_recall)
    return ivf
