"""The search index of the joint space: exact NumPy search below the threshold, a tuned faiss
index above it (recall@10 against exact search), kept on disk and reused; on generated
clustered vectors with the threshold lowered."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from pinterest_mm.embed import index as index_mod
from pinterest_mm.embed.index import ExactIndex, FaissIndex, IndexConfig, build_index, faiss_index, recall_at_k
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


def test_exact_below_the_threshold_faiss_ivf_above(vectors):
    X, Q = vectors
    assert isinstance(build_index(X[:1_999], SMALL), ExactIndex)
    idx = build_index(X, SMALL, queries=Q[:150])
    assert isinstance(idx, FaissIndex) and idx.describe()["kind"] == "ivf" and not idx.exact
    assert idx.describe()["nlist"] == 310  # 4 sqrt(6000)
    assert build_index(X, IndexConfig(exact_below=2_000, nlist_per_sqrt=1)).describe()["nlist"] == 77


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_the_tuned_index_reaches_the_target_recall_on_held_out_queries(vectors, kind):
    X, Q = vectors
    idx = build_index(X, IndexConfig(exact_below=2_000, calibration_queries=100, approximate=kind, hnsw_m=4),
                      queries=Q[:150])
    assert idx.kind == kind and idx.recall >= 0.95
    tuned = held_out_recall(idx, X, Q[150:])
    assert tuned >= 0.93  # queries it was not tuned on
    assert idx.param > (1 if kind == "ivf" else 16)  # the ladder moved
    if kind == "ivf":
        assert idx.param < idx.describe()["nlist"]  # cheaper than a full scan
    idx.param = 1
    assert held_out_recall(idx, X, Q[150:]) < min(tuned, 0.95)  # the untuned setting falls short


def test_ivf_scanning_every_list_is_exact(vectors):
    X, Q = vectors
    idx = faiss_index(X, IndexConfig(nlist=40))
    idx.param = 40
    ex = ExactIndex(X)
    for q in Q[:20]:
        (a, sa), (b, sb) = idx.search(q, 10), ex.search(q, 10)
        assert a.tolist() == b.tolist() and np.allclose(sa, sb, atol=1e-5)


def test_the_exact_paths_equal_numpy_argsort_on_ties_free_data(vectors):
    X, Q = vectors
    assert len(np.unique(X @ Q[0])) == len(X)  # no ties
    numpy_exact, faiss_flat = ExactIndex(X), faiss_index(X, IndexConfig(), "flat")
    assert faiss_flat.exact
    for q in Q[:20]:
        want = np.argsort(-(X @ q), kind="stable")[:10]
        assert numpy_exact.search(q, 10)[0].tolist() == want.tolist()
        assert faiss_flat.search(q, 10)[0].tolist() == want.tolist()


@pytest.mark.parametrize("kind", ["ivf", "hnsw", "flat"])
def test_exclude_and_short_results(vectors, kind):
    X, _ = vectors
    idx = faiss_index(X[:500], IndexConfig(nlist=8, hnsw_m=8), kind)
    idx.param = 8 if kind == "ivf" else 512
    top, sims = idx.search(X[3], 5)
    assert top[0] == 3 and sims[0] == pytest.approx(1.0, abs=1e-5)
    top2, _ = idx.search(X[3], 5, exclude=np.array([3]))
    assert 3 not in top2 and top2[:4].tolist() == top[1:].tolist() and len(top2) == 5
    found = idx.search(X[3], 10_000)[0]
    assert len(set(found.tolist())) == len(found) and found.min() >= 0  # faiss's -1 fillers dropped
    if kind == "hnsw":  # a graph walk may miss a node or two
        assert 490 <= len(found) <= 500
    else:
        assert sorted(found.tolist()) == list(range(500))


def count_builds(monkeypatch) -> list:
    """Record each call of the build path (:func:`~pinterest_mm.embed.index.build_approximate`)."""
    calls, real = [], index_mod.build_approximate
    monkeypatch.setattr(index_mod, "build_approximate", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    return calls


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_a_saved_index_is_loaded_not_rebuilt_and_answers_the_same(vectors, kind, tmp_path, monkeypatch):
    X, Q = vectors
    cfg = IndexConfig(exact_below=2_000, calibration_queries=100, approximate=kind, hnsw_m=8)
    builds, said = count_builds(monkeypatch), []
    first = build_index(X, cfg, queries=Q[:150], cache=tmp_path / "pins", say=said.append)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["pins.faiss", "pins.json"] and builds == [1]
    stamp = (tmp_path / "pins.faiss").stat().st_mtime_ns
    again = build_index(X, cfg, queries=Q[:150], cache=tmp_path / "pins", say=said.append)
    assert builds == [1] and said == []  # loaded: no build, no message
    assert (tmp_path / "pins.faiss").stat().st_mtime_ns == stamp
    assert again.kind == kind and again.param == first.param and again.recall == first.recall
    for q in Q[150:170]:
        (a, sa), (b, sb) = first.search(q, 10), again.search(q, 10)
        assert a.tolist() == b.tolist() and np.array_equal(sa, sb)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flipped-bytes", "no-json", "bad-json"])
def test_a_damaged_index_file_is_rebuilt_with_a_message(vectors, damage, tmp_path, monkeypatch):
    X, Q = vectors
    said = []
    first = build_index(X, SMALL, queries=Q[:150], cache=tmp_path / "pins", say=said.append)
    f, meta = tmp_path / "pins.faiss", tmp_path / "pins.json"
    if damage == "truncate":
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        json.loads(meta.read_text())  # the JSON alone still looks fine
    elif damage == "garbage":
        size = f.stat().st_size
        f.write_bytes(os.urandom(size))  # same size, not a faiss file
    elif damage == "flipped-bytes":
        b = bytearray(f.read_bytes())
        b[len(b) // 2: len(b) // 2 + 64] = os.urandom(64)  # inside the vectors: faiss reads it without error
        f.write_bytes(bytes(b))
    elif damage == "no-json":
        meta.unlink()
    else:
        meta.write_text("{not json")
    builds = count_builds(monkeypatch)
    again = build_index(X, SMALL, queries=Q[:150], cache=tmp_path / "pins", say=said.append)
    assert builds == [1] and len(said) == 1 and "rebuilding it" in said[0] and "pins.faiss" in said[0]
    assert "\n" not in said[0]
    assert again.search(Q[200], 10)[0].tolist() == first.search(Q[200], 10)[0].tolist()
    assert build_index(X, SMALL, queries=Q[:150], cache=tmp_path / "pins", say=said.append) is not None
    assert builds == [1] and len(said) == 1  # the rebuilt file is good again


@pytest.mark.parametrize("change", ["config", "vectors", "queries"])
def test_other_settings_or_vectors_invalidate_the_file(vectors, change, tmp_path, monkeypatch):
    X, Q = vectors
    said = []
    build_index(X, SMALL, queries=Q[:150], cache=tmp_path / "pins", say=said.append)
    builds = count_builds(monkeypatch)
    cfg, X2, Q2 = SMALL, X, Q[:150]
    if change == "config":
        cfg = IndexConfig(exact_below=2_000, calibration_queries=100, target_recall=0.9)
    elif change == "vectors":
        X2 = X.copy()
        X2[17] = X[18]  # one row differs
    else:
        Q2 = Q[1:151]
    build_index(X2, cfg, queries=Q2, cache=tmp_path / "pins", say=said.append)
    assert builds == [1] and len(said) == 1 and "other vectors or settings" in said[0]


def test_an_unwritable_index_folder_is_said_and_the_index_still_answers(vectors, tmp_path):
    X, Q = vectors
    (tmp_path / "not-a-folder").write_text("x")
    said = []
    idx = build_index(X, SMALL, queries=Q[:150], cache=tmp_path / "not-a-folder" / "pins", say=said.append)
    assert idx.kind == "ivf" and len(idx.search(Q[200], 10)[0]) == 10
    assert len(said) == 1 and "could not be saved" in said[0] and "\n" not in said[0]


def space_context(X, cfg, index_dir=None):
    from pinterest_mm.embed.search import SearchContext
    from pinterest_mm.embed.space import JointSpace

    n = len(X)
    space = JointSpace("v", {}, [f"p{i}" for i in range(n)], X, X, np.ones(n, bool), np.ones(n, bool),
                       [], np.zeros((0, X.shape[1]), np.float32))
    pins = pd.DataFrame({"pin_id": space.pin_ids, "category": "c", "description": "", "image": "", "split": "test"})
    saves = pd.DataFrame({"pin_id": pd.Series(dtype=str), "user_id": pd.Series(dtype=str),
                          "row": pd.Series(dtype=np.int64)})
    return SearchContext(space, pins, saves, ["c"], X, space.users, cfg, index_dir)


def test_the_search_context_uses_a_kept_faiss_index_above_the_threshold(vectors, tmp_path, monkeypatch):
    X, Q = vectors
    ctx = space_context(X, SMALL, tmp_path / "index")
    assert ctx.pin_index.kind == "ivf" and (tmp_path / "index" / "pins.faiss").exists()
    exact = space_context(X, IndexConfig())
    assert exact.pin_index.kind == "exact"
    got = [ctx.search(q, 10)[0]["pin_id"].to_numpy() for q in Q[150:]]
    want = [exact.search(q, 10)[0]["pin_id"].to_numpy() for q in Q[150:]]
    assert np.mean([recall_at_k(g, w) for g, w in zip(got, want)]) >= 0.93
    builds = count_builds(monkeypatch)
    reloaded = space_context(X, SMALL, tmp_path / "index")
    assert reloaded.pin_index.kind == "ivf" and builds == []  # a second load reads the file
    assert reloaded.search(Q[160], 10)[0]["pin_id"].tolist() == ctx.search(Q[160], 10)[0]["pin_id"].tolist()


def test_bad_index_settings_are_refused():
    with pytest.raises(ValueError, match="target_recall"):
        IndexConfig(target_recall=1.5)
    with pytest.raises(ValueError, match="approximate must be one of"):
        IndexConfig(approximate="annoy")


def test_bench_index_command_measures_the_backends_side_by_side(capsys):
    from pinterest_mm.cli import main

    assert main(["bench", "index", "--sizes", "4000", "--glove-sizes", "", "--queries", "60",
                 "--backends", "numpy,flat,ivf,hnsw", "--json"]) == 0
    rows = {r["backend"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert set(rows) == {"numpy", "flat", "ivf", "hnsw"}
    for r in rows.values():
        assert r["vectors"] == "clustered" and r["n"] == 4000 and r["dim"] == 256 and r["queries"] == 30
        assert r["ms"] > 0 and r["cpu_ms"] >= 0
    assert rows["numpy"]["recall"] == rows["flat"]["recall"] == 1.0
    assert rows["ivf"]["tuned_recall"] >= 0.95 and rows["ivf"]["recall"] >= 0.85 and rows["ivf"]["nlist"] == 63
    assert 1 <= rows["ivf"]["param"] <= 63 and rows["hnsw"]["param"] >= 16 and rows["hnsw"]["recall"] >= 0.85
    assert rows["ivf"]["load_s"] is not None and rows["flat"]["extra_mb"] == pytest.approx(4000 * 256 * 4 / 2**20, rel=0.01)
