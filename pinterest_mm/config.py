"""Typed configuration: where the store lives and how a dataset is cleaned and split.

Every cleaning threshold of the thesis (section 3.2) is a field here, with the thesis
value documented next to our default.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = Path(__file__).resolve().parent / "demo_data"
DEMO_NAME = "demo"

# The names every layer shares.
SPLITS = ("train", "val", "test")  # train: out-of-fold probabilities; val: settings; test: scores
FAMILIES = ("image", "word_embedding", "transformer", "other")  # model families, thesis order
KMAX = 10  # top-k curves run k = 1..KMAX (thesis Figures 4.1-4.4)


def home(create: bool = True) -> Path:
    """Return the store folder: ``$PINTEREST_MM_HOME``, default ``artifacts/`` of the repo.

    Args:
        create: Create the folder when missing (not for read-only use, which writes nothing).
    """
    env = os.environ.get("PINTEREST_MM_HOME")
    path = Path(env).expanduser() if env else REPO_ROOT / "artifacts"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class CleaningConfig:
    """How pins are cleaned and which classes are kept (thesis 3.2).

    Attributes:
        min_words: Drop pins whose cleaned description has fewer words (thesis: 4).
        min_token_len: Drop tokens shorter than this (thesis: 2).
        max_token_len: Drop tokens longer than this (thesis: 20).
        min_per_class: Keep categories with at least this many pins after cleaning
            (thesis: more than 1,000; our default suits small datasets).
        max_per_class: Draw at most this many pins per category, seeded (thesis: 1,000).
        dedupe_images: Detect duplicate images by a grayscale perceptual hash.
        hash_distance: Two images are duplicates when their 256-bit grayscale
            difference hashes differ in at most this many bits (0 = identical hash).
        max_image_pixels: Refuse images with more pixels than this (decompression bombs).
        max_image_bytes: Refuse image files larger than this, unread (64 MiB: at most
            4 x 64 MiB in memory while 4 images are checked at once).
        merge_case_variants: Merge category names that differ only in case ("Gardening",
            "gardening") into the spelling with the most pins; else they are reported.
        drop_categories: Category names dropped up front (thesis: "none" and "other").
    """

    min_words: int = 4
    min_token_len: int = 2
    max_token_len: int = 20
    min_per_class: int = 20
    max_per_class: int = 1000
    dedupe_images: bool = True
    hash_distance: int = 0
    max_image_pixels: int = 64_000_000
    max_image_bytes: int = 64 * 2**20
    merge_case_variants: bool = False
    drop_categories: tuple[str, ...] = ("none", "other")


@dataclass(frozen=True)
class SplitConfig:
    """Stratified, seeded splits (thesis 2.4.1, 3.2.3).

    Attributes:
        test_size: Share of all pins held out as test (thesis: 0.10).
        val_size: Share of the remaining pins used for validation (thesis: 0.20).
        seed: Seed of the class draw and of both splits.
    """

    test_size: float = 0.10
    val_size: float = 0.20
    seed: int = 0


@dataclass(frozen=True)
class ImportConfig:
    """Everything that decides the content of an imported dataset."""

    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    split: SplitConfig = field(default_factory=SplitConfig)

    def to_dict(self) -> dict:
        """Return a JSON-ready dict (stored with the dataset)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ImportConfig":
        """Rebuild a config from :meth:`to_dict` output."""
        cleaning = dict(data.get("cleaning", {}))
        if "drop_categories" in cleaning:
            cleaning["drop_categories"] = tuple(cleaning["drop_categories"])
        return cls(cleaning=CleaningConfig(**cleaning), split=SplitConfig(**data.get("split", {})))
