"""Inference runtimes: export + load on the packaged weights, agreement with torch, fingerprints,
and graphs that are missing, damaged or half-written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pinterest_mm.models import get_model
from pinterest_mm.models import runtimes
from pinterest_mm.models.runtimes import (
    FP32_TOLERANCE,
    GraphError,
    RuntimeSettings,
    RuntimeUnavailable,
    installed,
    resolve_backend,
)

GRAPH_BACKENDS = [
    pytest.param(b, marks=pytest.mark.skipif(not installed(b), reason=f"{b} is not installed"))
    for b in ("onnxruntime", "openvino")
]


def _photos() -> list[Image.Image]:
    """Two real photos (scikit-learn's samples) and a flat colour, as PIL images."""
    from sklearn.datasets import load_sample_image

    return [Image.fromarray(load_sample_image("flower.jpg")), Image.fromarray(load_sample_image("china.jpg")),
            Image.new("RGB", (90, 140), (30, 160, 90))]


@pytest.fixture
def fresh_exports(monkeypatch):
    """Forget the graphs this process exported, so the test exports its own."""
    monkeypatch.setattr(runtimes, "_CHECKED", {})


@pytest.fixture(scope="module")
def torch_features():
    return get_model("effnet-lite0").create(runtime="torch").featurize(images=_photos())


@pytest.mark.parametrize("backend", GRAPH_BACKENDS)
def test_export_and_load_agree_with_torch_on_packaged_weights(backend, tmp_path, torch_features, capsys,
                                                             fresh_exports):
    """The packaged Lite0 exported and run by ``backend`` gives torch's features (<= 1e-4)."""
    model = get_model("effnet-lite0").create(runtime=backend)
    model.graph_dir = tmp_path
    X = model.featurize(images=_photos())
    assert X.shape == (3, 1280) and X.dtype == np.float32
    diff = np.abs(X - torch_features).max()
    assert diff <= FP32_TOLERANCE, diff
    assert np.abs(X).max() > 0.1  # real features, not zeros
    graph = tmp_path / f"backbone.{backend}.onnx"
    meta = json.loads(graph.with_suffix(".json").read_text())
    assert meta["sha256"] == runtimes.file_sha256(graph)
    assert meta["identity"]["model"] == "effnet-lite0" and meta["check_max_abs_diff"] <= FP32_TOLERANCE
    assert not list(tmp_path.glob("*.tmp*"))
    assert "rebuilt" not in capsys.readouterr().err  # a first export is not a repair

    # A second model object reuses the graph: nothing is exported again.
    again = get_model("effnet-lite0").create(runtime=backend)
    again.graph_dir = tmp_path
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runtimes, "export_onnx", _no_export)
        np.testing.assert_array_equal(again.featurize(images=_photos()), X)
        # Another store's folder gets a byte copy of the graph this process checked.
        other = get_model("effnet-lite0").create(runtime=backend)
        other.graph_dir = tmp_path / "other"
        np.testing.assert_array_equal(other.featurize(images=_photos()), X)
        assert runtimes.file_sha256(other.graph_dir / graph.name) == meta["sha256"]


@pytest.mark.skipif(not installed("onnxruntime"), reason="onnxruntime is not installed")
def test_hub_backbone_exports_and_agrees_with_torch(tmp_path):
    """A timm backbone (EfficientNetV2-B1, random init: no hub here) exports and runs in ONNX
    Runtime with torch's features; a random-init graph is never reused."""
    model = get_model("effnetv2-b1").create(pretrained=False, runtime="onnxruntime")
    model.graph_dir = tmp_path
    batch = np.random.default_rng(0).integers(0, 255, (3, 224, 224, 3), dtype=np.uint8)
    X = model.backbone("cpu")(batch)
    ref = model.torch_backbone("cpu")(batch)
    assert X.shape == (3, 1280) and np.abs(X - ref).max() <= FP32_TOLERANCE
    assert model.graph_identity() is None


def _no_export(*args, **kwargs):
    raise AssertionError("the stored graph should have been reused")


