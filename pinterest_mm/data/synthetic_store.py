"""A large test store without running models: what the app sees of a million-pin dataset.

:func:`write_test_store` writes, through the store's public write methods
(:meth:`Store.write_dataset`, :meth:`Store.save_model`), a dataset whose **test split has
100,000 pins** (the test split of a 1,000,000-pin dataset), 29 classes, 10,000 users with a
long-tailed number of saves, and the cached probabilities of 8 synthetic models (3 image,
3 word-embedding, 1 transformer, 1 TF-IDF) of different, seeded accuracies. No image model or
classifier runs: probabilities are drawn around the true labels (a model's own noise, noise
shared by all models so that hard pins are hard for every model, and a bump on a confusable
neighbour class), so fusion helps without becoming perfect.

The validation split defaults to the test split's size and the train split is cut to 10,000
pins: the app reads train probabilities only to fit learned fusions, and a store of 920,000
train pins would only make the generator slow. Pins share a pool of a few hundred generated
images (thumbnails need files; the app never hashes them).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ImportConfig
from ..store import Store
from .synthetic import CATEGORIES, SyntheticConfig, _descriptions, _draw_chunk

# name -> (family, modality, signal strength); the stronger, the more accurate.
MODELS: dict[str, tuple[str, str, float]] = {
    "synth-effnet-b": ("image", "image", 1.9),
    "synth-effnet-s": ("image", "image", 1.6),
    "synth-resnet": ("image", "image", 1.3),
    "synth-glove": ("word_embedding", "text", 1.7),
    "synth-word2vec": ("word_embedding", "text", 1.4),
    "synth-fasttext": ("word_embedding", "text", 1.2),
    "synth-bert": ("transformer", "text", 2.1),
    "synth-tfidf": ("other", "text", 1.0),
}


@dataclass(frozen=True)
class TestStoreConfig:
    """The size of a generated test store.

    Attributes:
        name: Dataset name.
        n_test: Pins in the test split.
        n_val: Pins in the validation split; None = ``n_test``.
        n_train: Pins in the train split.
        n_users: Users (saves are long-tailed: many users have a handful of pins).
        n_models: How many of :data:`MODELS` to store (1..8, in that order).
        images_per_class: Distinct images per class in the shared pool.
        seed: Seed of everything.
    """

    name: str = "big"
    n_test: int = 100_000
    n_val: int | None = None
    n_train: int = 10_000
    n_users: int = 10_000
    n_models: int = 8
    images_per_class: int = 8
    seed: int = 0
    __test__ = False  # a config, not a pytest test class


def _check(c: TestStoreConfig) -> None:
    C = len(CATEGORIES)
    n_val = c.n_test if c.n_val is None else c.n_val
    if min(c.n_test, n_val, c.n_train) < C:
        raise ValueError(f"Every split needs at least {C} pins (one per class); got test {c.n_test}, "
                         f"val {n_val}, train {c.n_train}.")
    if not 1 <= c.n_models <= len(MODELS):
        raise ValueError(f"n_models must be between 1 and {len(MODELS)}; got {c.n_models}.")
    if c.n_users < 1:
        raise ValueError(f"A test store needs at least one user; got {c.n_users}.")


def synth_probs(y: np.ndarray, n_classes: int, strength: float, rng: np.random.Generator,
                shared: np.ndarray) -> np.ndarray:
    """Probabilities of one synthetic model, shape (n, C) float32; argmax right more often
    the larger ``strength`` is. ``shared`` (n, C) is noise common to every model."""
    n = len(y)
    logits = rng.standard_normal((n, n_classes), dtype=np.float32) + shared
    logits[np.arange(n), y] += strength
    logits[np.arange(n), (y + 1) % n_classes] += strength * 0.35
    logits *= 1.3
    logits -= logits.max(1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(1, keepdims=True)
    return logits


def _pins(c: TestStoreConfig, images: list[str], rng: np.random.Generator) -> pd.DataFrame:
    """The pins table (one row per pin, columns of the store's ``pins`` table)."""
    C = len(CATEGORIES)
    sizes = {"train": c.n_train, "val": c.n_test if c.n_val is None else c.n_val, "test": c.n_test}
    parts = []
    for split, n in sizes.items():
        label = np.arange(n) % C
        rng.shuffle(label)
        parts.append(pd.DataFrame({"split": split, "split_row": np.arange(n), "label": label}))
    pins = pd.concat(parts, ignore_index=True)
    n = len(pins)
    pins["row"] = np.arange(n)
    width = len(str(n - 1))
    pins["pin_id"] = [f"b{i:0{width}d}" for i in range(n)]
    labels = pins["label"].to_numpy()
    pins["category"] = np.array(CATEGORIES, dtype=object)[labels]
    pool = np.array(images, dtype=object).reshape(C, -1)
    pins["image"] = pool[labels, rng.integers(0, pool.shape[1], n)]
    desc = _descriptions(labels, rng)
    pins["description"] = desc
    pins["text_transformer"] = [d.lower() for d in desc]
    pins["text_words"] = pins["text_transformer"].str.rstrip(".")
    pins["n_words"] = pins["text_words"].str.count(" ") + 1
    pins["board"] = pins["category"].str.lower() + " ideas"
    pins["image_hash"] = [f"{i:064x}" for i in range(n)]
    return pins


def _saves(pins: pd.DataFrame, c: TestStoreConfig, rng: np.random.Generator) -> pd.DataFrame:
    """(pin, user) saves: each pin saved by one user preferring its class, a third by a second
    user; user activity is long-tailed (Pareto weights), so many users have under 5 pins."""
    C, U = len(CATEGORIES), c.n_users
    weights = rng.pareto(1.1, U) + 0.02
    prefs = np.stack([rng.permutation(C)[:3] for _ in range(U)])
    labels = pins["label"].to_numpy()
    first = np.empty(len(pins), dtype=np.int64)
    for k in range(C):
        users = np.flatnonzero((prefs == k).any(1))
        if not len(users):
            users = np.arange(U)
        at = np.flatnonzero(labels == k)
        w = weights[users] / weights[users].sum()
        first[at] = rng.choice(users, len(at), p=w)
    second = rng.choice(U, len(pins), p=weights / weights.sum())
    extra = np.flatnonzero((np.arange(len(pins)) % 3 == 0) & (second != first))
    uw = len(str(U - 1))
    ids = np.array([f"user{u:0{uw}d}" for u in range(U)], dtype=object)
    cols = pins[["pin_id", "board", "category"]]
    rows = pd.concat([cols.assign(user_id=ids[first]), cols.iloc[extra].assign(user_id=ids[second[extra]])],
                     ignore_index=True)
    rows["status"] = "kept"
    return rows[["pin_id", "user_id", "board", "category", "status"]]


def _report(pins: pd.DataFrame) -> pd.DataFrame:
    counts = pins.groupby("category").size()
    return pd.DataFrame([{"step_idx": 0, "step": "manifest", "category": cat, "dropped": 0,
                          "remaining": int(n), "reason": "pins read"} for cat, n in counts.items()])


def write_test_store(root: Path | str, config: TestStoreConfig = TestStoreConfig()) -> Store:
    """Write a large synthetic dataset and its probability cache into the store at ``root``.

    Args:
        root: The store folder (created). The image pool goes to ``root/synthetic-images``.
        config: Sizes, users, models, seed.

    Returns:
        The store (writable handle).

    Raises:
        ValueError: A split smaller than the number of classes, or n_models out of 1..8.
    """
    _check(config)
    rng = np.random.default_rng(config.seed)
    root = Path(root)
    store = Store(root)
    folder = root / "synthetic-images" / config.name
    folder.mkdir(parents=True, exist_ok=True)
    C = len(CATEGORIES)
    names = [f"c{k:02d}_{j}.jpg" for k in range(C) for j in range(config.images_per_class)]
    labels = np.repeat(np.arange(C), config.images_per_class)
    _draw_chunk((folder, names, labels, SyntheticConfig().image_px, config.seed))
    pins = _pins(config, [str(folder / n) for n in names], rng)
    saves = _saves(pins, config, rng)
    split_counts = pins.groupby("split").size().astype(int).to_dict()
    info = {"manifest": f"generated: {json.dumps(asdict(config))}", "images_root": str(folder),
            "config": ImportConfig().to_dict(), "fingerprint": f"test-store-{config.seed}-{len(pins)}",
            "n_users": int(saves["user_id"].nunique()), "split_counts": split_counts}
    store.write_dataset(config.name, info=info, classes=list(CATEGORIES), pins=pins, manifest_rows=saves,
                        report=_report(pins), replace=True)
    ys = {s: part.sort_values("split_row")["label"].to_numpy() for s, part in pins.groupby("split")}
    shared = {s: rng.standard_normal((len(y), C), dtype=np.float32) * 0.6 for s, y in ys.items()}
    for i, (name, (family, modality, strength)) in enumerate(list(MODELS.items())[:config.n_models]):
        mrng = np.random.default_rng(config.seed + 101 * (i + 1))
        probs = {s: synth_probs(y, C, strength, mrng, shared[s]) for s, y in ys.items()}
        acc = {s: float((p.argmax(1) == ys[s]).mean()) for s, p in probs.items()}
        store.save_model(config.name, name, family=family, modality=modality,
                         params={"C": 0.01, "synthetic": True, "strength": strength},
                         cv_score=acc["train"], val_accuracy=acc["val"], test_accuracy=acc["test"],
                         seconds=1.0 + i, fingerprint=f"synthetic-{config.seed}", probs=probs)
    return store


def main(argv: list[str] | None = None) -> int:
    """``python -m pinterest_mm.data.synthetic_store ROOT [--test N] [--users N] [--models N]``."""
    import argparse
    import time

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--name", default="big")
    ap.add_argument("--test", type=int, default=100_000)
    ap.add_argument("--val", type=int, default=None)
    ap.add_argument("--train", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--models", type=int, default=8)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    write_test_store(a.root, TestStoreConfig(name=a.name, n_test=a.test, n_val=a.val, n_train=a.train,
                                             n_users=a.users, n_models=a.models))
    print(f"wrote {a.name} into {a.root} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
