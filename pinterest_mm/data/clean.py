"""Text and image cleaning as the thesis does it (section 3.2).

Text for word vectors: tokenize, drop English stop words, drop tokens shorter than ``min_len``
or longer than ``max_len`` characters. Runs of scripts written without spaces (Chinese,
Japanese, Thai, ...) are split into words by :func:`.scripts.split_unspaced` (jieba for
Chinese, character bigrams otherwise); ``min_len`` does not apply to them. Text for transformers: remove URLs and lowercase.
Images: only regular files are opened (a pipe, device or folder never blocks the import),
at most ``max_bytes`` of a file are read (a larger one is refused before reading), the image
is decoded fully (corrupt, truncated, non-image and oversized files are caught), turned
upright by the EXIF Orientation tag (:func:`upright`), then a 256-bit grayscale difference
hash for duplicate detection.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd
from PIL import Image, ImageFile, ImageOps
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from ..config import CleaningConfig
from .printable import printable
from .scripts import UNSPACED, split_unspaced

URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
TOKEN_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
# Combining marks that are no ``\w`` but belong inside words (Latin/Cyrillic/Hebrew/Arabic
# diacritics, the vowel signs of the Indic scripts): without them Hindi splits mid-word.
_MARKS = "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u064b-\u065f\u0670\u0900-\u0dff"
_SPACED_CHAR = f"(?:(?![{UNSPACED}])[^\\W_]|[{_MARKS}])"  # a word character of a spaced script
# A run of an unspaced script (group 1), or a word of a spaced one (group 2).
WORD_OR_RUN_RE = re.compile(f"([{UNSPACED}]+)|({_SPACED_CHAR}+(?:['’]{_SPACED_CHAR}+)?)")
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS)

ImageFile.LOAD_TRUNCATED_IMAGES = False
HASH_SIZE = 16  # a 16 x 16 = 256-bit grayscale difference hash: few false duplicates
MAX_IMAGE_BYTES = CleaningConfig.max_image_bytes  # read of one image file at most; larger: refused
# Opening never waits for a writer (a FIFO), never makes a terminal ours, reads bytes on Windows.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


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
        Lowercased tokens without URLs, English stop words, too short or too long tokens;
        runs of unspaced scripts split into words (no ``min_len`` for those).

    Example:
        >>> clean_words("A beautiful photo from Canada! https://x.co/1")
        ['beautiful', 'photo', 'canada']
        >>> clean_words("ขายดี summer")
        ['ขา', 'าย', 'ยด', 'ดี', 'summer']
    """
    out: list[str] = []
    for run, word in WORD_OR_RUN_RE.findall(URL_RE.sub(" ", text or "").lower()):
        if run:
            out.extend(t for t in split_unspaced(run) if len(t) <= max_len)
        elif min_len <= len(word) <= max_len and word not in STOP_WORDS:
            out.append(word)
    return out


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


