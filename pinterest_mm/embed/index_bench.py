"""``pinterest-mm bench index``: the search indexes side by side, by measurement.

For each vector set and size, every backend is built and measured in the same run: the
median latency of one query (k = 10), the build time, the recall@10 against exact search on
**held-out** queries (not those the search parameter was tuned on) and the memory the index
adds to the (N, D) vectors the space already holds. Backends:

- ``numpy``: exact search in NumPy (:class:`~.index.ExactIndex`), no build, no copy;
- ``flat``: faiss ``IndexFlatIP`` (exact, a copy of the vectors);
- ``ivf`` / ``ivf4``: faiss ``IndexIVFFlat`` (inner product, spherical k-means) with
  ``sqrt(N)`` / ``4 sqrt(N)`` lists, ``nprobe`` tuned to recall@10 >= 0.95;
- ``hnsw``: faiss ``IndexHNSWFlat`` (inner product, M = 32, efConstruction 40), ``efSearch``
  tuned likewise.

The approximate faiss backends are built through :func:`~.index.build_index` with a cache
file, then loaded from it: ``build_s`` includes hashing the vectors and writing the file,
``load_s`` is what a space pays the next time it loads. Two kinds of vectors:

- ``clustered``: generated unit vectors (D = 256, the joint space's width) around 2,000 random
  centres with noise, a stand-in for pin vectors at sizes no dataset here has;
- ``glove``: real features, the packaged GloVe 6B 50-d word vectors (400,000 words), unit
  length; the queries are words held out of the indexed set.

Latencies are medians over the queries of one run, side by side, with one BLAS thread and
``threads`` faiss threads: the wall-clock time and the process's CPU time (``*cpu_ms``; on a
loaded machine the wall clock also counts the time the process waited for a core, the CPU
time does not).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .index import ExactIndex, IndexConfig, build_index, faiss_index, recall_at_k
from .space import unit

BACKENDS = ("numpy", "flat", "ivf", "ivf4", "hnsw")


@dataclass(frozen=True)
class IndexBenchConfig:
    """What to measure.

    Attributes:
        sizes: Vector counts of the ``clustered`` set.
        glove_sizes: Vector counts of the ``glove`` set (at most 400,000 minus the queries).
        queries: Queries per set: the first half tunes, the second half is measured.
        index: The index settings (``exact_below`` and ``approximate`` are set per backend).
        backends: Which of :data:`BACKENDS` to measure.
        threads: faiss thread counts; each faiss backend is built and searched once per count.
        seed: Of the generated vectors and the query draws.
    """

    sizes: tuple[int, ...] = (30_000, 200_000, 1_000_000)
    glove_sizes: tuple[int, ...] = (399_000,)
    queries: int = 200
    index: IndexConfig = IndexConfig()
    backends: tuple[str, ...] = BACKENDS
    threads: tuple[int, ...] = (1,)
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [b for b in self.backends if b not in BACKENDS]
        if bad or not self.threads or min(self.threads) < 1 or self.queries < 2:
            raise ValueError(f"IndexBenchConfig: backends must be among {', '.join(BACKENDS)} (got "
                             f"{', '.join(bad) or 'ok'}), threads >= 1 and queries >= 2.")


def clustered_vectors(n: int, m: int, d: int = 256, centers: int = 2_000, noise: float = 1.5,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) unit vectors around ``centers`` random centres and (m, d) queries drawn alike."""
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((centers, d), dtype=np.float32)

    def draw(count):
        out = np.empty((count, d), np.float32)
        for a in range(0, count, 100_000):
            b = min(count, a + 100_000)
            out[a:b] = C[rng.integers(0, centers, b - a)] + noise * rng.standard_normal((b - a, d), dtype=np.float32)
        return unit(out)

    return draw(n), draw(m)


