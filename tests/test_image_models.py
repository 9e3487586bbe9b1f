"""Image feature models: decoding any image, pretrained weights, shapes, resumable extraction."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import (
    STORE_FOR_ORIENTATION, assert_upright, exif_jpeg, jpeg_with_exif_block, malformed_exif_blocks,
    quadrant_image, shows_upright,
)
from pinterest_mm.models import WeightsUnavailable, get_model, list_models
from pinterest_mm.models import backbones as backbones_mod
from pinterest_mm.models.image import build_backbone, extract_to_file, load_rgb


def _write_odd_images(folder):
    """One file per awkward case; returns {case: path}."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8))
    paths = {}
    rgb.convert("RGBA").save(p := folder / "rgba.png"); paths["rgba"] = p
    rgb.convert("CMYK").save(p := folder / "cmyk.jpg"); paths["cmyk"] = p
    Image.fromarray((rng.integers(0, 65535, (40, 40))).astype(np.uint16)).save(p := folder / "gray16.png")
    paths["gray16"] = p
    rgb.convert("P").save(p := folder / "palette.png"); paths["palette"] = p
    frames = [rgb.convert("P"), rgb.rotate(90).convert("P")]
    frames[0].save(p := folder / "anim.gif", save_all=True, append_images=frames[1:]); paths["anim"] = p
    rgb.resize((1200, 900)).save(p := folder / "big.jpg"); paths["big_jpeg"] = p
    (p := folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg"); paths["corrupt"] = p
    (p := folder / "truncated.png").write_bytes((folder / "rgba.png").read_bytes()[:200]); paths["truncated"] = p
    return paths


def test_load_rgb_converts_every_mode_and_rejects_corrupt(tmp_path):
    paths = _write_odd_images(tmp_path)
    for case, path in paths.items():
        arr = load_rgb(path, 64)
        if case in {"corrupt", "truncated"}:
            assert arr is None, case
        else:
            assert arr is not None and arr.shape == (64, 64, 3) and arr.dtype == np.uint8, case
    assert load_rgb(tmp_path / "missing.png", 64) is None


def test_pretrained_lite0_classifies_a_photo_sensibly():
    """The packaged weights with (x - 127) / 128 call scikit-learn's flower photo a daisy."""
    from sklearn.datasets import load_sample_image
    from timm.data import ImageNetInfo

    bb = build_backbone(get_model("effnet-lite0").options, name="effnet-lite0")
    info = ImageNetInfo()
    arr = np.array(Image.fromarray(load_sample_image("flower.jpg")).resize((224, 224), Image.BILINEAR))
    feats = bb(arr[None])
    assert feats.shape == (1, 1280)
    with torch.inference_mode():
        logits = bb.net._fc(torch.from_numpy(feats))
    top3 = [info.index_to_description(int(i)) for i in logits.topk(3).indices[0]]
    assert "daisy" in top3, top3


@pytest.mark.parametrize("name", ["effnet-lite0", "effnet-lite1", "effnet-lite2"])
def test_offline_backbones_give_registry_dims(name):
    spec = get_model(name)
    model = spec.create()
    imgs = [Image.new("RGB", (80, 60), (200, 30, 30)), Image.new("L", (33, 33), 128)]
    X = model.featurize(images=imgs)
    assert X.shape == (2, spec.dim) and X.dtype == np.float32
    assert np.isfinite(X).all() and not np.allclose(X[0], X[1])
    assert model.backbone().size == spec.options["image_size"]


def test_thesis_timm_architectures_build_without_network():
    for spec in list_models():
        if spec.options.get("backend") != "timm":
            continue
        model = spec.create(pretrained=False, runtime="torch")  # exports: tests/test_runtimes.py
        bb = model.backbone("cpu")
        out = bb(np.zeros((1, 64, 64, 3), dtype=np.uint8))
        assert out.shape == (1, spec.dim), spec.name


def test_thesis_weights_offline_raise_clear_error(monkeypatch):
    import timm

    monkeypatch.delenv("PINTEREST_MM_DOWNLOAD", raising=False)
    monkeypatch.delenv("PINTEREST_MM_WEIGHTS_CONVNEXT_BASE", raising=False)
    monkeypatch.setattr(backbones_mod, "_timm_hub_file", lambda name: None)

    def no_hub(*args, pretrained=False, **kwargs):
        raise AssertionError("the hub must not be called")

    monkeypatch.setattr(timm, "create_model", no_hub)
    with pytest.raises(WeightsUnavailable) as err:
        get_model("convnext-base").create().backbone("cpu")
    msg = str(err.value)
    assert "timm.create_model" in msg and "convnext_base" in msg
    assert "PINTEREST_MM_WEIGHTS_CONVNEXT_BASE" in msg


def _images(folder, n, corrupt_at=()):
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        p = folder / f"im{i}.png"
        if i in corrupt_at:
            p.write_bytes(b"garbage")
        else:
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


class Killed(BaseException):
    """Stands for the process being killed."""


def test_extraction_streams_resumes_and_zeroes_corrupt_rows(tmp_path, monkeypatch):
    paths = _images(tmp_path, 10, corrupt_at={3})
    model = get_model("effnet-lite0").create(batch_size=2, chunk_rows=4)
    ref = tmp_path / "ref.npy"
    stats = extract_to_file(paths, model, ref, "fp1")
    X = np.load(ref)
    assert X.shape == (10, 1280) and stats["n_corrupt_images"] == 1 and stats["corrupt_rows"] == [3]
    assert np.all(X[3] == 0) and np.all(np.abs(X[[0, 1, 2, 4]]).sum(1) > 0)
    assert json.loads(ref.with_suffix(".json").read_text())["fingerprint"] == "fp1"
    assert not ref.with_suffix(".partial").exists()

    # Kill during the second chunk, then resume: only the missing chunks are computed.
    out = tmp_path / "out.npy"
    bb = model.backbone("cpu")
    real = type(bb).__call__
    calls = {"n": 0}

    def dying(self, batch):
        calls["n"] += 1
        if calls["n"] == 4:
            raise Killed()
        return real(self, batch)

    monkeypatch.setattr(type(bb), "__call__", dying)
    with pytest.raises(Killed):
        extract_to_file(paths, model, out, "fp1")
    assert not out.exists()
    assert sorted(p.name for p in out.with_suffix(".partial").glob("chunk_*[0-9].npy")) == ["chunk_00000.npy"]
    calls["n"] = -100
    extract_to_file(paths, model, out, "fp1")
    assert calls["n"] == -100 + 3  # chunk 1 (2 batches) and chunk 2 (1); chunk 0 was reused
    np.testing.assert_array_equal(np.load(out), X)


def test_pretrained_features_beat_random_weights(tiny_store):
    """One-shot nearest-centroid accuracy on the tiny dataset: pretrained >> random init."""
    pins = tiny_store.pins("tiny").groupby("label").head(8)  # 8 pins per class
    y = pins["label"].to_numpy()
    imgs = [Image.open(p).convert("RGB") for p in pins["image"]]
    acc = {}
    for pretrained in (True, False):
        torch.manual_seed(0)  # the random init must not depend on which tests ran before
        X = get_model("effnet-lite0").create(pretrained=pretrained).featurize(images=imgs)
        Xn = X / (np.linalg.norm(X, axis=1, keepdims=True) + 1e-12)
        scores = []
        for seed in range(5):
            rng = np.random.default_rng(seed)
            tr = np.array([rng.choice(np.flatnonzero(y == c)) for c in np.unique(y)])
            te = np.setdiff1d(np.arange(len(y)), tr)
            Z = Xn - Xn[tr].mean(0)
            pred = y[tr][(Z[te] @ Z[tr].T).argmax(1)]
            scores.append((pred == y[te]).mean())
        acc[pretrained] = float(np.mean(scores))
    assert acc[True] >= 0.95 and acc[True] > acc[False] + 0.03, acc


# ---------------------------------------------------------------------- EXIF orientation
@pytest.mark.parametrize("orientation", [3, 6, 8])
@pytest.mark.parametrize("side", [96, 960], ids=["small", "draft"])
def test_load_rgb_turns_exif_rotated_photos_upright(tmp_path, orientation, side):
    """Check a phone photo (pixels stored turned + EXIF Orientation) is decoded upright,
    also when ``draft`` decodes a large JPEG at a reduced scale."""
    up = quadrant_image((side, side * 2 // 3))
    path = tmp_path / "phone.jpg"
    path.write_bytes(exif_jpeg(up, orientation))
    with Image.open(path) as stored:  # the premise: without EXIF, the pixels are not upright
        assert not shows_upright(stored, up)
    arr = load_rgb(path, 64)
    assert arr is not None and arr.shape == (64, 64, 3)
    assert_upright(arr, up)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_load_rgb_keeps_images_with_malformed_exif(tmp_path):
    """Check a malformed EXIF block never costs the image: it decodes, as stored or upright."""
    up = quadrant_image()
    for name, (block, orientation) in malformed_exif_blocks().items():
        stored = up if orientation == 1 else up.transpose(STORE_FOR_ORIENTATION[orientation])
        path = tmp_path / f"{name}.jpg"
        path.write_bytes(jpeg_with_exif_block(stored, block))
        arr = load_rgb(path, 64)
        assert arr is not None, name
        assert_upright(arr, up)


def test_image_model_fingerprint_records_exif_transpose():
    """Check the feature config (the cache key) says images are turned by EXIF, so features
    cached before the change are rebuilt."""
    from pinterest_mm.build import model_fingerprints
    from pinterest_mm.models.classify import LogRegConfig

    spec = get_model("effnet-lite0")
    model = spec.create()
    assert model.config()["exif_transpose"] is True
    feat, fp = model_fingerprints(spec, model, "dataset-fp", LogRegConfig())

    class Before(type(model)):  # the config as it was before EXIF orientation was applied
        def config(self):
            return {k: v for k, v in super().config().items() if k != "exif_transpose"}

    old_feat, old_fp = model_fingerprints(spec, Before(spec, **spec.options), "dataset-fp", LogRegConfig())
    assert feat != old_feat and fp != old_fp
