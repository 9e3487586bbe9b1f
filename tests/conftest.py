"""Shared fixtures: a tiny generated dataset of pins and a store holding it."""

from __future__ import annotations

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
