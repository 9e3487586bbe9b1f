"""Image feature extraction speed: end-to-end (decode + resize + forward) vs forward only.

For each offline image backbone, prints images/second end-to-end from image files (JPEG and
PNG, decoded and resized by the same thread pool the build uses, overlapped with the
network) and forward-only on pre-made uint8 batches, as medians of a few repeats, and their
ratio (1.0 = decoding is fully hidden behind compute).

    python benchmarks/bench_features.py [--n 96] [--repeats 3] [--images DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pinterest_mm.models.base import cpu_count, pick_device  # noqa: E402
from pinterest_mm.models.image import prefetch_batches  # noqa: E402
from pinterest_mm.models.registry import default_models, get_model  # noqa: E402


def make_images(folder: Path, n: int, seed: int = 0) -> list[str]:
    """Write ``n`` photo-sized images (half JPEG 640x480, half PNG 500x500) and return paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        w, h = (640, 480) if i % 2 == 0 else (500, 500)
        arr = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
        img = Image.fromarray(arr).resize((w, h), Image.BILINEAR)
        d = ImageDraw.Draw(img)
        d.ellipse([w // 4, h // 4, 3 * w // 4, 3 * h // 4], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        path = folder / (f"img_{i:04d}.jpg" if i % 2 == 0 else f"img_{i:04d}.png")
        img.save(path, quality=90) if i % 2 == 0 else img.save(path)
        paths.append(str(path))
    return paths


def bench_model(name: str, paths: list[str], repeats: int, batch_size: int, device: str) -> dict:
    """Return images/second end-to-end and forward-only (medians) for one backbone."""
    model = get_model(name).create(batch_size=batch_size)
    bb = model.backbone(device)
    n = len(paths)
    batches = [paths[s:s + batch_size] for s in range(0, n, batch_size)]
    premade = [np.random.default_rng(0).integers(0, 255, (len(b), bb.size, bb.size, 3), dtype=np.uint8)
               for b in batches]
    bb(premade[0][:2])  # warm-up
    e2e, fwd = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        for arr, _ok in prefetch_batches(batches, bb.size, workers=model.workers):
            bb(arr)
        e2e.append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        for arr in premade:
            bb(arr)
        fwd.append(n / (time.perf_counter() - t))
    t = time.perf_counter()
    for arr, _ok in prefetch_batches(batches, bb.size, workers=model.workers):
        pass
    decode = n / (time.perf_counter() - t)
    return {
        "model": name, "image_size": bb.size, "images": n, "device": device,
        "end_to_end_img_s": statistics.median(e2e), "forward_only_img_s": statistics.median(fwd),
        "decode_only_img_s": decode,
        "ratio": statistics.median(e2e) / statistics.median(fwd),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=96, help="generated images (default 96)")
    ap.add_argument("--images", type=Path, help="use the JPEG/PNG files of this folder instead")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--models", default=None, help="comma-separated (default: offline image models)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    names = args.models.split(",") if args.models else [s.name for s in default_models() if s.modality == "image"]
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        if args.images:
            paths = sorted(str(p) for p in args.images.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[: args.n]
        else:
            paths = make_images(Path(tmp), args.n)
        rows = [bench_model(m, paths, args.repeats, args.batch_size, device) for m in names]
    if args.json:
        print(json.dumps({"cpu_cores": cpu_count(), "results": rows}, indent=2))
        return 0
    print(f"{len(paths)} images, {cpu_count()} CPU cores, device {device}, medians of {args.repeats}")
    print(f"{'model':<14} {'px':>4} {'end-to-end':>11} {'forward':>9} {'decode':>8} {'ratio':>6}  (img/s)")
    for r in rows:
        print(f"{r['model']:<14} {r['image_size']:>4} {r['end_to_end_img_s']:>11.1f} "
              f"{r['forward_only_img_s']:>9.1f} {r['decode_only_img_s']:>8.1f} {r['ratio']:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