def read_image_bytes(path: Path, max_bytes: int = MAX_IMAGE_BYTES) -> bytes | str:
    """Read an image file's bytes if it is a regular file of at most ``max_bytes``.

    The file is opened without blocking and checked with ``fstat`` before anything is read:
    a FIFO, device or folder is refused at once (reading a FIFO would wait forever for a
    writer), and so is a file larger than ``max_bytes`` (a sparse 4 GiB file would cost
    4 GiB of memory). Checking the open descriptor, not the path, leaves no window for
    the path to be swapped between the check and the read.

    Args:
        path: The image file.
        max_bytes: Largest file accepted, in bytes.

    Returns:
        The file's bytes, or the reason it was refused (a str).
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return "image file missing"
    except OSError as exc:
        return f"image file unreadable ({exc.__class__.__name__})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file (a folder, pipe or device)"
        if info.st_size > max_bytes:
            return f"image file too large ({_mib(info.st_size)} > {_mib(max_bytes)} limit)"
        with open(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)  # at most one byte past the cap: a file that grew
    except OSError as exc:
        return f"image file unreadable ({exc.__class__.__name__})"
    finally:
        os.close(fd)
    if data is None:  # a non-blocking read that had nothing yet (not a regular file after all)
        return "not a regular file (a folder, pipe or device)"
    if len(data) > max_bytes:
        return f"image file too large (over the {_mib(max_bytes)} limit)"
    return data


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n < 10 * 2**20 else f"{n / 2**20:,.0f} MiB"


def inspect_image(path: Path, max_pixels: int = 64_000_000, max_bytes: int = MAX_IMAGE_BYTES) -> ImageCheck:
    """Open an image fully and hash it; never raises, never blocks on a non-file.

    Args:
        path: The image file.
        max_pixels: Refuse images with more pixels (decompression bombs, huge images).
        max_bytes: Refuse files larger than this many bytes, without reading them
            (see :func:`read_image_bytes`).

    Returns:
        An :class:`ImageCheck`.
    """
    data = read_image_bytes(Path(path), max_bytes)
    if isinstance(data, str):
        return ImageCheck(False, data)
    sha1 = hashlib.sha1(data).hexdigest()
    if not data:
        return ImageCheck(False, "image file is empty (0 bytes)", sha1=sha1)
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
        return ImageCheck(False, f"corrupt or truncated image ({printable(exc, 80)})", sha1=sha1)
    return ImageCheck(
        True, "", str(imagehash.dhash(gray, hash_size=HASH_SIZE)), sha1, width, height, mode
    )


_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1).astype(np.uint16)


def _hash_bytes(hashes, chunk: int = 50_000) -> np.ndarray:
    """Hex hashes of equal length as bytes, shape (n, bytes per hash), a chunk at a time."""
    hashes = list(hashes)
    width = len(hashes[0]) // 2
    out = np.empty((len(hashes), width), dtype=np.uint8)
    for start in range(0, len(hashes), chunk):
        part = hashes[start : start + chunk]
        out[start : start + len(part)] = np.frombuffer(bytes.fromhex("".join(part)), np.uint8).reshape(-1, width)
    return out


def _near_pairs(codes: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a, b), a < b, of rows of ``codes`` (distinct hashes as bytes, shape (m, w))
    within ``max_distance`` differing bits.

    Pigeonhole: split the ``w`` bytes into ``max_distance + 1`` runs; two hashes that differ
    in at most ``max_distance`` bits agree exactly on at least one run. Rows agreeing on a
    run are found by sorting on it; only those candidates are compared bit by bit, so the
    search costs about a sort per run, not a comparison of every pair. With more runs than
    bytes, every pair is compared, in blocks of bounded size.
    """
    m, width = codes.shape
    if max_distance + 1 > width:  # no run is exact: all pairs, a block of rows at a time
        block = max(1, 2**22 // max(1, m * width))
        found = []
        for start in range(0, m, block):
            dist = _POPCOUNT[codes[start : start + block, None, :] ^ codes[None, :, :]].sum(-1)
            a, b = np.nonzero(dist <= max_distance)
            a += start
            found.append((a[a < b], b[a < b]))
        return (np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found]))
    firsts, seconds = [], []
    for run in np.array_split(np.arange(width), max_distance + 1):
        key = np.ascontiguousarray(codes[:, run]).view(f"V{len(run)}").ravel()
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        for step in range(1, m):  # rows with equal keys lie next to each other, `step` apart
            same = np.flatnonzero(sorted_key[:-step] == sorted_key[step:])
            if len(same) == 0:
                break
            a, b = order[same], order[same + step]
            firsts.append(np.minimum(a, b))
            seconds.append(np.maximum(a, b))
    if not firsts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    pairs = np.unique(np.stack([np.concatenate(firsts), np.concatenate(seconds)], axis=1), axis=0)
    keep = np.zeros(len(pairs), dtype=bool)
    for start in range(0, len(pairs), 2**20):  # compare the candidates, a million at a time
        a, b = pairs[start : start + 2**20, 0], pairs[start : start + 2**20, 1]
        keep[start : start + len(a)] = _POPCOUNT[codes[a] ^ codes[b]].sum(-1) <= max_distance
    return pairs[keep, 0], pairs[keep, 1]