def test_default_is_onnxruntime_on_cpu_and_torch_on_a_gpu(monkeypatch):
    monkeypatch.delenv(runtimes.ENV_BACKEND, raising=False)
    if not installed("onnxruntime"):
        pytest.skip("onnxruntime is not installed")
    assert resolve_backend(None, "cpu") == "onnxruntime"
    assert resolve_backend(None, "cuda") == "torch"
    monkeypatch.setenv(runtimes.ENV_BACKEND, "torch")
    assert resolve_backend(None, "cpu") == "torch"
    assert resolve_backend("onnxruntime", "cpu") == "onnxruntime"  # the argument wins over the env


def test_unknown_backend_or_precision_is_a_clear_error(monkeypatch):
    with pytest.raises(RuntimeUnavailable, match="Unknown inference backend 'tensorrt'"):
        resolve_backend("tensorrt")
    with pytest.raises(RuntimeUnavailable, match="not offered by torch"):
        resolve_backend("torch", precision="bf16")
    monkeypatch.setenv(runtimes.ENV_THREADS, "two")
    with pytest.raises(RuntimeUnavailable, match="PINTEREST_MM_THREADS must be a whole number"):
        runtimes.default_threads("torch", 2)


def test_fingerprint_changes_with_backend_and_precision():
    from pinterest_mm.build import model_fingerprints
    from pinterest_mm.models.classify import LogRegConfig

    spec = get_model("effnet-lite0")
    fps = {}
    for backend, precision in [("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")]:
        if not installed(backend):
            continue
        model = spec.create(runtime=backend, precision=precision)
        assert model.config()["runtime"] == backend and model.config()["precision"] == precision
        fps[(backend, precision)] = model_fingerprints(spec, model, "dataset-fp", LogRegConfig())
    assert len(fps) >= 2
    assert len({f for f, _ in fps.values()}) == len(fps)  # feature caches never shared
    assert len({m for _, m in fps.values()}) == len(fps)
    # threads and decoding threads do not change the features: same fingerprints
    a = spec.create(runtime="torch", threads=1, workers=1)
    b = spec.create(runtime="torch", threads=2, workers=3)
    assert model_fingerprints(spec, a, "d", LogRegConfig()) == model_fingerprints(spec, b, "d", LogRegConfig())


needs_ort = pytest.mark.skipif(not installed("onnxruntime"), reason="onnxruntime is not installed")


@needs_ort
@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing", "no_sidecar", "other_weights"])
def test_damaged_or_missing_graph_is_rebuilt_with_a_message(damage, tmp_path, torch_features, capsys):
    first = get_model("effnet-lite0").create(runtime="onnxruntime")
    first.graph_dir = tmp_path
    first.backbone()
    graph = tmp_path / "backbone.onnxruntime.onnx"
    meta = graph.with_suffix(".json")
    if damage == "garbage":
        graph.write_bytes(b"not an onnx graph at all")
    elif damage == "truncated":
        graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    elif damage == "missing":
        graph.unlink()
    elif damage == "no_sidecar":
        meta.unlink()
    else:
        record = json.loads(meta.read_text())
        record["identity"]["weights"] = "0123456789abcdef"
        meta.write_text(json.dumps(record))
    capsys.readouterr()

    second = get_model("effnet-lite0").create(runtime="onnxruntime")
    second.graph_dir = tmp_path
    X = second.featurize(images=_photos())
    err = capsys.readouterr().err
    assert "backbone.onnxruntime.onnx is rebuilt" in err, err
    assert "Traceback" not in err and str(tmp_path) not in err
    assert np.abs(X - torch_features).max() <= FP32_TOLERANCE
    assert json.loads(meta.read_text())["sha256"] == runtimes.file_sha256(graph)


