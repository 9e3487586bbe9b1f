"""Reading an uploaded pin image (Predict page); the prediction itself is
:mod:`pinterest_mm.predict`.

Uploads are decoded from memory (never written to disk) and checked: size, pixel count,
format, truncation; animated images use their first frame; a photo with an EXIF Orientation
tag is turned upright (:func:`pinterest_mm.data.clean.upright`; a malformed EXIF block leaves
it as stored); CMYK, palette, 16-bit and alpha images become RGB on white
(:func:`pinterest_mm.data.clean.to_rgb`).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

from PIL import Image

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
# MPO is a JPEG with extra images (a phone's depth map or HDR gain map): the first is the photo
FORMATS = ("PNG", "JPEG", "MPO", "WEBP")


@dataclass
class Upload:
    """A decoded upload: an RGB image, or None with the reason."""

    image: Image.Image | None
    message: str = ""
    notes: list[str] = field(default_factory=list)


def read_image(data: bytes | None, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> Upload:
    """Decode uploaded bytes into an upright RGB image; never raises.

    The size, format and pixel-count checks come first; the EXIF Orientation tag is applied
    only to an image that passed them and decoded fully.

    Args:
        data: The uploaded file's bytes.
        max_bytes: Refuse larger files.
        max_pixels: Refuse images with more pixels (decompression bombs).
    """
    from ..data.clean import to_rgb, upright

    if data is None:
        return Upload(None, "")
    if len(data) == 0:
        return Upload(None, "The file is empty (0 bytes).")
    if len(data) > max_bytes:
        return Upload(None, f"The file is too large ({len(data) / 1e6:.1f} MB > {max_bytes / 1e6:.0f} MB).")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format not in FORMATS:
                    return Upload(None, f"Unsupported image format {im.format}: upload a PNG, JPEG or WebP.")
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
