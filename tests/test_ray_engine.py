"""The Ray engine of ``build``: the same features and probabilities as a local build, resuming
after a kill, work spread over two (simulated) nodes, and a clear message without Ray.

One Ray cluster serves the whole session: ``ray.cluster_utils.Cluster`` with two nodes of one
CPU each (the machine's two cores), so the backbone actor takes one node's CPU and the decoding
tasks must run on the other. Tests that need it are skipped when Ray is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CONFIG
from shard_watch import shard_stamps, watch_resume
from pinterest_mm.build import build
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.store import Store

MODEL = "effnet-lite0"
# 12 shards of 12 pins, each run as a batch of 8 and one of 4 (as the local build cuts them)
OPTIONS = {MODEL: {"image_size": 128, "chunk_rows": 12, "batch_size": 8}}
N_SHARDS = 12
REPO = Path(__file__).resolve().parents[1]


def _new_store(root: Path, manifest: Path) -> Store:
    s = Store(root)
    import_manifest(s, manifest, "tiny", TINY_CONFIG, progress=False)
    return s


@pytest.fixture(scope="module")
def pair(ray_cluster, tmp_path_factory, tiny_manifest):
    """The tiny dataset built locally and with the Ray engine: (local store, ray store, ray results)."""
    root = tmp_path_factory.mktemp("pair")
    local = _new_store(root / "local", tiny_manifest)
    build(local, "tiny", [MODEL], progress=False, options=OPTIONS)
    on_ray = _new_store(root / "ray", tiny_manifest)
    results = build(on_ray, "tiny", [MODEL], progress=False, options=OPTIONS, engine="ray")
    return local, on_ray, results


def _probs(store: Store) -> dict:
    return {sp: store.load_probs("tiny", MODEL, sp) for sp in ("train", "val", "test")}


def test_ray_features_and_probabilities_equal_local(pair):
    local, on_ray, results = pair
    assert results[0]["status"] == "built"
    assert results[0]["engine"]["computed"] == N_SHARDS and results[0]["engine"]["reused"] == 0
    assert results[0]["engine"]["gpus_per_actor"] == 0  # no GPU in the cluster: CPU actors
    a = np.load(local.features_path("tiny", MODEL))
    b = np.load(on_ray.features_path("tiny", MODEL))
    assert a.shape == (len(local.pins("tiny")), 1280)
    np.testing.assert_array_equal(b, a)  # the same bits, pin for pin
    for split, p in _probs(local).items():
        np.testing.assert_array_equal(_probs(on_ray)[split], p, err_msg=split)
    side = lambda s: s.features_path("tiny", MODEL).with_suffix(".json").read_text()  # noqa: E731
    assert side(on_ray) == side(local)  # same fingerprint and statistics: either cache serves both
    from pinterest_mm.engines.shards import shard_dir

    assert not shard_dir(on_ray.features_path("tiny", MODEL)).exists()  # shards removed once assembled


def test_decoding_tasks_and_backbone_actors_ran_on_both_nodes(pair, ray_cluster):
    import ray

    info = pair[2][0]["engine"]
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(alive) == 2
    assert set(info["decode_nodes"]) | set(info["extract_nodes"]) == alive
    # the actor holds its node's only CPU, so the decoding ran on the other node
    assert set(info["decode_nodes"]) - set(info["extract_nodes"])


def test_killed_ray_build_resumes_with_the_missing_shards_only(pair, ray_cluster, tmp_path, tiny_manifest,
                                                                monkeypatch):
    from pinterest_mm.engines.shards import shard_dir

    local, on_ray = pair[0], pair[1]
    store = _new_store(tmp_path / "store", tiny_manifest)
    # the exported graph of the same weights (its sidecar names them): the killed process loads
    # it instead of exporting it again, which keeps this test short
    for f in on_ray.checkpoints_dir("tiny", MODEL).glob("backbone.*"):
        shutil.copy2(f, store.checkpoints_dir("tiny", MODEL) / f.name)
    folder = shard_dir(store.features_path("tiny", MODEL))
    script = (f"from pinterest_mm.build import build; from pinterest_mm.store import Store; "
              f"build(Store({str(store.root)!r}), 'tiny', [{MODEL!r}], progress=False, options={OPTIONS!r}, "
              f"engine='ray', address={ray_cluster.address!r})")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    shards = lambda: sorted(folder.glob("rows_*.parquet"))  # noqa: E731
    deadline = time.monotonic() + 240
    while proc.poll() is None and len(shards()) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    finished = proc.poll() is not None
    proc.kill()
    err = proc.communicate()[1].decode(errors="replace")
    assert not finished, f"the build ended before it could be killed: {err[-2000:]}"
    kept = shard_stamps(shards())
    assert 1 <= len(kept) < N_SHARDS, err[-2000:]

    written, seen = watch_resume(monkeypatch, kept)
    results = build(store, "tiny", [MODEL], progress=False, options=OPTIONS, engine="ray")
    info = results[0]["engine"]
    assert (info["reused"], info["computed"]) == (len(kept), N_SHARDS - len(kept))
    assert not set(written) & set(kept) and len(written) == N_SHARDS - len(kept)
    assert seen == kept  # the shards of the killed run were neither rewritten nor replaced
    np.testing.assert_array_equal(np.load(store.features_path("tiny", MODEL)),
                                  np.load(local.features_path("tiny", MODEL)))
    for split, p in _probs(local).items():
        np.testing.assert_array_equal(_probs(store)[split], p, err_msg=split)


def test_without_ray_the_engine_says_how_to_install_it(tiny_store, monkeypatch, capsys):
    from pinterest_mm.cli import main
    from pinterest_mm.engines.ray_session import EngineUnavailable

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    with pytest.raises(EngineUnavailable, match=r"pip install -e '\.\[ray\]'"):
        build(tiny_store, "tiny", [MODEL], progress=False, engine="ray")
    assert tiny_store.models("tiny").empty
    monkeypatch.setenv("PINTEREST_MM_HOME", str(tiny_store.root))
    assert main(["build", "tiny", "--engine", "ray", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: The Ray engine needs Ray Data") and "--engine local" in err
    assert len(err.strip().splitlines()) == 1


def test_engine_arguments_are_checked_before_any_work(tiny_store):
    with pytest.raises(ValueError, match="Unknown build engine 'spark'"):
        build(tiny_store, "tiny", [MODEL], progress=False, engine="spark")
    with pytest.raises(ValueError, match="add --engine ray"):
        build(tiny_store, "tiny", [MODEL], progress=False, address="auto")
    assert tiny_store.models("tiny").empty


def test_nothing_imports_ray_unless_the_engine_is_chosen():
    code = ("import sys, pinterest_mm.build, pinterest_mm.cli, pinterest_mm.engines.ray_extract, "
            "pinterest_mm.engines.ray_text; "
            "from pinterest_mm.cli import build_parser; "
            "a = build_parser().parse_args(['build', 'x', '--engine', 'ray', '--address', 'auto']); "
            "assert (a.engine, a.address) == ('ray', 'auto'); "
            "assert 'ray' not in sys.modules, 'ray imported'")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_shards_assemble_in_row_order_and_foreign_ones_are_refused(tmp_path):
    from pinterest_mm.engines import shards as sh

    folder, out = tmp_path / "m.shards", tmp_path / "m.npy"
    meta = {"fingerprint": "f1", "n": 5, "shard_rows": 3, "batch_size": 2}
    sh.prepare_folder(folder, meta)
    assert sh.shard_ranges(5, 3) == [(0, 3), (3, 5)] and sh.local_batches(3, 5, 2) == [(3, 5)]
    X = np.arange(10, dtype=np.float32).reshape(5, 2)
    ids = [f"p{i}" for i in range(5)]
    for lo, hi in reversed(sh.shard_ranges(5, 3)):  # written in any order
        ok = np.array([r != 4 for r in range(lo, hi)])
        sh.write_shard(sh.shard_file(folder, lo, hi), np.arange(lo, hi), ids[lo:hi], ok, X[lo:hi],
                       ["a"] * (hi - lo), ["b"] * (hi - lo))
    assert sh.assemble(folder, sh.shard_ranges(5, 3), ids, out) == [4]  # the rows whose ok is False
    np.testing.assert_array_equal(np.load(out), X)
    with pytest.raises(RuntimeError, match="does not hold the pins"):
        sh.assemble(folder, sh.shard_ranges(5, 3), ["p0", "p1", "x", "p3", "p4"], out)
    sh.prepare_folder(folder, {**meta, "fingerprint": "f2"})  # other settings: shards discarded
    assert not list(folder.glob("rows_*"))
