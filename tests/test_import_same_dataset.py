"""The import's memory work changed how it computes, not what it keeps.

Each case imports a manifest and digests everything the import stores: the kept pins (every
column, image paths relative to the images root), every manifest row with its fate, the
report, the classes, the counts and the dataset fingerprint. The digests were recorded with
the importer as it was before the import was made to keep its memory per pin small (main at
ac4a76d: whole-table steps on Python objects); an import that keeps other pins, draws other
splits or reports other reasons gives another digest. A deliberate change to the cleaning
rules changes them too: record the new digests then, and say why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pinterest_mm.config import DEMO_DIR, CleaningConfig, ImportConfig
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.store import Store

SIDE = 16


def png_bytes(pixels: np.ndarray) -> bytes:
    """A grayscale PNG of ``pixels`` (shape (SIDE, SIDE), uint8)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = np.zeros((SIDE, SIDE + 1), np.uint8)
    raw[:, 1:] = pixels
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", SIDE, SIDE, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw.tobytes())) + chunk(b"IEND", b""))


def generated_manifest(folder: Path, n_pins: int = 700, seed: int = 3) -> Path:
    """A manifest with everything the import sorts out, in ``folder``.

    Images: noise PNGs, some shared by pins of other categories (exact duplicates), some a
    few pixels off another one (near duplicates for ``hash_distance`` > 0), one missing, one
    corrupt. Pins: saved by 1-3 users, with exact repeats of a (pin, user) row and rows with
    no user; some with too few words, some in excluded categories, one category too small,
    one above the cap per class.
    """
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    base = rng.integers(0, 256, (n_pins, SIDE, SIDE), dtype=np.uint8)
    names = []
    for k in range(n_pins):
        pixels = base[k]
        if k % 11 == 5:  # a near copy of an earlier image: a few pixels nudged
            pixels = base[k - 5].copy()
            pixels[0, :3] = 255 - pixels[0, :3]
        name = f"images/i{k}.png"
        if k % 7 == 3:  # an exact copy of an earlier image, shared file or a copied file
            name = names[k - 3] if k % 2 else name
            pixels = base[k - 3]
        if name not in names:
            (folder / name).write_bytes(png_bytes(pixels))
        names.append(name)
    (folder / "images/i0.png").unlink()  # missing
    (folder / "images/i1.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")  # corrupt
    cats = np.array(["Garden", "Recipes", "Travel", "Cars", "Art", "Pets", "other", "Tiny"])
    cat = cats[rng.choice(len(cats), n_pins, p=[.30, .2, .15, .12, .1, .07, .04, .02])]
    words = np.array(["tulip", "compost", "pasta", "baking", "island", "beach", "engine", "canvas",
                      "puppy", "kitten", "shed", "bread", "café", "straße", "ölja", "北京"])
    rows = []
    for k in range(n_pins):
        n_words = 2 if k % 13 == 0 else int(rng.integers(4, 9))
        text = " ".join(rng.choice(words, n_words)) + (" and the" if k % 5 == 0 else "")
        users = [f"u{int(u)}" for u in rng.integers(0, 40, int(rng.integers(1, 4)))]
        if k % 9 == 0:
            users.append(users[0])  # an exact repeat of a (pin, user) row
        if k % 17 == 0:
            users.append("")  # a save with no user
        for u in users:
            rows.append(dict(pin_id=f"p{(k * 7919) % 100_003}", image=names[k], description=text,
                             category=str(cat[k]), user_id=u, board=f"b{k % 4}"))
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=seed)  # rows of a pin not adjacent
    path = folder / "manifest.csv"
    df.to_csv(path, index=False)
    return path


def dataset_digest(store: Store, name: str, root: Path) -> str:
    """SHA-256 over what the import stored for ``name`` (image paths relative to ``root``)."""
    pins = store.pins(name)
    prefix = str(root.resolve()) + "/"
    assert pins["image"].str.startswith(prefix).all()
    pins["image"] = pins["image"].str.slice(len(prefix))
    rows = store.manifest_rows(name)
    rows = rows.sort_values(list(rows.columns), kind="stable").reset_index(drop=True)
    info = store.dataset_info(name)
    parts = [pins.to_csv(index=False), rows.to_csv(index=False), store.import_report(name).to_csv(index=False),
             json.dumps([store.classes(name), info["fingerprint"], int(info["n_pins"]), int(info["n_users"]),
                         info["split_counts"], info["config"]], sort_keys=True)]
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:20]


