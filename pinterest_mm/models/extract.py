"""Streaming, resumable image-feature extraction into one ``.npy`` file.

A thread pool decodes and resizes the next batches (PIL ``draft`` for JPEG, turned upright by
the EXIF Orientation tag, any mode converted to RGB) while the network runs on the current
one; features are written in chunks of ``chunk_rows`` rows to ``<model>.partial/`` and
assembled into the final ``.npy`` with ``os.replace``. A killed run resumes from its finished
chunks. An image that cannot be decoded gets a zero row and is counted (``n_corrupt_images``).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol

import numpy as np
from PIL import Image

from ..data.clean import to_rgb, upright
from .base import atomic_save, disk_error, write_sidecar


class Extractor(Protocol):
    """What :func:`extract_to_file` needs of a model (an :class:`~.image.ImageFeatureModel`)."""

    chunk_rows: int
    batch_size: int
    workers: int

    def backbone(self, device: str | None = None) -> Any:
        """A callable (n, H, W, 3) uint8 -> (n, dim) float32 with ``size`` and ``dim``."""


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


def load_image_batch(paths: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode and resize images: (uint8 (n, size, size, 3), ok bool (n,)); a failed image is zeros."""
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
            pending.append(pool.submit(load_image_batch, list(paths), size))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# ---------------------------------------------------------------------- extraction
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


def _chunk_file(part: Path, c: int) -> Path:
    return part / f"chunk_{c:05d}.npy"


def _open_partial(out_path: Path, meta: dict) -> Path:
    """The ``<out>.partial/`` folder of finished chunks; chunks of other settings are discarded."""
    part = out_path.with_suffix(".partial")
    meta_file = part / "meta.json"
    if part.exists():
        try:
            if json.loads(meta_file.read_text()) != meta:
                shutil.rmtree(part)
        except (OSError, ValueError):
            shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True, exist_ok=True)
    meta_file.write_text(json.dumps(meta))
    return part


def _extract_chunks(paths: list[str], model: Extractor, bb, part: Path, todo: list[int], bar) -> None:
    """Extract the chunks ``todo`` into ``part`` (features + the rows that could not be decoded)."""
    n, cr, bs = len(paths), model.chunk_rows, model.batch_size

    def batch_paths() -> Iterator[list[str]]:
        for c in todo:
            for s in range(c * cr, min(n, (c + 1) * cr), bs):
                yield paths[s:min(s + bs, (c + 1) * cr, n)]

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
        atomic_save(_chunk_file(part, c), block, part / f"chunk_{c:05d}.tmp.npy")


def _assemble(part: Path, out_path: Path, n: int, cr: int, dim: int) -> list[int]:
    """Copy every chunk into a memory-mapped ``.npy.tmp`` that replaces ``out_path``; return the bad rows."""
    n_chunks = (n + cr - 1) // cr
    tmp_out = out_path.with_suffix(".npy.tmp")
    bad_rows: list[int] = []
    try:
        out = np.lib.format.open_memmap(tmp_out, mode="w+", dtype=np.float32, shape=(n, dim))
        for c in range(n_chunks):
            out[c * cr:min(n, (c + 1) * cr)] = np.load(_chunk_file(part, c))
            bad_rows.extend(json.loads((part / f"chunk_{c:05d}.bad.json").read_text()))
        out.flush()
        del out
        tmp_out.replace(out_path)
    except OSError as exc:  # a full disk: the finished chunks stay for the next run
        tmp_out.unlink(missing_ok=True)
        raise disk_error(exc, out_path) from exc
    return bad_rows


def extract_to_file(
    paths: list[str],
    model: Extractor,
    out_path: Path,
    fingerprint: str,
    *,
    device: str | None = None,
    progress: bool = False,
    desc: str = "features",
) -> dict:
    """Extract features (n, dim) float32 of ``paths`` into ``out_path`` (.npy), resumably; return stats.

    Finished chunks live in ``<out>.partial/chunk_NNNNN.npy`` (+ ``.bad.json`` listing
    undecodable rows); chunks of another fingerprint are discarded. When all chunks exist
    they are copied into a memory-mapped ``.npy.tmp`` which replaces ``out_path``.
    """
    from tqdm.auto import tqdm

    n, cr = len(paths), model.chunk_rows
    part = _open_partial(out_path, {"fingerprint": fingerprint, "n": n, "chunk_rows": cr})
    n_chunks = (n + cr - 1) // cr
    todo = [c for c in range(n_chunks) if not _chunk_file(part, c).exists()]
    bb = model.backbone(device) if todo else None
    done = n - sum(min(n, (c + 1) * cr) - c * cr for c in todo)
    bar = tqdm(total=n, desc=desc, unit="img", disable=not progress, initial=done)
    if todo:
        _extract_chunks(paths, model, bb, part, todo, bar)
    bar.close()

    dim = np.load(_chunk_file(part, 0), mmap_mode="r").shape[1] if n_chunks else (bb.dim if bb else 0)
    bad_rows = _assemble(part, out_path, n, cr, dim)
    stats = {"n_corrupt_images": len(bad_rows), "corrupt_rows": bad_rows[:100]}
    write_sidecar(out_path, fingerprint, stats)
    shutil.rmtree(part, ignore_errors=True)
    if bad_rows:
        warnings.warn(f"{len(bad_rows)} image(s) could not be decoded; they got zero features.")
    return stats
