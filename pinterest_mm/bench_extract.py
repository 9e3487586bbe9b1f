"""Feature-extraction speed per inference runtime, against a naive loop: ``pinterest-mm bench extract``.

For one image model and each installed runtime (torch eager, ONNX Runtime, OpenVINO) it
measures, as medians of a few repeats run side by side (round-robin, so a busy neighbour on a
shared machine slows every runtime alike):

- end to end: image files decoded + resized by the build's decoding threads, overlapped with
  the network, images per second;
- forward only: the network on pre-decoded uint8 batches;
- decode only: the decoding threads alone;
- the max abs difference of the features from torch eager on the same decoded batch.

The naive baseline is what one would write first: one process, ``PIL.Image.open`` ->
``convert("RGB")`` -> ``resize`` per image (full-size decode), one torch eager forward per
batch of 64. The default runtime's end-to-end speed over it is printed.

Images: the JPEG/PNG files of ``--images DIR``, else generated pin-sized JPEGs (736 x 1104,
smooth colour fields with shapes and grain, quality 90).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PIN_SIZE = (736, 1104)  # width x height of a typical pin image
NAIVE_BATCH = 64


@dataclass(frozen=True)
class ExtractBenchConfig:
    """Settings of one benchmark run.

    Attributes:
        model: Registry name of an image model.
        backends: Runtimes to measure (None: every installed one at fp32); ``openvino:bf16``
            measures a lower precision, named as such, with its drift from torch.
        images: Folder of JPEG/PNG files (None: generate pin-sized JPEGs).
        n: Number of images.
        repeats: Repeats per measurement (medians are reported).
        batch_size: Images per forward pass of the runtimes.
        threads: Intra-op threads (None: each runtime's default).
        workers: Decoding threads (None: the default).
    """

    model: str = "effnet-lite0"
    backends: tuple[str, ...] | None = None
    images: Path | None = None
    n: int = 128
    repeats: int = 3
    batch_size: int = 32
    threads: int | None = None
    workers: int | None = None


def make_pin_jpegs(folder: Path, n: int, seed: int = 0) -> list[str]:
    """Write ``n`` pin-sized JPEGs (736 x 1104, photo-like: smooth fields, shapes, grain)."""
    rng = np.random.default_rng(seed)
    w, h = PIN_SIZE
    paths = []
    for i in range(n):
        small = rng.integers(0, 255, (h // 64, w // 64, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((w, h), Image.BICUBIC)
        d = ImageDraw.Draw(img)
        for _ in range(4):
            x0, y0 = int(rng.integers(0, w - 100)), int(rng.integers(0, h - 100))
            box = [x0, y0, x0 + int(rng.integers(60, 400)), y0 + int(rng.integers(60, 400))]
            d.ellipse(box, fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        img = img.filter(ImageFilter.GaussianBlur(1.5))
        grain = rng.normal(0, 6, (h, w, 3))
        img = Image.fromarray(np.clip(np.asarray(img, np.float32) + grain, 0, 255).astype(np.uint8))
        path = folder / f"pin_{i:05d}.jpg"
        img.save(path, quality=90)
        paths.append(str(path))
    return paths


def list_images(folder: Path, n: int) -> list[str]:
    """The first ``n`` JPEG/PNG files under ``folder`` (sorted).

    Raises:
        FileNotFoundError: The folder is missing or holds no such files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No folder {folder}: give --images a folder of JPEG/PNG files.")
    paths = sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not paths:
        raise FileNotFoundError(f"{folder} holds no .jpg/.jpeg/.png files.")
    return paths[:n]


def _split(backend: str) -> tuple[str, str]:
    """``openvino:bf16`` -> (``openvino``, ``bf16``); a bare name is fp32."""
    name, _, precision = backend.partition(":")
    return name, precision or "fp32"


def _rate(n: int, fn) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def naive_loop(paths: list[str], torch_backbone, size: int) -> None:
    """PIL open -> RGB -> resize per image, one torch eager forward per batch of 64."""
    for s in range(0, len(paths), NAIVE_BATCH):
        arr = np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR))
                        for p in paths[s:s + NAIVE_BATCH]])
        torch_backbone(arr)


