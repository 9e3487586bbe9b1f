"""Shared fixtures: a tiny generated dataset of pins and a store holding it."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from pinterest_mm.config import CleaningConfig, ImportConfig
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.store import Store

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
HM_DIR = SHARED / "data" / "hm"

# Six classes, each with a colour, a shape and its own words (plus shared filler words).
TINY_CLASSES = {
    "Animals": ((200, 120, 40), "ellipse", ["dog", "cat", "puppy", "kitten", "fur", "paw"]),
    "Food and drink": ((220, 40, 40), "rectangle", ["pizza", "cake", "recipe", "sauce", "dinner", "baking"]),
    "Gardening": ((40, 160, 60), "polygon", ["tulip", "seeds", "soil", "compost", "garden", "bloom"]),
    "Sports": ((40, 80, 220), "cross", ["football", "goal", "team", "match", "runner", "stadium"]),
    "Technology": ((120, 120, 120), "grid", ["laptop", "circuit", "code", "robot", "software", "chip"]),
    "Travel": ((240, 200, 40), "diagonal", ["beach", "passport", "flight", "hotel", "island", "journey"]),
}
FILLER = ["lovely", "idea", "weekend", "inspiration", "colour", "simple", "bright", "modern"]


def draw_pin_image(color: tuple[int, int, int], shape: str, rng: np.random.Generator, size: int = 96) -> Image.Image:
    """Draw a noisy image of a coloured shape; the class is visible to a CNN."""
    noise = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    img = Image.fromarray(np.full((size, size, 3), 235, np.uint8) - noise)
    d = ImageDraw.Draw(img)
    jitter = [int(v) for v in rng.integers(-8, 9, 4)]
    box = [16 + jitter[0], 16 + jitter[1], size - 16 + jitter[2], size - 16 + jitter[3]]
    c = tuple(int(max(0, min(255, v + rng.integers(-25, 26)))) for v in color)
    if shape == "ellipse":
        d.ellipse(box, fill=c)
    elif shape == "rectangle":
        d.rectangle(box, fill=c)
    elif shape == "polygon":
        d.polygon([(size // 2, box[1]), (box[2], box[3]), (box[0], box[3])], fill=c)
    elif shape == "cross":
        d.rectangle([size // 2 - 8, box[1], size // 2 + 8, box[3]], fill=c)
        d.rectangle([box[0], size // 2 - 8, box[2], size // 2 + 8], fill=c)
    elif shape == "grid":
        for k in range(box[0], box[2], 12):
            d.line([(k, box[1]), (k, box[3])], fill=c, width=4)
            d.line([(box[0], k), (box[2], k)], fill=c, width=4)
    else:
        for k in range(-size, size, 14):
            d.line([(k, 0), (k + size, size)], fill=c, width=5)
    return img


def make_tiny_manifest(folder: Path, per_class: int = 24, seed: int = 0, n_users: int = 8) -> Path:
    """Write a tiny dataset (images + manifest.csv with users) into ``folder``.

    Every pin has a unique image and 6-9 words, 3 of them from its class. Each pin is saved
    by one or two users; users prefer two classes each.
    """
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    names = list(TINY_CLASSES)
    for ci, (cat, (color, shape, words)) in enumerate(TINY_CLASSES.items()):
        for j in range(per_class):
            pin_id = f"p{ci}_{j:03d}"
            rel = f"images/{pin_id}.png"
            draw_pin_image(color, shape, rng).save(folder / rel)
            text = list(rng.choice(words, 3, replace=False)) + list(rng.choice(FILLER, int(rng.integers(3, 7)), replace=False))
            rng.shuffle(text)
            users = {f"u{(ci * 2 + j) % n_users}"}
            if j % 3 == 0:
                users.add(f"u{(ci * 2 + j + 1) % n_users}")
            for u in sorted(users):
                rows.append(dict(pin_id=pin_id, image=rel, description=" ".join(text).capitalize() + ".",
                                 category=cat, user_id=u, board=f"{cat.lower()} board"))
    path = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert names
    return path


# ---------------------------------------------------------------- EXIF-rotated photos
QUADRANT_COLOURS = ((230, 20, 20), (20, 40, 230), (20, 200, 40), (240, 220, 20))  # TL, TR, BL, BR

# The transpose that stores an upright image so that a viewer applying EXIF Orientation
# ``o`` shows it upright again (6: the camera was turned, the pixels lie 90 degrees off).
STORE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def quadrant_image(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A landscape RGB image with four coloured quadrants: every flip or turn shows."""
    w, h = size
    img = Image.new("RGB", size)
    d = ImageDraw.Draw(img)
    for k, (x, y) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        d.rectangle([x * w // 2, y * h // 2, (x + 1) * w // 2 - 1, (y + 1) * h // 2 - 1], fill=QUADRANT_COLOURS[k])
    return img


def quadrant_colours(img: Image.Image | np.ndarray) -> np.ndarray:
    """The colours (4, 3) at the centres of the TL, TR, BL, BR quadrants."""
    arr = np.asarray(img.convert("RGB") if isinstance(img, Image.Image) else img).astype(int)
    h, w = arr.shape[:2]
    return np.array([arr[y * h // 4, x * w // 4] for x, y in [(1, 1), (3, 1), (1, 3), (3, 3)]])


def shows_upright(img: Image.Image | np.ndarray, upright: Image.Image, size: bool = True) -> bool:
    """Whether ``img`` shows ``upright``'s quadrants (and size, for a PIL image) within JPEG error."""
    if size and isinstance(img, Image.Image) and img.size != upright.size:
        return False
    return bool(np.abs(quadrant_colours(img) - quadrant_colours(upright)).max() <= 40)


def assert_upright(img: Image.Image | np.ndarray, upright: Image.Image, size: bool = True) -> None:
    """Assert ``img`` shows ``upright`` as it is meant to be seen (see :func:`shows_upright`)."""
    assert shows_upright(img, upright, size), (
        getattr(img, "size", None), upright.size, quadrant_colours(img).tolist(), quadrant_colours(upright).tolist())


def exif_jpeg(upright: Image.Image, orientation: int, quality: int = 95) -> bytes:
    """JPEG bytes of ``upright`` stored turned, with the EXIF Orientation that turns it back."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    upright.transpose(STORE_FOR_ORIENTATION[orientation]).save(buf, "JPEG", quality=quality, exif=exif)
    return buf.getvalue()


def jpeg_with_exif_block(img: Image.Image, block: bytes) -> bytes:
    """JPEG bytes of ``img`` whose APP1 EXIF segment holds ``block`` as given (malformed)."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, exif=block)
    return buf.getvalue()


def tiff_block(entries: list[tuple[int, int, int, bytes]], data: bytes = b"") -> bytes:
    """A raw big-endian EXIF block: IFD0 ``(tag, type, count, 4-byte value)`` entries, then ``data``.

    Values that do not fit in 4 bytes point at ``data``, which starts at offset
    ``10 + 12 * len(entries) + 4`` of the TIFF header.
    """
    ifd = struct.pack(">H", len(entries)) + b"".join(struct.pack(">HHI", t, ty, n) + v for t, ty, n, v in entries)
    return b"Exif\x00\x00MM\x00*\x00\x00\x00\x08" + ifd + b"\x00\x00\x00\x00" + data


def malformed_exif_blocks() -> dict[str, tuple[bytes, int]]:
    """Malformed EXIF blocks and the orientation a reader can still honour (1: none).

    ``mistyped-tag``: Orientation 6 is readable, but ImageWidth is stored as text; Pillow
    13's ``exif_transpose`` raises when it writes the block back after turning the pixels.
    """
    text_at = 10 + 12 * 2 + 4
    return {
        "orientation-99": (tiff_block([(0x0112, 3, 1, b"\x00\x63\x00\x00")]), 1),
        "garbage": (b"Exif\x00\x00" + bytes(range(256)) * 2, 1),
        "cut-ifd": (b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x12", 1),
        "offset-out-of-range": (b"Exif\x00\x00II*\x00\xff\xff\xff\x7f", 1),
        "not-exif": (b"hello, not an exif block at all", 1),
        "mistyped-tag": (tiff_block([(0x0112, 3, 1, b"\x00\x06\x00\x00"),
                                     (0x0100, 2, 20, struct.pack(">I", text_at))],
                                    b"2020:01:01 00:00:00\x00"), 6),
    }


TINY_CONFIG = ImportConfig(cleaning=CleaningConfig(min_per_class=10, max_per_class=100))


@pytest.fixture(scope="session")
def tiny_manifest(tmp_path_factory) -> Path:
    """A tiny generated dataset's manifest (6 classes x 24 pins, 8 users)."""
    return make_tiny_manifest(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture
def store(tmp_path) -> Store:
    """An empty store in a temporary folder."""
    return Store(tmp_path / "store")


@pytest.fixture
def tiny_store(tmp_path, tiny_manifest) -> Store:
    """A store in a temporary folder with the tiny dataset imported as ``tiny``."""
    s = Store(tmp_path / "store")
    import_manifest(s, tiny_manifest, "tiny", TINY_CONFIG, progress=False)
    return s


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """Two one-CPU Ray nodes on this machine, the driver connected; session files in a tmp dir.

    One cluster for the whole test session (the Ray engine and Ray import tests share it:
    Ray allows one ``ray.init`` per process); skipped without Ray."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    from ray.cluster_utils import Cluster

    old = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = str(tmp_path_factory.mktemp("ray"))
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False, "object_store_memory": 150 * 2**20})
    cluster.add_node(num_cpus=1, object_store_memory=150 * 2**20)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    yield cluster
    ray.shutdown()
    cluster.shutdown()
    if old is None:
        os.environ.pop("RAY_TMPDIR", None)
    else:
        os.environ["RAY_TMPDIR"] = old
