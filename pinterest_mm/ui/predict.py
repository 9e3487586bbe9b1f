"""Reading an uploaded pin and fusing one pin's model votes (Predict page).

Uploads are decoded from memory (never written to disk) and checked: size, each side and the
pixel count, format, truncation; animated images use their first frame; a photo with an EXIF
Orientation tag is turned upright (:func:`pinterest_mm.data.clean.upright`; a malformed EXIF
block leaves it as stored); CMYK, palette, 16-bit and alpha images become RGB on white
(:func:`pinterest_mm.data.clean.to_rgb`).
"""

from __future__ import annotations

import io
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

# One upload limit, in the browser's unit: the uploader refuses larger files itself
# (max_upload_size=MAX_UPLOAD_MB; Streamlit's browser code counts 1 MB = 1,000,000 bytes, or
# 1,048,576 on Windows) and the reader refuses what a browser lets through with the same number.
# The server's own cap (server.maxUploadSize, MiB) is never below it.
MAX_UPLOAD_MB = 20
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1_000_000
MAX_PIXELS = 40_000_000
# Each side: an image may be small in pixels and still absurdly long (1 x 100,000 px); JPEG
# cannot even hold a side over 65,500 px. 16,384 px is WebP's limit and twice an 8K frame.
MAX_SIDE = 16_384
PREVIEW_PX = (260, 520)  # the Predict page's preview box (width, height)
LIMITS_TEXT = (f"PNG, JPEG or WebP; at most {MAX_UPLOAD_MB} MB, {MAX_PIXELS // 1_000_000} megapixels "
               f"and {MAX_SIDE:,} pixels a side")
MAX_TEXT_CHARS = 5_000
# MPO is a JPEG with extra images (a phone's depth map or HDR gain map): the first is the photo
FORMATS = ("PNG", "JPEG", "MPO", "WEBP")


@dataclass
class Upload:
    """A decoded upload: an RGB image, or None with the reason."""

    image: Image.Image | None
    message: str = ""
    notes: list[str] = field(default_factory=list)


def read_image(data: bytes | None, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS,
               max_side: int = MAX_SIDE) -> Upload:
    """Decode uploaded bytes into an upright RGB image; never raises.

    The size, format, side and pixel-count checks come first; the EXIF Orientation tag is
    applied only to an image that passed them and decoded fully.

    Args:
        data: The uploaded file's bytes.
        max_bytes: Refuse larger files.
        max_pixels: Refuse images with more pixels (decompression bombs).
        max_side: Refuse images with a longer side.
    """
    from ..data.clean import to_rgb, upright

    if data is None:
        return Upload(None, "")
    if len(data) == 0:
        return Upload(None, "The file is empty (0 bytes).")
    if len(data) > max_bytes:
        size_mb = math.ceil(len(data) / 1e5) / 10  # rounded up: never shows the limit itself
        return Upload(None, f"The file is too large ({size_mb:.1f} MB): upload an image of at "
                            f"most {max_bytes / 1e6:g} MB.")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format not in FORMATS:
                    return Upload(None, f"Unsupported image format {im.format}: upload a PNG, JPEG or WebP.")
                if max(im.width, im.height) > max_side:
                    return Upload(None, f"The image is too large ({im.width:,}×{im.height:,} pixels): each "
                                        f"side may be at most {max_side:,} pixels.")
                if im.width * im.height > max_pixels:
                    return Upload(None, f"The image is too large ({im.width}×{im.height} pixels).")
                if getattr(im, "n_frames", 1) > 1:
                    if im.format != "MPO":
                        notes.append(f"Animated image ({im.n_frames} frames): the first frame is used.")
                    im.seek(0)
                if im.mode not in ("RGB", "L"):
                    notes.append(f"Colour mode {im.mode} converted to RGB.")
                im.load()
                rgb = to_rgb(upright(im)).copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Upload(None, "The image was refused: it decompresses to too many pixels.")
    except Image.UnidentifiedImageError:
        return Upload(None, "This file is not an image PIL can read: upload a PNG, JPEG or WebP.")
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        return Upload(None, f"The image is corrupt or truncated ({str(exc)[:100]}).")
    except Exception as exc:  # never a traceback for a bad upload
        return Upload(None, f"The image cannot be read ({type(exc).__name__}).")
    return Upload(rgb, "", notes)