@needs_ort
def test_a_failed_export_leaves_no_graph_to_load(tmp_path, monkeypatch, fresh_exports):
    """A graph that fails its check (or a kill mid-write) never sits at the final path."""
    model = get_model("effnet-lite0").create(runtime="onnxruntime")
    model.graph_dir = tmp_path
    bb = model.torch_backbone("cpu")
    real = bb.forward_nchw
    monkeypatch.setattr(bb, "forward_nchw", lambda x: real(x) + 1e-3)  # torch disagrees
    with pytest.raises(GraphError, match="differs from torch"):
        model.backbone()
    assert sorted(p.name for p in tmp_path.iterdir()) == []

    def killed(module, example, path):
        path.write_bytes(b"\x08\x07half")  # what a kill during the write leaves
        raise KeyboardInterrupt

    monkeypatch.setattr(runtimes, "export_onnx", killed)
    with pytest.raises(KeyboardInterrupt):
        model.backbone()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@needs_ort
def test_build_keeps_the_graph_and_predict_reuses_it(tiny_store, monkeypatch):
    from pinterest_mm.build import build
    from pinterest_mm.models.predictor import load_predictor

    monkeypatch.delenv(runtimes.ENV_BACKEND, raising=False)
    res = build(tiny_store, "tiny", ["effnet-lite0"], progress=False,
                runtime=RuntimeSettings(threads=1, workers=1))
    assert res[0]["status"] == "built"
    folder = tiny_store.checkpoints_dir("tiny", "effnet-lite0")
    assert (folder / "backbone.onnxruntime.onnx").exists()
    assert json.loads((folder / "runtime.json").read_text()) == {"runtime": "onnxruntime", "precision": "fp32"}
    params = tiny_store.models("tiny").iloc[0]["params"]
    assert params["config"]["runtime"] == "onnxruntime"

    monkeypatch.setattr(runtimes, "export_onnx", _no_export)
    pins = tiny_store.pins("tiny").head(3)
    probs = load_predictor(tiny_store, "tiny", "effnet-lite0").predict_proba(
        images=[Image.open(p) for p in pins["image"]])
    assert probs.shape == (3, len(tiny_store.classes("tiny")))
    assert (probs.argmax(1) == pins["label"].to_numpy()).mean() >= 2 / 3

    # Another backend is another model fingerprint: a rebuild, not a reuse.
    res = build(tiny_store, "tiny", ["effnet-lite0"], progress=False, runtime=RuntimeSettings(backend="torch"))
    assert res[0]["status"] == "built"
    assert tiny_store.models("tiny").iloc[0]["params"]["config"]["runtime"] == "torch"


def test_bench_extract_json_has_the_documented_shape(tmp_path, capsys):
    from pinterest_mm.cli import main

    backends = "torch,onnxruntime" if installed("onnxruntime") else "torch"
    assert main(["bench", "extract", "--n", "4", "--repeats", "1", "--batch-size", "2",
                 "--backend", backends, "--threads", "1", "--workers", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "effnet-lite0" and out["n"] == 4
    rows = {r["backend"]: r for r in out["results"]}
    assert set(rows) == set(backends.split(","))
    for r in rows.values():
        assert set(r) == {"backend", "images_per_s", "forward_images_per_s", "decode_images_per_s",
                          "max_abs_diff_vs_torch"}
        assert r["images_per_s"] > 0 and r["forward_images_per_s"] > 0 and r["decode_images_per_s"] > 0
        assert r["max_abs_diff_vs_torch"] <= FP32_TOLERANCE
    assert rows["torch"]["max_abs_diff_vs_torch"] == 0.0
    assert out["naive_images_per_s"] > 0 and set(out["speedup_vs_naive"]) == set(rows)


def test_bench_extract_rejects_bad_input(tmp_path, capsys):
    from pinterest_mm.cli import main

    assert main(["bench", "extract", "--backend", "tensorrt", "--n", "2"]) == 2
    assert "Unknown inference backend" in capsys.readouterr().err
    assert main(["bench", "extract", "--images", str(tmp_path / "nowhere"), "--n", "2"]) == 2
    assert "No folder" in capsys.readouterr().err
    assert main(["bench", "extract", "--model", "glove-6b-50", "--n", "2"]) == 2
    assert "not an image feature model" in capsys.readouterr().err