def duplicate_groups(hashes: list[str], max_distance: int = 0) -> list[list[int]]:
    """Group indices of images whose difference hashes are within ``max_distance`` bits.

    With a distance, images are linked when their hashes are that close (equal hashes
    first folded into one), and the groups are the connected components of those links,
    found by :func:`_near_pairs` without comparing every pair.

    Args:
        hashes: Hex hashes of equal length, one per image, shape (n,).
        max_distance: Largest Hamming distance that still counts as a duplicate.

    Returns:
        Groups (lists of ascending indices) with more than one member, ordered by their
        first index.
    """
    n = len(hashes)
    if n == 0:
        return []
    if max_distance <= 0:
        by_hash: dict[str, list[int]] = {}
        for i, h in enumerate(hashes):
            by_hash.setdefault(h, []).append(i)
        return [g for g in by_hash.values() if len(g) > 1]
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    distinct, inverse = np.unique(_hash_bytes(hashes), axis=0, return_inverse=True)
    a, b = _near_pairs(distinct, max_distance)
    m = len(distinct)
    links = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(m, m))
    component = connected_components(links, directed=False)[1][inverse.ravel()]
    order = np.lexsort((np.arange(n), component))  # by component, members ascending
    starts = np.flatnonzero(np.r_[True, component[order][1:] != component[order][:-1]])
    groups = [g.tolist() for g in np.split(order, starts[1:]) if len(g) > 1]
    return sorted(groups, key=lambda g: g[0])


def duplicate_keepers(
    hashes, sizes: np.ndarray, pin_ids, max_distance: int = 0
) -> np.ndarray:
    """For each image, the index of the copy of its duplicate group that is kept.

    Within a group of duplicates (:func:`duplicate_groups`), the copy in the category
    with the fewest pins is kept (thesis 3.2.2), ties broken by the smallest pin id.
    Vectorized: the groups are integer codes of the hashes; only the images of groups with
    more than one member are sorted (one sort, whatever the sizes of the groups), so a
    million distinct images cost a few arrays of integers, not a table of them.

    Args:
        hashes: Hex difference hashes, shape (n,) (a list or a text Series).
        sizes: Pins in each image's category, shape (n,).
        pin_ids: Pin ids, shape (n,) (a list or a text Series).
        max_distance: Largest Hamming distance that still counts as a duplicate.

    Returns:
        Keeper indices, shape (n,): ``keepers[i] == i`` where image ``i`` is kept.
    """
    n = len(hashes)
    if max_distance <= 0:
        group = pd.factorize(hashes if isinstance(hashes, pd.Series) else pd.Series(hashes, dtype=object))[0]
    else:
        group = np.arange(n)
        for members in duplicate_groups(list(hashes), max_distance):
            group[members] = min(members)
    keepers = np.arange(n, dtype=np.int64)
    shared = np.flatnonzero(np.bincount(group, minlength=n)[group] > 1) if n else group
    if len(shared) == 0:
        return keepers
    ids = pin_ids if isinstance(pin_ids, pd.Series) else pd.Series(list(pin_ids), dtype=object)
    order = pd.DataFrame({
        "group": group[shared], "size": np.asarray(sizes)[shared],
        "pin_id": pd.Series(ids.iloc[shared].tolist(), dtype=object), "i": shared,
    }).sort_values(["group", "size", "pin_id"], kind="stable")
    keepers[order["i"].to_numpy()] = order.groupby("group", sort=False)["i"].transform("first").to_numpy()
    return keepers
