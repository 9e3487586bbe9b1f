"""Synthetic Pinterest-style datasets of any size, for scale benchmarks and tests.

:func:`write_synthetic` writes ``N`` pins (29 categories, 500+ users) as a manifest plus an
``images/`` folder, deterministic by seed:

- every pin has its **own** small JPEG (48 x 48 px, about 1.5 KB): a class-dependent colour
  and shape on a noisy background, jittered per pin, so an image model learns the class and
  the importer's duplicate-image step (a perceptual hash) finds no duplicates;
- descriptions draw 3 words from the class's own vocabulary (real English words, known to
  GloVe) and 3-5 from a shared filler list, so word-vector and TF-IDF models learn too;
- users (``max(500, N // 100)``) each prefer three categories; a pin is saved by one user,
  a third of pins by a second one (rows repeat per save, as the manifest format says); every
  user saves at least one pin.

Images are drawn with numpy (precomputed shape masks) and encoded by Pillow, in parallel
processes: 100,000 pins take about 30 s on 2 cores.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# 29 categories, each with 12 words of its own.
VOCABULARY: dict[str, tuple[str, ...]] = {
    "Animals": ("dog", "cat", "puppy", "kitten", "fur", "paw", "horse", "bird", "pet", "zoo", "rabbit", "tiger"),
    "Architecture": ("building", "tower", "bridge", "facade", "column", "arch", "skyscraper", "concrete",
                     "cathedral", "roof", "window", "architect"),
    "Art": ("painting", "canvas", "brush", "sculpture", "gallery", "museum", "portrait", "watercolor",
            "artist", "easel", "mural", "sketch"),
    "Beauty": ("makeup", "lipstick", "skincare", "mascara", "nail", "perfume", "eyeliner", "cosmetics",
               "lotion", "serum", "blush", "manicure"),
    "Cars": ("car", "engine", "wheel", "sedan", "truck", "motor", "garage", "tire", "racing", "driver",
             "convertible", "highway"),
    "Celebrities": ("actor", "actress", "celebrity", "star", "premiere", "singer", "famous", "carpet",
                    "paparazzi", "award", "interview", "idol"),
    "DIY and crafts": ("craft", "glue", "yarn", "knitting", "sewing", "scissors", "handmade", "felt",
                       "crochet", "stitch", "ribbon", "beads"),
    "Design": ("logo", "typography", "layout", "font", "poster", "branding", "palette", "minimal",
               "graphic", "grid", "vector", "mockup"),
    "Education": ("school", "teacher", "student", "classroom", "lesson", "homework", "math", "reading",
                  "university", "exam", "notebook", "library"),
    "Food and drink": ("pizza", "cake", "recipe", "sauce", "dinner", "baking", "soup", "salad", "coffee",
                       "bread", "chocolate", "cocktail"),
    "Gardening": ("tulip", "seeds", "soil", "compost", "garden", "bloom", "shovel", "greenhouse", "rose",
                  "lawn", "weeds", "orchid"),
    "Geek": ("comic", "superhero", "gaming", "console", "anime", "cosplay", "fantasy", "dragon", "wizard",
             "trek", "arcade", "nerd"),
    "Hair": ("hairstyle", "braid", "curls", "haircut", "bangs", "ponytail", "shampoo", "blonde", "updo",
             "hairdo", "bun", "wavy"),
    "Health and fitness": ("workout", "yoga", "gym", "cardio", "muscle", "diet", "stretching", "running",
                           "protein", "pilates", "squat", "wellness"),
    "History": ("ancient", "empire", "war", "medieval", "castle", "king", "queen", "archive", "century",
                "revolution", "pharaoh", "roman"),
    "Holidays and events": ("christmas", "halloween", "easter", "party", "birthday", "gift", "pumpkin",
                            "fireworks", "celebration", "ornament", "festival", "thanksgiving"),
    "Home decor": ("sofa", "pillow", "curtain", "lamp", "rug", "shelf", "bedroom", "kitchen", "vase",
                   "decor", "interior", "cozy"),
    "Humor": ("funny", "joke", "meme", "laugh", "hilarious", "prank", "silly", "comedy", "pun", "giggle",
              "sarcasm", "lol"),
    "Illustrations": ("illustration", "drawing", "doodle", "ink", "cartoon", "character", "sketchbook",
                      "pencil", "digital", "lineart", "storybook", "inking"),
    "Kids": ("toddler", "baby", "toys", "playground", "nursery", "crayons", "children", "bedtime",
             "puzzle", "blocks", "stroller", "preschool"),
    "Men's fashion": ("suit", "tie", "blazer", "menswear", "beard", "loafers", "watch", "jacket",
                      "cufflinks", "tailored", "sneakers", "denim"),
    "Outdoors": ("hiking", "camping", "mountain", "trail", "forest", "tent", "lake", "kayak", "canyon",
                 "backpack", "wilderness", "campfire"),
    "Photography": ("camera", "lens", "photo", "shutter", "exposure", "tripod", "portrait", "aperture",
                    "photographer", "lighting", "snapshot", "focus"),
    "Quotes": ("quote", "inspiration", "motivation", "wisdom", "words", "saying", "proverb", "mantra",
               "believe", "dream", "courage", "hope"),
    "Science": ("physics", "chemistry", "biology", "atom", "molecule", "microscope", "experiment",
                "laboratory", "galaxy", "planet", "telescope", "astronomy"),
    "Sports": ("football", "goal", "team", "match", "runner", "stadium", "basketball", "tennis", "soccer",
               "coach", "athlete", "olympic"),
    "Technology": ("laptop", "circuit", "code", "robot", "software", "chip", "smartphone", "gadget",
                   "computer", "programming", "internet", "processor"),
    "Travel": ("beach", "passport", "flight", "hotel", "island", "journey", "vacation", "luggage",
               "airport", "resort", "tourist", "cruise"),
    "Weddings": ("wedding", "bride", "groom", "bouquet", "veil", "ceremony", "reception", "bridesmaid",
                 "engagement", "ring", "vows", "honeymoon"),
}
CATEGORIES: tuple[str, ...] = tuple(VOCABULARY)
FILLER: tuple[str, ...] = ("lovely", "idea", "weekend", "simple", "bright", "modern", "favorite", "best",
                           "easy", "beautiful", "great", "little", "amazing", "perfect", "new", "style")
IMAGE_PX = 48
_SHAPES = ("disc", "square", "triangle", "ring", "cross", "stripes")


@dataclass(frozen=True)
class SyntheticConfig:
    """What :func:`write_synthetic` generates.

    Attributes:
        n_pins: Number of distinct pins N (>= 29 * 20, so every class survives cleaning).
        n_users: Number of users; default ``max(500, n_pins // 100)``.
        seed: Seed of everything (same seed, same files).
        image_px: Side of the square images in pixels.
        workers: Processes drawing and encoding images; default ``os.cpu_count()``.
        second_save_every: Every k-th pin is saved by a second user too.
    """

    n_pins: int = 10_000
    n_users: int | None = None
    seed: int = 0
    image_px: int = IMAGE_PX
    workers: int | None = None
    second_save_every: int = 3

    @property
    def users(self) -> int:
        """The number of users written."""
        return self.n_users if self.n_users is not None else max(500, self.n_pins // 100)


def _check(config: SyntheticConfig) -> None:
    if config.n_pins < 20 * len(CATEGORIES):
        raise ValueError(
            f"A synthetic dataset needs at least {20 * len(CATEGORIES)} pins (20 per category, the "
            f"importer's default minimum per class); {config.n_pins} were asked for."
        )
    if config.users < 1:
        raise ValueError(f"A synthetic dataset needs at least one user; {config.users} were asked for.")
    if not 16 <= config.image_px <= 512:
        raise ValueError(f"image_px must be between 16 and 512 pixels; got {config.image_px}.")


def _masks(px: int) -> np.ndarray:
    """Boolean masks of each shape, shape (len(_SHAPES), 2 * px, 2 * px) (cropped per pin)."""
    s = 2 * px
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) - s / 2
    r = px * 0.3
    disc = xx ** 2 + yy ** 2 <= r ** 2
    square = (np.abs(xx) <= r) & (np.abs(yy) <= r)
    triangle = (yy <= r) & (yy >= -r) & (np.abs(xx) <= (yy + r) / 2)
    ring = disc & (xx ** 2 + yy ** 2 >= (r * 0.55) ** 2)
    cross = ((np.abs(xx) <= r / 3) | (np.abs(yy) <= r / 3)) & (np.abs(xx) <= r) & (np.abs(yy) <= r)
    stripes = ((xx + yy) % (px / 4) < px / 8) & (np.abs(xx) <= r * 1.3) & (np.abs(yy) <= r * 1.3)
    return np.stack([disc, square, triangle, ring, cross, stripes])


def class_style(label: int) -> tuple[tuple[int, int, int], int]:
    """(RGB colour, shape index) of class ``label``: hues spread over the circle, shapes cycled."""
    import colorsys

    h = (label * 0.618034) % 1.0
    rgb = colorsys.hsv_to_rgb(h, 0.85, 0.9 if label % 2 else 0.6)
    return tuple(int(v * 255) for v in rgb), label % len(_SHAPES)


def _draw_chunk(args: tuple[Path, list[str], np.ndarray, int, int]) -> int:
    """Draw and save the JPEGs of one chunk of pins; returns how many were written."""
    from PIL import Image

    folder, names, labels, px, seed = args
    rng = np.random.default_rng(seed)
    masks = _masks(px)
    styles = [class_style(c) for c in range(len(CATEGORIES))]
    for name, label in zip(names, labels):
        colour, shape = styles[int(label)]
        img = rng.integers(170, 240, (px, px, 3), dtype=np.uint8)
        dy, dx = (int(v) for v in rng.integers(px // 2 - px // 6, px // 2 + px // 6 + 1, 2))
        m = masks[shape][dy:dy + px, dx:dx + px]
        tint = np.clip(np.array(colour) + rng.integers(-25, 26, 3), 0, 255).astype(np.uint8)
        img[m] = tint
        Image.fromarray(img).save(folder / name, "JPEG", quality=80)
    return len(names)


def _descriptions(labels: np.ndarray, rng: np.random.Generator) -> list[str]:
    """One description per pin: 3 class words + 3-5 filler words, shuffled; shape (n,) strings."""
    vocab = np.array([VOCABULARY[c] for c in CATEGORIES])  # (29, 12)
    filler = np.array(FILLER)
    n = len(labels)
    own = vocab[labels[:, None], rng.integers(0, vocab.shape[1], (n, 3))]
    fill = filler[rng.integers(0, len(filler), (n, 5))]
    n_fill = rng.integers(3, 6, n)
    out = []
    for i in range(n):
        words = list(own[i]) + list(fill[i, : n_fill[i]])
        rng.shuffle(words)
        out.append(" ".join(words).capitalize() + ".")
    return out


def synthetic_manifest(config: SyntheticConfig) -> pd.DataFrame:
    """The manifest rows of a synthetic dataset (no image files are written).

    Returns:
        One row per (pin, user) save: pin_id, image (``images/<pin_id>.jpg``), description,
        category, user_id, board; about ``4/3 * n_pins`` rows.
    """
    _check(config)
    rng = np.random.default_rng(config.seed)
    n, C, U = config.n_pins, len(CATEGORIES), config.users
    labels = np.arange(n) % C
    rng.shuffle(labels)
    width = len(str(n - 1))
    pin_ids = np.array([f"s{i:0{width}d}" for i in range(n)])
    # every user prefers three categories; a pin goes to a user who prefers its category
    prefs = np.stack([rng.permutation(C)[:3] for _ in range(U)])  # (U, 3)
    by_cat = [np.flatnonzero((prefs == c).any(1)) for c in range(C)]
    by_cat = [u if len(u) else np.arange(U) for u in by_cat]
    first = np.array([by_cat[c][rng.integers(0, len(by_cat[c]))] for c in labels])
    second = rng.integers(0, U, n)
    cats = np.array(CATEGORIES, dtype=object)[labels]
    base = pd.DataFrame({
        "pin_id": pin_ids, "image": [f"images/{p}.jpg" for p in pin_ids],
        "description": _descriptions(labels, rng), "category": cats,
    })
    uw = len(str(U - 1))
    saves = [base.assign(user_id=[f"u{u:0{uw}d}" for u in first])]
    slots = np.flatnonzero(np.arange(n) % config.second_save_every == 0)
    idle = np.setdiff1d(np.arange(U), first)  # users no pin went to: each saves one pin too
    second[slots[:len(idle)]] = idle[:len(slots)]
    extra = slots[second[slots] != first[slots]]
    saves.append(base.iloc[extra].assign(user_id=[f"u{u:0{uw}d}" for u in second[extra]]))
    rows = pd.concat(saves, ignore_index=True)
    rows["board"] = rows["category"].str.lower() + " ideas"
    return rows


def write_synthetic(folder: Path | str, config: SyntheticConfig = SyntheticConfig()) -> Path:
    """Write a synthetic dataset (``manifest.parquet`` + ``images/``) into ``folder``.

    Args:
        folder: Output folder (created; existing files of the same names are overwritten).
        config: Size, users, seed.

    Returns:
        The manifest path, ready for ``pinterest-mm import``.

    Raises:
        ValueError: Fewer than 580 pins, no users, or an image size out of range.
    """
    folder = Path(folder)
    rows = synthetic_manifest(config)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    pins = rows.drop_duplicates("pin_id")
    names = pins["image"].str.slice(len("images/")).tolist()
    labels = pins["category"].map({c: i for i, c in enumerate(CATEGORIES)}).to_numpy()
    workers = config.workers or os.cpu_count() or 1
    size = max(256, -(-len(names) // (workers * 8)))
    chunks = [(images, names[i:i + size], labels[i:i + size], config.image_px, config.seed * 1_000_003 + i)
              for i in range(0, len(names), size)]
    if workers == 1 or len(chunks) == 1:
        for c in chunks:
            _draw_chunk(c)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_draw_chunk, chunks))
    path = folder / "manifest.parquet"
    rows.to_parquet(path, index=False)
    return path