def glove_vectors(n: int, m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The first n GloVe words' unit vectors (frequency order) and m held-out words' as queries."""
    from ..models.text import load_glove_pkg

    V = load_glove_pkg()
    M = unit(np.asarray(V.matrix, np.float32))
    M = M[np.abs(M).sum(1) > 0]
    rng = np.random.default_rng(seed)
    held = rng.choice(len(M), m, replace=False)
    rest = np.setdiff1d(np.arange(len(M)), held)[:n]
    return M[rest], M[held]


def _median_ms(fn, queries) -> tuple[float, float]:
    """(median wall ms, median CPU ms) of ``fn(q)`` over the queries, on one BLAS thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        fn(queries[0])  # warm
        wall, cpu = [], []
        for q in queries:
            t0, c0 = time.perf_counter(), time.process_time()
            fn(q)
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def _faiss_mb(index) -> float:
    """MB a faiss index holds (its serialized size: the vectors' copy, lists or graph)."""
    import faiss

    return faiss.serialize_index(index).nbytes / 2**20


def _build(backend: str, X: np.ndarray, tune: np.ndarray, cfg: IndexConfig, threads: int, folder: Path):
    """(index, build wall s, build CPU s, load s or None, extra MB) of one backend."""
    cfg = replace(cfg, threads=threads, exact_below=0)
    t0, c0 = time.perf_counter(), time.process_time()
    load_s = None
    if backend == "numpy":
        index, mb = ExactIndex(X), 0.0
    elif backend == "flat":
        index = faiss_index(X, cfg, "flat")
    else:
        kind = "hnsw" if backend == "hnsw" else "ivf"
        cfg = replace(cfg, approximate=kind, nlist_per_sqrt=4.0 if backend == "ivf4" else 1.0)
        stem = folder / backend
        index = build_index(X, cfg, queries=tune, cache=stem)
        t1 = time.perf_counter()
        build_index(X, cfg, queries=tune, cache=stem)  # again: loaded from the file
        load_s = time.perf_counter() - t1
        for f in folder.glob(f"{backend}.*"):
            f.unlink()
    build_s, build_cpu = (time.perf_counter() - t0) - (load_s or 0.0), time.process_time() - c0
    if backend != "numpy":
        mb = _faiss_mb(index.index)
    return index, build_s, build_cpu, load_s, mb


def measure(name: str, X: np.ndarray, Q: np.ndarray, cfg: IndexConfig, backends=BACKENDS, threads=(1,),
            k: int = 10, progress=None) -> list[dict]:
    """Rows for X (N, D) with queries Q (m, D): the first half tunes, the rest is held out."""
    half = len(Q) // 2
    tune, held = Q[:half], Q[half:]
    truth = ExactIndex(X).search_many(held, k)
    rows = []
    folder = Path(tempfile.mkdtemp(prefix="pmm-index-bench-"))
    try:
        for backend in backends:
            for t in ((1,) if backend == "numpy" else threads):
                index, build_s, build_cpu, load_s, mb = _build(backend, X, tune, cfg, t, folder)
                rec = float(np.mean([recall_at_k(f, tr) for f, tr in
                                     zip((index.search(q, k)[0] for q in held), truth)]))
                ms, cpu_ms = _median_ms(lambda q: index.search(q, k), held)
                d = index.describe()
                rows.append({"vectors": name, "n": len(X), "dim": int(X.shape[1]), "backend": backend,
                             "threads": t, "ms": round(ms, 3), "cpu_ms": round(cpu_ms, 3),
                             "recall": round(rec, 3), "tuned_recall": d.get("calibration_recall"),
                             "nlist": d.get("nlist"), "param": d.get("nprobe", d.get("efSearch")),
                             "build_s": round(build_s, 2), "build_cpu_s": round(build_cpu, 2),
                             "load_s": None if load_s is None else round(load_s, 2),
                             "extra_mb": round(mb, 1), "queries": len(held)})
                index = None  # freed before the next build
                if progress:
                    progress(rows[-1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def run_index_bench(cfg: IndexBenchConfig = IndexBenchConfig(), progress: bool = False) -> dict:
    """Measure every set, size and backend; return ``{"rows": [...], ...}``."""
    import json
    import sys

    def echo(row):
        if progress:
            print(json.dumps(row), file=sys.stderr, flush=True)

    rows = []
    for n in cfg.sizes:
        X, Q = clustered_vectors(n, cfg.queries, seed=cfg.seed)
        rows += measure("clustered", X, Q, cfg.index, cfg.backends, cfg.threads, progress=echo)
        del X
    for n in cfg.glove_sizes:
        X, Q = glove_vectors(n, cfg.queries, seed=cfg.seed)
        rows += measure("glove", X, Q, cfg.index, cfg.backends, cfg.threads, progress=echo)
    return {"rows": rows, "exact_below": cfg.index.exact_below, "target_recall": cfg.index.target_recall,
            "config": {"sizes": list(cfg.sizes), "glove_sizes": list(cfg.glove_sizes), "queries": cfg.queries,
                       "backends": list(cfg.backends), "threads": list(cfg.threads)}}


def format_index_bench(result: dict) -> str:
    """A plain-text table of :func:`run_index_bench`'s result."""
    from ..textable import text_table

    cols = ["vectors", "n", "dim", "backend", "threads", "ms", "cpu_ms", "recall", "nlist", "param", "build_s",
            "build_cpu_s", "load_s", "extra_mb"]
    out = [text_table(cols, [["" if r[c] is None else r[c] for c in cols] for r in result["rows"]], digits=3)]
    out.append(f"recall: recall@10 against exact search on held-out queries; param: nprobe (ivf) or efSearch "
               f"(hnsw), tuned to recall@10 >= {result['target_recall']} on the other queries; latencies: "
               f"medians of one query, k = 10; extra_mb: memory beyond the vectors themselves.")
    return "\n".join(out)
