"""``pinterest-mm bench index``: exact search against the IVF index, by measurement.

For each vector set and size: the median latency of one query (k = 10) with exact NumPy search
and with the IVF index of :mod:`.index` (built and its ``nprobe`` tuned on calibration queries
to recall@10 >= 0.95), the IVF build time, and the recall@10 against exact search on
**held-out** queries (not those it was tuned on). Two kinds of vectors:

- ``clustered``: generated unit vectors (D = 256, the joint space's width) around 2,000 random
  centres with noise, a stand-in for pin vectors at sizes no dataset here has;
- ``glove``: real features, the packaged GloVe 6B 50-d word vectors (400,000 words), unit
  length; the queries are words held out of the indexed set.

Latencies are medians over the queries of one run, side by side, with one BLAS thread: the
wall-clock time and the process's CPU time (``*_cpu_ms``; on a loaded machine the wall clock also
counts the time the process waited for a core, the CPU time does not).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np

from .index import ExactIndex, IndexConfig, build_index, recall_at_k
from .space import unit


@dataclass(frozen=True)
class IndexBenchConfig:
    """What to measure.

    Attributes:
        sizes: Vector counts of the ``clustered`` set.
        glove_sizes: Vector counts of the ``glove`` set (at most 400,000 minus the queries).
        queries: Held-out queries per set (latency medians and recall over these).
        index: The index settings (``exact_below`` is ignored: both are always measured).
        seed: Of the generated vectors and the query draws.
    """

    sizes: tuple[int, ...] = (200_000, 1_000_000)
    glove_sizes: tuple[int, ...] = (200_000, 399_000)
    queries: int = 200
    index: IndexConfig = IndexConfig()
    seed: int = 0


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


def measure(name: str, X: np.ndarray, Q: np.ndarray, cfg: IndexConfig, k: int = 10) -> dict:
    """One row: exact vs IVF on X with queries Q (the first half tunes nprobe, the rest is held out)."""
    half = len(Q) // 2
    tune, held = Q[:half], Q[half:]
    exact = ExactIndex(X)
    t0 = time.perf_counter()
    ivf = build_index(X, IndexConfig(**{**asdict(cfg), "exact_below": 0}), queries=tune)
    build_s = time.perf_counter() - t0
    truth = exact.search_many(held, k)
    rec = float(np.mean([recall_at_k(ivf.search(q, k)[0], t) for q, t in zip(held, truth)]))
    (ex_ms, ex_cpu), (ivf_ms, ivf_cpu) = (_median_ms(lambda q: exact.search(q, k), held),
                                          _median_ms(lambda q: ivf.search(q, k), held))
    return {"vectors": name, "n": len(X), "dim": int(X.shape[1]), "exact_ms": round(ex_ms, 2),
            "ivf_ms": round(ivf_ms, 2), "exact_cpu_ms": round(ex_cpu, 2), "ivf_cpu_ms": round(ivf_cpu, 2),
            "cpu_speedup": round(ex_cpu / max(ivf_cpu, 1e-3), 1), "nlist": ivf.nlist,
            "nprobe": ivf.nprobe, "tuned_recall": round(ivf.recall, 3), "held_out_recall": round(rec, 3),
            "build_s": round(build_s, 1), "queries": len(held)}


def run_index_bench(cfg: IndexBenchConfig = IndexBenchConfig(), progress: bool = False) -> dict:
    """Measure every set and size; return ``{"rows": [...], "threshold": ..., "config": ...}``."""
    import sys

    rows = []
    for n in cfg.sizes:
        X, Q = clustered_vectors(n, cfg.queries, seed=cfg.seed)
        rows.append(measure("clustered", X, Q, cfg.index))
        del X
        if progress:
            print(f"clustered {n:,}: {rows[-1]}", file=sys.stderr, flush=True)
    for n in cfg.glove_sizes:
        X, Q = glove_vectors(n, cfg.queries, seed=cfg.seed)
        rows.append(measure("glove", X, Q, cfg.index))
        if progress:
            print(f"glove {n:,}: {rows[-1]}", file=sys.stderr, flush=True)
    return {"rows": rows, "exact_below": cfg.index.exact_below, "target_recall": cfg.index.target_recall,
            "config": {"sizes": list(cfg.sizes), "glove_sizes": list(cfg.glove_sizes), "queries": cfg.queries}}


def format_index_bench(result: dict) -> str:
    """A plain-text table of :func:`run_index_bench`'s result."""
    from ..textable import text_table

    cols = ["vectors", "n", "dim", "exact_ms", "ivf_ms", "exact_cpu_ms", "ivf_cpu_ms", "cpu_speedup", "nlist", "nprobe",
            "tuned_recall",
            "held_out_recall", "build_s"]
    out = [text_table(cols, [[r[c] for c in cols] for r in result["rows"]], digits=3)]
    out.append(f"exact search below {result['exact_below']:,} vectors, IVF (nprobe tuned to recall@10 >= "
               f"{result['target_recall']}) from there on; latencies: medians of one query, k = 10.")
    return "\n".join(out)
