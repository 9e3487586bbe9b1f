"""Reading an uploaded pin image (Predict page); the prediction itself is
:mod:`pinterest_mm.predict`.

Uploads are decoded from memory (never written to disk) and checked: size, each side and the
pixel count, format, truncation; animated images use their first frame; a photo with an EXIF
Orientation tag is turned upright (:func:`pinterest_mm.data.clean.upright`; a malformed EXIF
block leaves it as stored); CMYK, palette, 16-bit and alpha images become RGB on white
(:func:`pinterest_mm.data.clean.to_rgb`).
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass, field

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
        return Upload(None, "The image was refused: this file is not an image that can be read. "
                            "Upload a PNG, JPEG or WebP.")
    except (OSError, ValueError, SyntaxError, EOFError):
        return Upload(None, "The image was refused: the file is corrupt or truncated.")
    except Exception:  # never a traceback for a bad upload
        return Upload(None, "The image was refused: it cannot be read. Upload a PNG, JPEG or WebP.")
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

