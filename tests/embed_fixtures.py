"""A small synthetic :class:`EmbedData` with a known structure, for the joint-space tests.

Four categories; each has its own image centroid, its own ten words and three users who
prefer it. Pin i's image is its centroid plus noise, its text draws words of its category,
and one or two users of its category (sometimes one of another) saved it. A few pins have no
image (zero features), one has no known word and a few are saved by nobody.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pinterest_mm.embed.data import EmbedData

CLASSES = ["Animals", "Food", "Travel", "Art"]


def synthetic_data(n: int = 200, seed: int = 0, with_users: bool = True) -> EmbedData:
    rng = np.random.default_rng(seed)
    C, d_img, d_word, per_class_words, L = len(CLASSES), 24, 12, 10, 8
    labels = np.arange(n) % C
    split = np.where(np.arange(n) % 10 < 6, "train", np.where(np.arange(n) % 10 < 8, "val", "test"))
    centroids = rng.normal(0, 1, (C, d_img))
    image = (centroids[labels] + rng.normal(0, 0.8, (n, d_img))).astype(np.float32)
    image[[5, 17, 42]] = 0.0  # undecodable images
    vocab = [CLASSES[c].lower() + 'abcdefghij'[j] for c in range(C) for j in range(per_class_words)]
    vectors = np.zeros((len(vocab) + 1, d_word), np.float32)
    vectors[1:] = rng.normal(0, 1, (len(vocab), d_word))
    words = np.zeros((n, L), np.int64)
    for i, c in enumerate(labels):
        k = rng.integers(3, L + 1)
        own = 1 + c * per_class_words + rng.integers(0, per_class_words, k)
        noise = rng.random(k) < 0.2
        own[noise] = 1 + rng.integers(0, len(vocab), noise.sum())
        words[i, :k] = own
    words[7] = 0  # no known word
    pins = pd.DataFrame({"pin_id": [f"p{i}" for i in range(n)], "row": np.arange(n), "split": split,
                         "label": labels, "category": [CLASSES[c] for c in labels],
                         "description": [" ".join(vocab[w - 1] for w in ws if w) for ws in words],
                         "image": [f"img/{i}.png" for i in range(n)]})
    saves = []
    if with_users:
        for i, c in enumerate(labels):
            if i % 13 == 0:
                continue  # saved by nobody
            owners = {3 * c + rng.integers(0, 3)}
            if rng.random() < 0.4:
                owners.add(3 * c + rng.integers(0, 3))
            if rng.random() < 0.15:
                owners.add(rng.integers(0, 3 * C))
            saves += [(f"p{i}", f"u{u:02d}", split[i], i) for u in sorted(owners)]
    saves = pd.DataFrame(saves, columns=["pin_id", "user_id", "split", "row"])
    users = sorted(saves.loc[saves["split"] == "train", "user_id"].unique())
    uidx = {u: j for j, u in enumerate(users)}
    saves["user"] = np.array([uidx.get(u, -1) for u in saves["user_id"]], np.int64)
    return EmbedData(dataset="synth", pins=pins, classes=CLASSES, image=image, words=words, vocab=vocab,
                     vectors=vectors, has_image=np.abs(image).sum(1) > 0, has_text=(words > 0).any(1),
                     users=users, saves=saves, image_model="synthetic", word_model="synthetic",
                     fingerprint={"seed": seed, "n": n, "users": with_users})
