"""Builds that go wrong: killed at random points, unreadable weights, corrupt checkpoints,
a full disk, an image folder that vanished. Each gives a clear message; nothing already
built is lost; a later run resumes and ends with exactly the results of an uninterrupted one.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app_fixtures import REAL_DATASET, REAL_MODELS, add_synth_models, shared_cache
from conftest import TINY_CONFIG
from pinterest_mm.build import BuildFailed, build
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.store import Store

from .conftest import REPO, cli_env, run_cli

SPLITS = ("train", "val", "test")


def all_probs(store: Store, dataset: str) -> dict[tuple[str, str], np.ndarray]:
    """Every stored (model, split) probability array."""
    out = {}
    for m in store.models(dataset)["model"]:
        for s in SPLITS:
            arr = store.load_probs(dataset, m, s)
            if arr is not None:
                out[(m, s)] = arr
    return out


def assert_complete(store: Store, dataset: str) -> None:
    """Every model in the store has all three splits with one row per pin: no half results."""
    counts = store.dataset_info(dataset)["split_counts"]
    for m in store.models(dataset)["model"]:
        for s in SPLITS:
            arr = store.load_probs(dataset, m, s)
            assert arr is not None and arr.shape[0] == counts[s], (m, s)
            assert np.allclose(arr.sum(1), 1.0, atol=1e-4), (m, s)


# ----------------------------------------------------------------------------- SIGKILL
@pytest.mark.slow
def test_build_killed_at_random_points_resumes_to_the_same_probabilities(tmp_path_factory, tmp_path):
    """Kill ``pinterest-mm build`` (SIGKILL) after random delays, 4 times, then let it finish.

    The reference is the uninterrupted build of the same dataset and models in another store
    (the shared app cache). Every intermediate state is a valid store; the end state is
    bit-identical.
    """
    ref_root, has_real = shared_cache(tmp_path_factory)
    if not has_real:
        pytest.skip("the real models cannot be built here")
    ref = Store(ref_root, read_only=True)
    manifest = ref_root.parent / (ref_root.name + "-data") / "manifest.csv"
    home = tmp_path / "home"
    store = Store(home)
    import_manifest(store, manifest, REAL_DATASET, TINY_CONFIG, progress=False)
    assert store.dataset_info(REAL_DATASET)["fingerprint"] == ref.dataset_info(REAL_DATASET)["fingerprint"]

    rng = random.Random(int(os.environ.get("PMM_KILL_SEED", "20251122")))
    # fast models first, so kills land in every stage: between models, in CV, in extraction
    models = ",".join(sorted(REAL_MODELS, key=lambda m: m.startswith("effnet")))
    args = [sys.executable, "-m", "pinterest_mm.cli", "build", REAL_DATASET, "--models", models, "--quiet"]
    delays, killed = [], 0
    for _ in range(8):  # up to 4 kills; a run that finishes before its kill ends the series
        delay = rng.uniform(2.5, 8.0)  # ~3 s of start-up (torch import), then tfidf, glove, effnet
        delays.append(round(delay, 2))
        proc = subprocess.Popen(args, cwd=REPO, env=cli_env(home), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            proc.wait(delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            killed += 1
        assert_complete(Store(home), REAL_DATASET)  # killed anywhere: still a valid store
        if proc.returncode == 0 or killed == 4:
            break
    assert killed >= 2, "the build finished before the kills: raise the delays' range"
    print(f"\nkill delays (s): {delays}, {killed} killed; built before the final run: "
          f"{sorted(Store(home).models(REAL_DATASET)['model'])}")
    res = run_cli(home, "build", REAL_DATASET, "--models", models, "--quiet")
    assert res.returncode == 0, res.stderr
    got, want = all_probs(Store(home), REAL_DATASET), all_probs(ref, REAL_DATASET)
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=str(key))
    leftovers = [p for p in home.rglob("*") if ".tmp" in p.name or p.suffix == ".partial"]
    assert not leftovers, leftovers


# ----------------------------------------------------------------------------- weights
@pytest.fixture
def synth_store(tiny_store):
    add_synth_models(tiny_store)
    return tiny_store


class _Evil:
    """A pickle that would create a file when loaded without ``weights_only``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("content", ["garbage", "truncated", "evil-pickle"])
