"""The search index of the joint space: exact below the threshold, a calibrated IVF index above
it (recall@10 against exact search), on generated clustered vectors with the threshold lowered."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pinterest_mm.embed.index import ExactIndex, IndexConfig, IVFIndex, build_index, recall_at_k
from pinterest_mm.embed.space import unit

SMALL = IndexConfig(exact_below=2_000, calibration_queries=100)


def clustered(n: int, d: int = 32, centers: int = 60, seed: int = 0, m: int = 0):
    """n unit vectors around ``centers`` random centres (and m queries drawn the same way)."""
    rng = np.random.default_rng(seed)
    C = rng.normal(size=(centers, d))
    X = unit(C[rng.integers(0, centers, n)] + rng.normal(scale=0.8, size=(n, d)))
    Q = unit(C[rng.integers(0, centers, m)] + rng.normal(scale=0.8, size=(m, d)))
    return X, Q


@pytest.fixture(scope="module")
def vectors():
    return clustered(6_000, m=300)


def held_out_recall(index, X, Q, k=10) -> float:
    truth = ExactIndex(X).search_many(Q, k)
    return float(np.mean([recall_at_k(index.search(q, k)[0], t) for q, t in zip(Q, truth)]))


def test_exact_below_the_threshold_ivf_above(vectors):
    X, Q = vectors
    assert isinstance(build_index(X[:1_999], SMALL), ExactIndex)
    idx = build_index(X, SMALL, queries=Q[:150])
    assert isinstance(idx, IVFIndex) and idx.describe()["kind"] == "ivf"
    assert idx.nlist == 77  # sqrt(6000)


def test_ivf_reaches_the_target_recall_on_held_out_queries(vectors):
    X, Q = vectors
    idx = build_index(X, SMALL, queries=Q[:150])
    assert idx.recall >= 0.95 and 1 <= idx.nprobe < idx.nlist  # tuned, and cheaper than a full scan
    tuned = held_out_recall(idx, X, Q[150:])
    assert tuned >= 0.93  # queries it was not tuned on
    assert idx.nprobe > 1
    idx.nprobe = 1
    assert held_out_recall(idx, X, Q[150:]) < min(tuned, 0.95)  # one list alone falls short


def test_ivf_scanning_every_list_is_exact(vectors):
    X, Q = vectors
    idx = IVFIndex(X, nlist=40, nprobe=40)
    ex = ExactIndex(X)
    for q in Q[:20]:
        (a, sa), (b, sb) = idx.search(q, 10), ex.search(q, 10)
        assert a.tolist() == b.tolist() and np.allclose(sa, sb, atol=1e-6)


def test_ivf_exclude_and_short_results(vectors):
    X, _ = vectors
    idx = IVFIndex(X[:500], nlist=8, nprobe=8)
    top, _ = idx.search(X[3], 5)
    assert top[0] == 3
    top2, _ = idx.search(X[3], 5, exclude=np.array([3]))
    assert 3 not in top2 and top2[:4].tolist() == top[1:].tolist()
    assert len(idx.search(X[3], 10_000)[0]) == 500


def test_the_search_context_uses_the_ivf_index_above_the_threshold(vectors):
    from pinterest_mm.embed.search import SearchContext
    from pinterest_mm.embed.space import JointSpace

    X, Q = vectors
    n = len(X)
    space = JointSpace("v", {}, [f"p{i}" for i in range(n)], X, X, np.ones(n, bool), np.ones(n, bool),
                       [], np.zeros((0, X.shape[1]), np.float32))
    pins = pd.DataFrame({"pin_id": space.pin_ids, "category": "c", "description": "", "image": "", "split": "test"})
    saves = pd.DataFrame({"pin_id": pd.Series(dtype=str), "user_id": pd.Series(dtype=str),
                          "row": pd.Series(dtype=np.int64)})
    ctx = SearchContext(space, pins, saves, ["c"], X, space.users, SMALL)
    assert ctx.pin_index.kind == "ivf"
    exact = SearchContext(space, pins, saves, ["c"], X, space.users, IndexConfig())
    assert exact.pin_index.kind == "exact"
    got = [ctx.search(q, 10)[0]["pin_id"].to_numpy() for q in Q[150:]]
    want = [exact.search(q, 10)[0]["pin_id"].to_numpy() for q in Q[150:]]
    assert np.mean([recall_at_k(g, w) for g, w in zip(got, want)]) >= 0.93


def test_bad_index_settings_are_refused():
    with pytest.raises(ValueError, match="target_recall"):
        IndexConfig(target_recall=1.5)


def test_bench_index_command_measures_exact_and_ivf(capsys):
    import json

    from pinterest_mm.cli import main

    assert main(["bench", "index", "--sizes", "4000", "--glove-sizes", "", "--queries", "60", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (row,) = out["rows"]
    assert row["vectors"] == "clustered" and row["n"] == 4000 and row["dim"] == 256
    assert row["tuned_recall"] >= 0.95 and row["held_out_recall"] >= 0.85 and row["queries"] == 30
    assert row["exact_ms"] > 0 and row["ivf_cpu_ms"] >= 0 and 1 <= row["nprobe"] <= row["nlist"] == 63