CASES = {
    # name: (manifest maker, config, digest recorded with main's importer, its fingerprint)
    "demo": (lambda tmp: DEMO_DIR / "manifest.csv",
             ImportConfig(cleaning=CleaningConfig(min_per_class=30, max_per_class=100)),
             "c4c648d8e142dff49546", "30cb7f114be331b8"),
    "generated": (generated_manifest,
                  ImportConfig(cleaning=CleaningConfig(min_per_class=20, max_per_class=100)),
                  "b6fd69fc5e1cbbd8eb37", "349e9bd9443d1c5b"),
    "near duplicates": (generated_manifest,
                        ImportConfig(cleaning=CleaningConfig(min_per_class=20, max_per_class=100,
                                                             hash_distance=10)),
                        "1ba10b61c52be8c494f8", "7af0db0c25fb3b24"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_import_keeps_the_same_dataset_as_before(tmp_path, case):
    make, config, digest, fingerprint = CASES[case]
    manifest = make(tmp_path / "data")
    store = Store(tmp_path / "home")
    res = import_manifest(store, manifest, "d", config, progress=False)
    got = (dataset_digest(store, "d", manifest.parent), store.dataset_info("d")["fingerprint"])
    print(case, got, res.n_pins, res.split_counts, res.n_users)
    assert got == (digest, fingerprint), (case, got)


@pytest.mark.parametrize("n", [0, 1, 7, 12])
def test_fingerprint_written_in_chunks_equals_the_whole_json_text(monkeypatch, n):
    """The streamed fingerprint is the hash of the one JSON text the import used to build."""
    from pinterest_mm.data import pin_steps

    monkeypatch.setattr(pin_steps, "CHUNK", 5)  # 12 pins: chunks of 5, 5 and 2
    pins = pd.DataFrame({"pin_id": [f"p{k}" for k in range(n)], "category": ["Café \"x\""] * n,
                         "description": ["北京 ölja\n\\ end"] * n, "sha1": ["ab"] * n,
                         "split": ["train", "val", "test"] * (n // 3) + ["train"] * (n % 3), "label": 0})
    config = ImportConfig().to_dict()
    whole = json.dumps([config, pins[pin_steps.FINGERPRINT_COLUMNS].values.tolist()], sort_keys=True)
    assert pin_steps.dataset_fingerprint(config, pins) == hashlib.sha256(whole.encode()).hexdigest()[:16]


def _components_by_brute_force(hashes: list[str], max_distance: int) -> list[list[int]]:
    """Every pair compared: groups of indices linked by hashes within ``max_distance`` bits."""
    bits = np.unpackbits(np.array([np.frombuffer(bytes.fromhex(h), np.uint8) for h in hashes]), axis=1)
    near = (bits[:, None, :] != bits[None, :, :]).sum(-1) <= max_distance
    seen, groups = set(), []
    for i in range(len(hashes)):
        if i in seen:
            continue
        group, todo = {i}, [i]
        while todo:
            for j in np.flatnonzero(near[todo.pop()]).tolist():
                if j not in group:
                    group.add(j)
                    todo.append(j)
        seen |= group
        if len(group) > 1:
            groups.append(sorted(group))
    return groups


@pytest.mark.parametrize("max_distance", [1, 3, 10, 31, 40])
def test_near_duplicate_groups_equal_comparing_every_pair(max_distance):
    """The pigeonhole search finds the groups that comparing every pair finds (31: one byte
    per run; 40: more runs than bytes, every pair compared in blocks)."""
    from pinterest_mm.data.clean import duplicate_groups

    rng = np.random.default_rng(max_distance)
    base = rng.integers(0, 256, (60, 32), dtype=np.uint8)
    rows = base[rng.integers(0, 60, 240)]
    for row in rows:  # each a copy of one of 60 hashes with up to 2 * max_distance bits flipped
        for bit in rng.integers(0, 256, int(rng.integers(0, 2 * max_distance + 1))):
            row[bit // 8] ^= np.uint8(1 << (bit % 8))
    hashes = [r.tobytes().hex() for r in rows]
    expected = _components_by_brute_force(hashes, max_distance)
    assert 0 < len(expected) < 240
    assert duplicate_groups(hashes, max_distance) == expected