def test_weights_that_fail_to_load_give_a_clear_message(content, synth_store, tmp_path):
    """Check a corrupt/hostile PINTEREST_MM_WEIGHTS_EFFNET_LITE0 file: exit 2, the file and
    variable named, no traceback, no code run, the models already built untouched."""
    import torch

    from pinterest_mm.models.image import effnet_lite_weights_file

    bad = tmp_path / "weights.pth"
    marker = tmp_path / "pwned"
    if content == "garbage":
        bad.write_bytes(os.urandom(4096))
    elif content == "truncated":
        data = effnet_lite_weights_file(0).read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:
        torch.save({"state": _Evil(str(marker))}, bad)
    before = all_probs(synth_store, "tiny")
    res = run_cli(synth_store.root, "build", "tiny", "--models", "effnet-lite0",
                  PINTEREST_MM_WEIGHTS_EFFNET_LITE0=str(bad))
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert str(bad) in res.stderr and "PINTEREST_MM_WEIGHTS_EFFNET_LITE0" in res.stderr
    assert not marker.exists()  # weights_only=True: the pickle's code never ran
    after = all_probs(Store(synth_store.root), "tiny")
    assert set(after) == set(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


@pytest.fixture
def glove_store(tiny_store):
    build(tiny_store, "tiny", ["glove-6b-50"], progress=False)
    return tiny_store


def test_corrupt_checkpoint_gives_a_message_and_a_rebuild_fixes_it(glove_store, monkeypatch):
    """Check a corrupted ``logreg.skops`` is a clear 'cannot be loaded' on the Predict page
    path, with the command that rebuilds it, and ``build --force`` restores the same model."""
    from pinterest_mm.models import load_predictor
    from pinterest_mm import predict
    from pinterest_mm.ui import data

    from pinterest_mm.models.checkpoints import CheckpointError

    ck = glove_store.checkpoints_dir("tiny", "glove-6b-50") / "logreg.skops"
    good = ck.read_bytes()
    ck.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="damaged.*pinterest-mm build tiny --models glove-6b-50"):
        load_predictor(glove_store, "tiny", "glove-6b-50")
    monkeypatch.setenv("PINTEREST_MM_HOME", str(glove_store.root))
    preds = data.load_predictors("tiny", f"corrupt-{glove_store.root}", ["glove-6b-50"])  # the page's loader
    assert preds["glove-6b-50"].startswith("cannot be loaded (")
    pin = predict.predict_pin(preds, {"glove-6b-50": "text"}, {"glove-6b-50": 1.0}, None, "tulip garden")
    assert pin.fused is None and "cannot be loaded" in pin.skipped["glove-6b-50"]
    before = all_probs(glove_store, "tiny")
    build(glove_store, "tiny", ["glove-6b-50"], progress=False, force=True)
    p = load_predictor(glove_store, "tiny", "glove-6b-50").predict_proba(texts=["tulip seeds garden soil"])
    assert p.shape == (1, 6)
    after = all_probs(glove_store, "tiny")
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


def test_corrupt_feature_cache_is_recomputed(glove_store):
    """Check a feature file overwritten with garbage (same sidecar) is recomputed, not used."""
    path = glove_store.features_path("tiny", "glove-6b-50")
    before = all_probs(glove_store, "tiny")
    path.write_bytes(b"\x93NUMPY garbage" * 10)
    build(glove_store, "tiny", ["glove-6b-50"], progress=False, force=True)
    after = all_probs(glove_store, "tiny")
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])


# ----------------------------------------------------------------------------- full disk
def test_full_disk_while_writing_features(glove_store, monkeypatch, capsys):
    """Check ENOSPC while writing features: a clear message, no half file, nothing lost;
    the next build (space freed) succeeds."""
    before = all_probs(glove_store, "tiny")
    feat = glove_store.features_path("tiny", "glove-6b-50")
    feat.unlink()
    feat.with_suffix(".json").unlink()
    real_save = np.save

    def full_disk(file, arr, *a, **k):
        if hasattr(file, "write"):
            file.write(b"\x93NUMPY half")  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full_disk)
    with pytest.raises(BuildFailed) as info:
        build(glove_store, "tiny", ["glove-6b-50"], progress=True, force=True)
    err = capsys.readouterr().err
    msg = info.value.results[0]["message"]
    assert "the disk is full" in msg and str(feat) in msg and "run the build again" in msg
    assert "Traceback" not in err
    assert not feat.exists() and not list(feat.parent.glob("*.tmp"))
    after = all_probs(Store(glove_store.root), "tiny")
    for k in before:  # the model built before is still there, unchanged
        np.testing.assert_array_equal(after[k], before[k])
    monkeypatch.setattr(np, "save", real_save)
    build(glove_store, "tiny", ["glove-6b-50"], progress=False, force=True)
    assert feat.exists()


def test_full_disk_while_writing_image_chunks(synth_store, monkeypatch):
    """Check ENOSPC in the resumable image-feature chunks: clear message, no half chunk."""
    monkeypatch.setattr(np, "save", lambda f, *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(BuildFailed) as info:
        build(synth_store, "tiny", ["effnet-lite0"], progress=False,
              options={"effnet-lite0": {"chunk_rows": 32}})
    assert "the disk is full" in info.value.results[0]["message"]
    part = synth_store.features_path("tiny", "effnet-lite0").with_suffix(".partial")
    assert not list(part.glob("*.tmp.npy"))
    assert len(synth_store.models("tiny")) == 6


# ----------------------------------------------------------------------------- vanished images
def test_image_folder_vanished_after_import(tmp_path, tiny_manifest):
    """Check a build after the image folder moved names the problem and keeps what was built
    (and builds the text models), instead of silently computing features of zeros."""
    data = tmp_path / "data"
    shutil.copytree(tiny_manifest.parent, data)
    store = Store(tmp_path / "home")
    import_manifest(store, data / "manifest.csv", "tiny", TINY_CONFIG, progress=False)
    build(store, "tiny", ["glove-6b-50"], progress=False)
    before = all_probs(store, "tiny")
    (data / "images").rename(data / "images-moved")
    res = run_cli(store.root, "build", "tiny", "--models", "effnet-lite0,tfidf-lr")
    assert res.returncode == 3, res.stderr  # tfidf-lr (text) still builds, but never exit 0 after a failure
    assert "Traceback" not in res.stderr
    assert "effnet-lite0: FAILED" in res.stderr and "missing since its import" in res.stderr
    assert "--images-root" in res.stderr
    assert "1 of 2 models were not built: effnet-lite0 (failed)" in res.stderr
    assert "`pinterest-mm build tiny --models effnet-lite0`" in res.stderr
    after_store = Store(store.root)
    assert set(after_store.models("tiny")["model"]) == {"glove-6b-50", "tfidf-lr"}
    after = all_probs(after_store, "tiny")
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])
    res = run_cli(store.root, "build", "tiny", "--models", "effnet-lite0", "--quiet")
    assert res.returncode == 2 and "No model could be built" in res.stderr
