"""Image feature models: a pretrained CNN without its top layer + global average pooling (eq. 3.3).

:class:`ImageFeatureModel` is the registry's image model: it builds its backbone
(:mod:`.backbones`: EfficientNet-Lite0/1/2 from packaged weights, the thesis's timm backbones
ConvNeXt and EfficientNetV2 at 224 px), extracts the features of a dataset's pins resumably
(:mod:`.extract`) and featurizes new PIL images for predictions (:meth:`ImageFeatureModel.featurize`).

Runtimes (:mod:`.runtimes`): the network runs in torch eager mode, or as an ONNX graph exported
once from the same weights (kept in the model's checkpoint folder) in ONNX Runtime (the
default on CPU) or OpenVINO. The runtime and its precision are part of the feature settings,
so features of one runtime are never reused for another.

The helpers of the two modules stay importable from here (``build_backbone``,
``extract_to_file``, ``load_rgb``, ``prefetch_batches``, ...).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np

from .backbones import (
    EFFNET_LITE_MEAN,
    EFFNET_LITE_STD,
    GraphBackbone,
    _Pooled,
    build_backbone,
    effnet_lite_weights_file,
    timm_cached,
    timm_weights_file,
    weights_source,
)
from .base import BuildContext, cpu_count, load_cached_features, pick_device
from .extract import (
    check_images_present,
    extract_to_file,
    load_rgb,
    prefetch_batches,
    prepare_pil,
)
from .weights import weights_identity

__all__ = [
    "EFFNET_LITE_MEAN", "EFFNET_LITE_STD", "GraphBackbone", "ImageFeatureModel", "build_backbone",
    "check_images_present", "effnet_lite_weights_file", "extract_to_file", "load_rgb",
    "prefetch_batches", "prepare_pil", "timm_cached", "timm_weights_file", "weights_source",
]


# ---------------------------------------------------------------------- the model object
class ImageFeatureModel:
    """Pretrained CNN features of the pin images (one registry entry per backbone).

    Args:
        spec: The registry spec.
        pretrained: Load pretrained weights (False: random init, for tests).
        batch_size: Images per forward pass.
        chunk_rows: Rows per resumable chunk file.
        workers: Decoding threads (None: :func:`.runtimes.default_workers`).
        runtime: ``torch``, ``onnxruntime`` or ``openvino`` (None: ``$PINTEREST_MM_BACKEND``
            or the measured default, :func:`.runtimes.default_backend`).
        precision: ``fp32`` (default) or ``bf16`` (OpenVINO only).
        threads: Intra-op threads of the network (None: :func:`.runtimes.default_threads`).
        **options: Registry options (backend, image_size, ...) and ``weights_path``.
    """

    def __init__(self, spec, *, pretrained: bool = True, batch_size: int = 32,
                 chunk_rows: int = 256, workers: int | None = None, runtime: str | None = None,
                 precision: str = "fp32", threads: int | None = None, **options) -> None:
        from .runtimes import default_workers

        self.spec = spec
        self.options = options
        self.pretrained = pretrained
        self.batch_size = batch_size
        self.chunk_rows = chunk_rows
        self.workers = workers if workers is not None else default_workers(cpu_count())
        self.runtime = runtime
        self.precision = precision
        self.threads = threads
        self.device: str | None = None
        self.graph_dir: Path | None = None  # where the exported graph is kept (checkpoints)
        self._backbone = None
        self._torch: _Pooled | None = None

    def resolved_runtime(self) -> str:
        """The runtime this model runs in here (see :func:`.runtimes.resolve_backend`)."""
        from .runtimes import resolve_backend

        return resolve_backend(self.runtime, pick_device(self.device), self.precision)

    def config(self) -> dict:
        """Settings that decide the features (part of the fingerprints)."""
        keep = {k: v for k, v in self.options.items() if k not in {"weights_module", "weights_path"}}
        # exif_transpose: images are turned upright by their EXIF tag (features cached before differ)
        # runtime + precision: each runtime's features are its own, never mixed with another's
        return {**keep, "pretrained": self.pretrained, "pooling": "global_avg", "exif_transpose": True,
                "runtime": self.resolved_runtime(), "precision": self.precision}

    def torch_backbone(self, device: str | None = None) -> _Pooled:
        """Return the (lazily built) torch backbone on ``device`` (the reference runtime)."""
        if self._torch is None:
            self._torch = build_backbone(self.options, pretrained=self.pretrained, name=self.spec.name)
        dev = pick_device(device)
        if self._torch.device != dev:
            self._torch.to(dev)
        return self._torch

    def backbone(self, device: str | None = None):
        """Return the (lazily built) backbone in the chosen runtime.

        torch: the network on ``device``. ONNX Runtime / OpenVINO: the graph kept in
        :attr:`graph_dir` (exported there first when missing, damaged or from other weights).
        """
        if device is not None:
            self.device = device
        runtime = self.resolved_runtime()
        threads = self._threads(runtime)
        if runtime == "torch":
            bb = self.torch_backbone(device)
            import torch

            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            self._backbone = bb
            return bb
        if isinstance(self._backbone, GraphBackbone) and self._backbone.runtime == runtime:
            return self._backbone
        self._backbone = self._graph_backbone(runtime, threads)
        return self._backbone

    def _threads(self, runtime: str) -> int:
        from .runtimes import default_threads

        return self.threads or default_threads(runtime, cpu_count())

    def graph_identity(self) -> dict | None:
        """What the exported graph is made from, or None when it must not be reused (random init)."""
        from .runtimes import EXPORT_VERSION, OPSET

        if not self.pretrained:
            return None
        source = weights_source(self.options, self.spec.name)
        if source is None:
            return None
        keep = {k: v for k, v in self.options.items() if k not in {"weights_module", "weights_path"}}
        return {"model": self.spec.name, "options": keep, "weights": weights_identity(source),
                "export": EXPORT_VERSION, "opset": OPSET}

    def _graph_backbone(self, runtime: str, threads: int) -> GraphBackbone:
        from .runtimes import ensure_graph

        if self.graph_dir is None:  # featurize outside a store: a private folder, removed with us
            tmp = tempfile.mkdtemp(prefix="pmm-graph-")
            weakref.finalize(self, shutil.rmtree, tmp, True)
            self.graph_dir = Path(tmp)
        identity = self.graph_identity()
        size = int(self.options["image_size"])
        path = Path(self.graph_dir) / f"backbone.{runtime}.onnx"
        example = np.random.default_rng(0).uniform(0, 255, (2, 3, size, size)).astype(np.float32)
        forward = ensure_graph(
            path, identity, lambda: self.torch_backbone("cpu").exportable(), example,
            lambda x: self.torch_backbone("cpu").forward_nchw(x),
            backend=runtime, threads=threads, precision=self.precision,
        )
        dim = int(forward(example[:1]).shape[1])
        return GraphBackbone(forward, size, dim, runtime)

    # -- build
    def compute_features(self, ctx: BuildContext) -> np.ndarray:
        """Return the features of all pins (row order), from the cache or by extraction."""
        cached = load_cached_features(ctx.features_path, ctx.feature_fingerprint)
        if cached is not None:
            ctx.stats.update(cached[1])
            return cached[0]
        paths = [str(p) for p in ctx.pins["image"].tolist()]
        check_images_present(paths)
        self.graph_dir = Path(ctx.checkpoints)
        stats = extract_to_file(
            paths, self, ctx.features_path, ctx.feature_fingerprint,
            device=ctx.device, progress=ctx.progress, desc=f"{self.spec.name}: features",
        )
        ctx.stats.update(stats)
        return np.load(ctx.features_path, mmap_mode="r")

    # -- predict
    def featurize(self, images=None, texts=None) -> np.ndarray:
        """Return features (n, dim) of PIL images (a corrupt/None image gets zeros)."""
        if images is None:
            raise ValueError(f"{self.spec.name} is an image model: pass images=")
        bb = self.backbone()
        arr = np.zeros((len(images), bb.size, bb.size, 3), dtype=np.uint8)
        for i, im in enumerate(images):
            if im is not None:
                arr[i] = prepare_pil(im, bb.size)
        return bb(arr)

    def save_state(self, folder: Path) -> None:
        """Record the runtime the features were made with (the weights come from a package or
        the hub cache; an exported graph is already in ``folder``)."""
        record = {"runtime": self.resolved_runtime(), "precision": self.precision}
        tmp = Path(folder) / "runtime.json.tmp"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, Path(folder) / "runtime.json")

    def load_state(self, folder: Path) -> None:
        """Predict with the runtime of the build and its exported graph in ``folder``.

        Predictions run one intra-op thread unless ``$PINTEREST_MM_THREADS`` says otherwise
        (see :mod:`.predictor`). A build of an older version (no record) keeps the default
        runtime.
        """
        from .runtimes import ENV_THREADS, env_int

        self.graph_dir = Path(folder)
        try:
            record = json.loads((Path(folder) / "runtime.json").read_text())
        except (OSError, ValueError):
            record = {}
        if self.runtime is None and record.get("runtime"):
            self.runtime = record["runtime"]
        self.precision = record.get("precision", self.precision)
        self.threads = env_int(ENV_THREADS) or 1

