"""Nearest-neighbour indexes over unit vectors (cosine = inner product), chosen by size.

- Below ``IndexConfig.exact_below`` vectors (200,000): exact search, :class:`ExactIndex` (one
  NumPy matrix product and a partial sort; no build, no copy of the vectors).
- From there on: a faiss (``faiss-cpu``) index with the inner-product metric,
  :class:`FaissIndex`, of the kind ``IndexConfig.approximate`` names: ``ivf`` (the default:
  ``IndexIVFFlat``, spherical k-means into ``4 sqrt(N)`` lists; a query scans the ``nprobe``
  lists whose centroids are nearest), ``hnsw`` (``IndexHNSWFlat``, M = 32, a graph walked with
  a beam of ``efSearch``) or ``flat`` (``IndexFlatIP``, exact). The search parameter is tuned
  when the index is built, by measurement: the smallest of 1, 2, 4, ... (``nprobe``) or 16,
  32, ... (``efSearch``) whose recall@k against exact search on sample queries reaches
  ``target_recall`` (0.95). One faiss thread (``threads``).

A built approximate index is saved next to the space (:mod:`.index_files`) and reused when the
space loads again (at 1M vectors: 7-10 s to load against 208 s to rebuild).

Why these (``pinterest-mm bench index``: one run with ``--threads 1,2`` up to 399k vectors,
one at 1M; 2 shared cores at load 5-12). Cells: CPU ms of one query (median of 100 held-out
queries, k = 10, one thread) / recall@10 against exact search on those queries; build = wall
seconds incl. hashing and saving. ivf = ``sqrt(N)`` lists, ivf4 = ``4 sqrt(N)``; sklearn = the
hand-rolled scikit-learn + NumPy IVF this module had before (measured at commit 80a2c1c):

=================  ======  ======  ===========  ===========  ==============  ===========
vectors, N         numpy   flat    ivf          ivf4         hnsw            sklearn
=================  ======  ======  ===========  ===========  ==============  ===========
clustered 30k      3.7     1.3     1.1 / .96    1.3 / .99    0.36 / .98      2.7 / .98
 build s                   0.1     1.0          2.9          18              15
clustered 200k     23      12      6.7 / .95    0.08 / .92   0.36 / .94      14 / .96
 build s                   0.5     17           61           165             10
GloVe 399k (50-d)  11.7    4.1     0.73 / .98   0.54 / .98   0.44 / .98      1.5 / .99
 build s                   0.1     2.0          14           138             8.6
clustered 1M       110     37      13.5 / .97   0.12 / .96   28 / .96        33 / .95
 build s                   1.6     60           258          992             208
=================  ======  ======  ===========  ===========  ==============  ===========

(clustered: D = 256 around 2,000 centres, see :mod:`.index_bench`; the 4 sqrt(N) lists of
ivf4 come close to those 2,000 centres at 200k and 1M, hence its nprobe of 2-4 there (at 200k
tuned to 0.952 at nprobe 4 on 100 queries, 0.92 on the held-out ones); on the real GloVe
vectors ivf4 is 1.35x faster than ivf.) faiss's IVF answers with 2.0-2.4x less CPU than the
hand-rolled one with the same number of lists, at every size, so the latter is gone. HNSW
searches about as fast as ivf4 up to 400k (~0.4 ms) but builds 3-10x slower than ivf4, adds
its graph to memory (+50 MB at 200k, +100 MB on GloVe, +260 MB at 1M over the vectors' copy)
and on the 1M 256-d set needed efSearch 4,096 for 0.95 (28 ms). Hence ivf with ``4 sqrt(N)``
lists; its build (3.5-4 minutes of wall clock at 1M on the loaded cores, 90 s of CPU) is paid
once per space. Exact NumPy search stays below 200,000 vectors: at most ~23 ms of CPU there
(faiss's flat index halves it but copies the vectors), no build, no file, exact. Two faiss
threads on these shared cores shortened some builds (ivf4 at 200k 37 s against 61 s, HNSW by
10 %) and lengthened others (ivf4 on GloVe 54 s against 14 s, every build at 30k), mostly at
more CPU; one query gains nothing from them (a flat query cost 4-6x the CPU with two): hence one.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

APPROXIMATE = ("ivf", "hnsw", "flat")


@dataclass(frozen=True)
class IndexConfig:
    """How an index is chosen and tuned.

    Attributes:
        exact_below: Exact NumPy search below this many vectors, a faiss index from there on.
        approximate: The faiss index from there on: ``ivf``, ``hnsw`` or ``flat`` (exact).
        nlist: IVF lists (None: ``nlist_per_sqrt * sqrt(N)``, at least 8; 4 sqrt(N) was
            measured faster to search than sqrt(N) at the same recall, see the module docstring).
        nlist_per_sqrt: See ``nlist``.
        train_per_list: IVF k-means is fitted on at most ``train_per_list * nlist`` sampled vectors.
        hnsw_m: HNSW neighbours per node (``M``).
        ef_construction: HNSW beam width while building.
        target_recall: Recall@k against exact search that the tuned parameter must reach.
        k: The k of that recall (10).
        calibration_queries: Sample queries used to tune the parameter.
        threads: faiss (OpenMP) threads for building and searching.
        seed: Of the samples and of k-means.
    """

    exact_below: int = 200_000
    approximate: str = "ivf"
    nlist: int | None = None
    nlist_per_sqrt: float = 4.0
    train_per_list: int = 64
    hnsw_m: int = 32
    ef_construction: int = 40
    target_recall: float = 0.95
    k: int = 10
    calibration_queries: int = 200
    threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.exact_below < 0 or not 0 < self.target_recall <= 1 or self.k < 1:
            raise ValueError(f"IndexConfig: need exact_below >= 0, 0 < target_recall <= 1 and k >= 1 "
                             f"(got {self.exact_below}, {self.target_recall}, {self.k}).")
        if self.approximate not in APPROXIMATE:
            raise ValueError(f"IndexConfig: approximate must be one of {', '.join(APPROXIMATE)} "
                             f"(got {self.approximate!r}).")
        if self.threads < 1 or self.hnsw_m < 2 or self.train_per_list < 1 or self.nlist_per_sqrt <= 0:
            raise ValueError(f"IndexConfig: need threads >= 1, hnsw_m >= 2, train_per_list >= 1 and "
                             f"nlist_per_sqrt > 0 (got {self.threads}, {self.hnsw_m}, {self.train_per_list}, "
                             f"{self.nlist_per_sqrt}).")

    def as_dict(self) -> dict:
        return asdict(self)


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
    exact = True

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


@contextmanager
def faiss_threads(n: int):
    """faiss's OpenMP threads set to ``n`` inside the block (restored after)."""
    import faiss

    old = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(n))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(old)