def preview(image: Image.Image, box: tuple[int, int] = PREVIEW_PX) -> tuple[Image.Image, int]:
    """What the page shows: a copy of ``image`` fitted into ``box`` (width, height), at least
    1 px a side, and the width to display it at (the box's width unless that would make it
    taller than the box).

    Streamlit re-encodes a displayed image itself, and resizing a long thin image to a
    display width can round a side down to 0 px; the copy is already small enough.
    """
    small = image.copy()
    small.thumbnail(box)
    return small, max(1, min(box[0], box[1] * small.width // small.height))


def clip_text(text: str | None, limit: int = MAX_TEXT_CHARS) -> tuple[str, str]:
    """Return (text to use, note); long texts are cut at ``limit`` characters."""
    text = (text or "").replace("\x00", " ").strip()
    if len(text) > limit:
        return text[:limit], f"The description has {len(text):,} characters; the first {limit:,} are used."
    return text, ""


@dataclass
class PinPrediction:
    """One pin's prediction.

    Attributes:
        probs: Model name to probabilities (C,) for the models that could predict.
        skipped: Model name to why it gave no vote.
        weights: The fusion weights used (renormalized over the models that voted).
        fused: Fused probabilities (C,), or None when no model voted.
        image_share: Share of the fusion weight on image models.
        seconds: Model name to prediction time.
    """

    probs: dict[str, np.ndarray]
    skipped: dict[str, str]
    weights: dict[str, float]
    fused: np.ndarray | None
    image_share: float
    seconds: dict[str, float]


def predict_pin(
    predictors: dict,
    modalities: dict[str, str],
    weights: dict[str, float],
    image: Image.Image | None,
    text: str,
    combine: str = "sum",
) -> PinPrediction:
    """Every model's vote for one pin and their fusion with ``weights``.

    Args:
        predictors: Model name to a loaded predictor (``predict_proba(images=, texts=)``) or
            to an error message (str) when it could not be loaded.
        modalities: Model name to ``image`` or ``text``.
        weights: The fusion weights of the current setting (models without a vote are
            dropped and the rest renormalized).
        image: The pin image, or None.
        text: The description ('' for none).
        combine: ``sum`` (weighted sum, MM/lambda) or ``log_linear``.
    """
    from ..fusion.late import log_linear, weighted_sum

    probs, skipped, secs = {}, {}, {}
    for name, pred in predictors.items():
        mod = modalities.get(name, "text")
        if isinstance(pred, str):
            skipped[name] = pred
            continue
        if mod == "image" and image is None:
            skipped[name] = "no image given"
            continue
        if mod == "text" and not text:
            skipped[name] = "no description given"
            continue
        t0 = time.perf_counter()
        try:
            p = pred.predict_proba(images=[image]) if mod == "image" else pred.predict_proba(texts=[text])
            probs[name] = np.asarray(p, dtype=np.float32)[0]
        except Exception as exc:
            skipped[name] = f"failed ({type(exc).__name__}: {str(exc)[:120]})"
        secs[name] = time.perf_counter() - t0
    used = {m: float(weights.get(m, 0.0)) for m in probs if weights.get(m, 0.0) > 0}
    total = sum(used.values())
    if not used or total <= 0:
        return PinPrediction(probs, skipped, {}, None, 0.0, secs)
    w = {m: v / total for m, v in used.items()}
    stack = np.stack([probs[m] for m in w])[:, None, :]
    vec = np.array(list(w.values()))
    fused = (log_linear(stack, vec) if combine == "log_linear" else weighted_sum(stack, vec))[0]
    image_share = sum(v for m, v in w.items() if modalities.get(m) == "image")
    return PinPrediction(probs, skipped, w, np.asarray(fused), float(image_share), secs)


def top_k(p: np.ndarray, classes: list[str], k: int = 3) -> list[tuple[str, float]]:
    """The k most probable classes of a probability vector."""
    idx = np.argsort(-p, kind="stable")[:k]
    return [(classes[i], float(p[i])) for i in idx]