def run_extract_bench(config: ExtractBenchConfig = ExtractBenchConfig()) -> dict:
    """Run the benchmark and return ``{"model", "n", "results": [...], ...}`` (see module doc)."""
    import torch

    from .models.base import cpu_count
    from .models.image import prefetch_batches
    from .models.registry import get_model
    from .models.runtimes import BACKENDS, default_backend, installed, resolve_backend

    spec = get_model(config.model)
    if spec.modality != "image" or spec.kind != "features":
        raise ValueError(f"{config.model!r} is not an image feature model; try effnet-lite0.")
    backends = list(config.backends or [b for b in BACKENDS if installed(b)])
    for b in backends:  # a clear message for unknown or missing runtimes, before any work
        resolve_backend(*_split(b)[:1], precision=_split(b)[1])
    if "torch" not in backends:
        backends.insert(0, "torch")  # the reference of the differences
    cores = cpu_count()
    with tempfile.TemporaryDirectory(prefix="pmm-bench-") as tmp:
        paths = (list_images(config.images, config.n) if config.images
                 else make_pin_jpegs(Path(tmp), config.n))
        n = len(paths)
        models, bbs = {}, {}
        for b in backends:
            runtime, precision = _split(b)
            m = spec.create(runtime=runtime, precision=precision, batch_size=config.batch_size, threads=config.threads,
                            workers=config.workers)
            m.graph_dir = Path(tmp) / "graphs" / b.replace(":", "-")
            models[b], bbs[b] = m, m.backbone("cpu")
        size = bbs["torch"].size
        workers = models["torch"].workers
        batches = [paths[s:s + config.batch_size] for s in range(0, n, config.batch_size)]
        decoded = list(prefetch_batches(batches, size, workers=workers))
        premade = [arr for arr, _ok in decoded]
        reference = bbs["torch"](premade[0])
        diffs = {b: float(np.abs(bbs[b](premade[0]) - reference).max()) for b in backends}
        naive_torch = models["torch"].torch_backbone("cpu")

        e2e = {b: [] for b in backends}
        fwd = {b: [] for b in backends}
        dec, naive = [], []
        for _ in range(config.repeats):  # round-robin: a busy neighbour slows all alike
            dec.append(_rate(n, lambda: [None for _ in prefetch_batches(batches, size, workers=workers)]))
            for b in backends:
                bb = bbs[b]
                if b == "torch":
                    torch.set_num_threads(models[b]._threads("torch"))
                fwd[b].append(_rate(n, lambda: [bb(a) for a in premade]))
                e2e[b].append(_rate(n, lambda: [bb(a) for a, _ok in prefetch_batches(batches, size, workers=workers)]))
            torch.set_num_threads(cores)  # naive: torch's own default on these cores
            naive.append(_rate(n, lambda: naive_loop(paths, naive_torch, size)))

    med = statistics.median
    results = [{
        "backend": b,
        "images_per_s": round(med(e2e[b]), 2),
        "forward_images_per_s": round(med(fwd[b]), 2),
        "decode_images_per_s": round(med(dec), 2),
        "max_abs_diff_vs_torch": diffs[b],
    } for b in backends]
    default = default_backend("cpu")
    naive_rate = med(naive)
    return {
        "model": spec.name,
        "n": n,
        "results": results,
        "naive_images_per_s": round(naive_rate, 2),
        "default_backend": default,
        "speedup_vs_naive": {r["backend"]: round(r["images_per_s"] / naive_rate, 2) for r in results},
        "image_size": size,
        "batch_size": config.batch_size,
        "repeats": config.repeats,
        "cpu_cores": cores,
        "threads": {b: models[b]._threads(_split(b)[0]) for b in backends},
        "decode_workers": workers,
        "images": "generated 736x1104 JPEGs" if config.images is None else str(config.images),
    }


def format_extract_bench(result: dict) -> str:
    """A text table of :func:`run_extract_bench`'s result."""
    lines = [
        f"{result['model']} ({result['image_size']} px): {result['n']} images ({result['images']}), "
        f"{result['cpu_cores']} CPU cores, batch {result['batch_size']}, "
        f"{result['decode_workers']} decoding threads, medians of {result['repeats']} side-by-side repeats",
        f"{'backend':<12} {'threads':>7} {'end-to-end':>11} {'forward':>9} {'decode':>8} "
        f"{'vs naive':>9} {'max |diff| vs torch':>20}  (images/s)",
    ]
    for r in result["results"]:
        mark = " *" if r["backend"] == result["default_backend"] else ""
        lines.append(
            f"{r['backend']:<12} {result['threads'][r['backend']]:>7} {r['images_per_s']:>11.1f} "
            f"{r['forward_images_per_s']:>9.1f} {r['decode_images_per_s']:>8.1f} "
            f"{result['speedup_vs_naive'][r['backend']]:>8.2f}x {r['max_abs_diff_vs_torch']:>20.2e}{mark}")
    lines.append(f"naive loop (PIL open/convert/resize, torch eager per {NAIVE_BATCH}): "
                 f"{result['naive_images_per_s']:.1f} images/s; * = the default backend")
    return "\n".join(lines)
