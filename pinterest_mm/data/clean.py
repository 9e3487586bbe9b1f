"""Text and image cleaning as the thesis does it (section 3.2).

Text for word vectors: tokenize, drop stop words, drop tokens shorter than ``min_len`` or
longer than ``max_len`` characters. Text for transformers: remove URLs and lowercase.
Images: open fully (corrupt, truncated, non-image and oversized files are caught), turn
upright by the EXIF Orientation tag (:func:`upright`), then a 256-bit grayscale difference
hash for duplicate detection.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageFile, ImageOps
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
TOKEN_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS)

ImageFile.LOAD_TRUNCATED_IMAGES = False
HASH_SIZE = 16  # a 16 x 16 = 256-bit grayscale difference hash: few false duplicates


def clean_transformer_text(text: str) -> str:
    """Return the text for transformers: URLs removed, lowercased, whitespace collapsed."""
    return " ".join(URL_RE.sub(" ", text or "").lower().split())


def clean_words(text: str, min_len: int = 2, max_len: int = 20) -> list[str]:
    """Return the cleaned tokens of a description for word vectors.

    Args:
        text: The raw description.
        min_len: Drop tokens shorter than this (thesis: 2).
        max_len: Drop tokens longer than this (thesis: 20).

    Returns:
        Lowercased tokens without URLs, stop words, too short or too long tokens.

    Example:
        >>> clean_words("A beautiful photo from Canada! https://x.co/1")
        ['beautiful', 'photo', 'canada']
    """
    tokens = TOKEN_RE.findall(URL_RE.sub(" ", text or "").lower())
    return [t for t in tokens if min_len <= len(t) <= max_len and t not in STOP_WORDS]


@dataclass(frozen=True)
class ImageCheck:
    """What inspecting one image file found.

    Attributes:
        ok: The image decodes fully and is within the size limit.
        reason: Why not, when not ok.
        dhash: Hex 256-bit grayscale difference hash ("" when not ok).
        sha1: Hex digest of the file's bytes ("" when unreadable).
        width: Pixel width (0 when unknown).
        height: Pixel height (0 when unknown).
        mode: PIL mode of the file (e.g. RGB, CMYK, I;16).
    """

    ok: bool
    reason: str = ""
    dhash: str = ""
    sha1: str = ""
    width: int = 0
    height: int = 0
    mode: str = ""


def to_rgb(img: Image.Image) -> Image.Image:
    """Return an RGB copy of any PIL image (first frame; alpha composited on white)."""
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.split()[-1])
        return background
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() or 1.0
        return Image.fromarray((arr / hi * 255.0).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def upright(img: Image.Image) -> Image.Image:
    """Turn an image upright by its EXIF Orientation tag (values 2-8), in place.

    Phone cameras store the pixels as the sensor read them and record in the tag how to
    turn them; :func:`PIL.ImageOps.exif_transpose` applies it. The pixels are decoded
    first, outside the guard, so a corrupt or truncated file still raises as ``load`` does.
    A malformed EXIF block never raises: an unreadable one (or an Orientation outside 1-8)
    leaves the pixels as stored; one whose other tags cannot be written back after the turn
    (Pillow re-encodes the block to drop the Orientation) keeps the turned pixels.

    Args:
        img: An opened image (``draft`` may have been called on it); changed in place.

    Returns:
        ``img``, decoded and upright.

    Raises:
        OSError: The pixels cannot be decoded (other decoding errors pass through too).
    """
    img.load()
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except Exception:  # a broken EXIF block never costs the image
        pass
    return img


def inspect_image(path: Path, max_pixels: int = 64_000_000) -> ImageCheck:
    """Open an image fully and hash it; never raises.

    Args:
        path: The image file.
        max_pixels: Refuse images with more pixels (decompression bombs, huge images).

    Returns:
        An :class:`ImageCheck`.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return ImageCheck(False, "image file missing")
    except OSError as exc:
        return ImageCheck(False, f"image file unreadable ({exc.__class__.__name__})")
    sha1 = hashlib.sha1(data).hexdigest()
    if not data:
        return ImageCheck(False, "image file is empty (0 bytes)", sha1=sha1)
    import io

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height, mode = img.width, img.height, img.mode
                if width * height > max_pixels:
                    return ImageCheck(
                        False,
                        f"image too large ({width}x{height} > {max_pixels:,} pixels)",
                        sha1=sha1, width=width, height=height, mode=mode,
                    )
                img.draft("L", (256, 256))
                img.load()
                # upright: a photo stored turned with an EXIF tag hashes as its upright copy
                gray = to_rgb(upright(img)).convert("L")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return ImageCheck(False, "image refused as a decompression bomb", sha1=sha1)
    except Image.UnidentifiedImageError:
        return ImageCheck(False, "not an image file", sha1=sha1)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        return ImageCheck(False, f"corrupt or truncated image ({str(exc)[:80]})", sha1=sha1)
    return ImageCheck(
        True, "", str(imagehash.dhash(gray, hash_size=HASH_SIZE)), sha1, width, height, mode
    )


def duplicate_groups(hashes: list[str], max_distance: int = 0) -> list[list[int]]:
    """Group indices of images whose difference hashes are within ``max_distance`` bits.

    Args:
        hashes: Hex hashes of equal length, one per image.
        max_distance: Largest Hamming distance that still counts as a duplicate.

    Returns:
        Groups (lists of indices) with more than one member.
    """
    n = len(hashes)
    if n == 0:
        return []
    if max_distance <= 0:
        by_hash: dict[str, list[int]] = {}
        for i, h in enumerate(hashes):
            by_hash.setdefault(h, []).append(i)
        return [g for g in by_hash.values() if len(g) > 1]
    as_bytes = np.array([np.frombuffer(bytes.fromhex(h), np.uint8) for h in hashes])
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    popcount = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1)
    for start in range(0, n, 256):
        block = as_bytes[start : start + 256]
        dist = popcount[np.bitwise_xor(block[:, None, :], as_bytes[None, :, :])].sum(-1)
        for a, b in zip(*np.nonzero(dist <= max_distance)):
            a, b = int(a) + start, int(b)
            if a < b:
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]