class FaissIndex:
    """A faiss inner-product index over (N, D) unit rows (see the module docstring).

    Args:
        index: A built ``faiss.IndexFlatIP``, ``IndexIVFFlat`` or ``IndexHNSWFlat``.
        kind: ``flat``, ``ivf`` or ``hnsw``.
        threads: OpenMP threads while searching.
        recall: The recall@k measured when the search parameter was tuned (None: not tuned).
    """

    def __init__(self, index, kind: str, threads: int = 1, recall: float | None = None) -> None:
        self.index, self.kind, self.threads, self.recall = index, kind, threads, recall

    @property
    def exact(self) -> bool:
        return self.kind == "flat"

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def param(self) -> int | None:
        """The tuned search parameter: ``nprobe`` (ivf), ``efSearch`` (hnsw), None (flat)."""
        if self.kind == "ivf":
            return int(self.index.nprobe)
        if self.kind == "hnsw":
            return int(self.index.hnsw.efSearch)
        return None

    @param.setter
    def param(self, value: int) -> None:
        if self.kind == "ivf":
            self.index.nprobe = int(value)
        elif self.kind == "hnsw":
            self.index.hnsw.efSearch = int(value)

    def _search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """faiss's (m, k) similarities and ids (-1 where fewer than k were found)."""
        k = int(min(k, len(self)))
        if k <= 0:
            return np.zeros((len(Q), 0), np.float32), np.zeros((len(Q), 0), np.int64)
        with faiss_threads(self.threads):
            return self.index.search(np.ascontiguousarray(Q, np.float32), k)

    def search(self, query: np.ndarray, k: int = 10, exclude: np.ndarray | None = None):
        """Like :meth:`ExactIndex.search` (approximate for ``ivf`` and ``hnsw``)."""
        ex = np.asarray(exclude if exclude is not None else [], np.int64)
        D, I = self._search(np.asarray(query, np.float32)[None], k + len(ex))
        keep = (I[0] >= 0) & ~np.isin(I[0], ex)
        return I[0][keep][:k].astype(np.int64), D[0][keep][:k]

    def search_many(self, queries: np.ndarray, k: int = 10) -> list[np.ndarray]:
        """The top-k indices for each of ``queries`` (m, D), one batched faiss call."""
        _, I = self._search(np.asarray(queries, np.float32), k)
        return [row[row >= 0].astype(np.int64) for row in I]

    def calibrate(self, queries: np.ndarray, truth: list[np.ndarray], k: int = 10, target: float = 0.95) -> float:
        """Set the search parameter to the smallest of a doubling ladder whose mean recall@k
        against ``truth`` (the exact top-k of each of ``queries`` (m, D)) reaches ``target``;
        return that recall. The ladder: 1, 2, 4, ... up to ``nlist`` (ivf); 16, 32, ... up to
        the number of vectors (hnsw)."""
        if self.kind == "flat":
            self.recall = 1.0
            return 1.0
        p, top = (1, int(self.index.nlist)) if self.kind == "ivf" else (16, max(16, len(self)))
        while True:
            self.param = p
            rec = float(np.mean([recall_at_k(f, t) for f, t in zip(self.search_many(queries, k), truth)]))
            if rec >= target or p >= top:
                self.recall = rec
                return rec
            p = min(2 * p, top)

    def describe(self) -> dict:
        out = {"kind": self.kind, "n": len(self), "calibration_recall": self.recall}
        if self.kind == "ivf":
            out.update(nlist=int(self.index.nlist), nprobe=self.param)
        elif self.kind == "hnsw":
            out.update(M=int(self.index.hnsw.nb_neighbors(1)), efSearch=self.param)
        return out


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the exact top-k (``truth``) that ``found`` contains (1.0 when ``truth`` is empty)."""
    return 1.0 if len(truth) == 0 else len(np.intersect1d(found, truth)) / len(truth)


def default_nlist(n: int, per_sqrt: float = 4.0) -> int:
    """``per_sqrt * sqrt(n)`` lists, at least 8 and at most n (4,000 at one million vectors)."""
    return int(min(n, max(8, round(per_sqrt * np.sqrt(n)))))


def faiss_index(X: np.ndarray, cfg: IndexConfig, kind: str | None = None) -> FaissIndex:
    """Build (not tune) the faiss index ``kind`` (default ``cfg.approximate``) over (N, D) unit rows."""
    import faiss

    kind = kind or cfg.approximate
    X = np.ascontiguousarray(X, np.float32)
    n, d = X.shape
    with faiss_threads(cfg.threads):
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = cfg.ef_construction
        elif kind == "ivf":
            nlist = int(min(n, cfg.nlist or default_nlist(n, cfg.nlist_per_sqrt)))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.spherical = True  # unit vectors: centroids on the sphere
            index.cp.seed = cfg.seed
            index.cp.max_points_per_centroid = cfg.train_per_list
            index.cp.min_points_per_centroid = 1  # small sets: no warning about few points per list
            index.train(X)
        else:
            raise ValueError(f"Unknown faiss index kind {kind!r} (one of {', '.join(APPROXIMATE)}).")
        index.add(X)
    return FaissIndex(index, kind, cfg.threads)


def calibration_queries(X: np.ndarray, queries: np.ndarray | None, cfg: IndexConfig) -> np.ndarray:
    """(m, D) seeded sample of ``queries`` (default: of the rows of X) to tune on."""
    rng = np.random.default_rng(cfg.seed + 1)
    Q = np.asarray(X if queries is None or len(queries) == 0 else queries, np.float32)
    return Q[np.sort(rng.choice(len(Q), min(len(Q), cfg.calibration_queries), replace=False))]


def build_approximate(X: np.ndarray, cfg: IndexConfig, Q: np.ndarray, kind: str | None = None) -> FaissIndex:
    """Build the faiss index and tune its search parameter on the queries Q (m, D)."""
    index = faiss_index(X, cfg, kind)
    index.calibrate(Q, ExactIndex(X).search_many(Q, cfg.k), cfg.k, cfg.target_recall)
    return index


def build_index(vectors: np.ndarray, cfg: IndexConfig = IndexConfig(), queries: np.ndarray | None = None,
                cache: Path | None = None, say: Callable[[str], None] | None = None) -> ExactIndex | FaissIndex:
    """Exact search below ``cfg.exact_below`` vectors, else a tuned faiss index.

    Args:
        vectors: (N, D) unit rows.
        cfg: The settings.
        queries: (m, D) unit vectors like the queries to come (e.g. a space's text and image
            vectors), to tune the search parameter on; default: a seeded sample of the rows.
        cache: Where to keep the approximate index (a path without suffix: ``.faiss`` and
            ``.json`` are added); reused when it was built from the same vectors, settings and
            tuning queries, rebuilt (with a one-line message) when damaged or stale. None: not kept.
        say: Where that message goes (default: standard error).

    Returns:
        The index (``describe()`` says which, and the measured recall).
    """
    X = np.asarray(vectors, np.float32)
    if len(X) < cfg.exact_below:
        return ExactIndex(X)
    from . import index_files

    say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
    Q = calibration_queries(X, queries, cfg)
    key = index_files.fingerprint(X, Q, cfg.as_dict()) if cache is not None else ""
    if cache is not None:
        found = index_files.load(Path(cache), key, X.shape, say)
        if found is not None:
            return FaissIndex(found[0], found[1]["kind"], cfg.threads, found[1].get("recall"))
    index = build_approximate(X, cfg, Q)
    if cache is not None:
        index_files.save(index.index, Path(cache), key, {"kind": index.kind, "recall": index.recall,
                                                         "describe": index.describe()}, say)
    return index
