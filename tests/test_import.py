"""Import: thesis cleaning rules, bad input, splits, atomicity, the CLI."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import (
    HM_DIR, STORE_FOR_ORIENTATION, TINY_CONFIG, jpeg_with_exif_block, make_tiny_manifest,
    malformed_exif_blocks,
)
from pinterest_mm.cli import main as cli_main
from pinterest_mm.config import CleaningConfig, ImportConfig, SplitConfig
from pinterest_mm.data.clean import clean_transformer_text, clean_words, duplicate_groups, inspect_image
from pinterest_mm.data.importer import ImportFailed, import_manifest
from pinterest_mm.data.manifest import ManifestError, read_manifest
from pinterest_mm.data.split import draw_per_class, stratified_split
from pinterest_mm.store import Store, StoreError
from manifest_copy import copy_tiny, edit


@pytest.fixture
def tiny_copy(tmp_path, tiny_manifest) -> Path:
    """A private, editable copy of the tiny dataset; its manifest."""
    return copy_tiny(tmp_path, tiny_manifest)


def status_of(store: Store, pin_id: str) -> str:
    rows = store.manifest_rows("tiny")
    return rows.loc[rows["pin_id"] == pin_id, "status"].iloc[0]


# ---------------------------------------------------------------- text cleaning
def test_clean_words_drops_stop_words_urls_short_and_long_tokens():
    """Check the thesis's word rules: stop words, < 2 or > 20 characters, URLs."""
    text = "A beautiful x photo from Canada http://t.co/abc " + "y" * 21 + " www.site.com/p ok"
    assert clean_words(text) == ["beautiful", "photo", "canada", "ok"]
    assert clean_words(text, min_len=3) == ["beautiful", "photo", "canada"]
    assert clean_words("") == []


def test_clean_transformer_text_only_removes_urls_and_lowercases():
    """Check that transformer text keeps stop words and punctuation."""
    assert clean_transformer_text("The BEST cake, see https://x.y/z  now!") == "the best cake, see now!"


def test_too_few_words_dropped_and_threshold_is_a_parameter(store, tiny_copy):
    """Check pins with fewer than min_words cleaned words are dropped."""
    edit(tiny_copy, lambda df: df.__setitem__("description", df["description"].where(
        df["pin_id"] != "p0_000", "The cute dog and the cat")))  # 3 words: cute, dog, cat
    import_manifest(store, tiny_copy, "tiny", TINY_CONFIG, progress=False)
    assert status_of(store, "p0_000") == "too few words"
    cfg = ImportConfig(cleaning=CleaningConfig(min_per_class=10, min_words=3))
    import_manifest(store, tiny_copy, "tiny", cfg, replace=True, progress=False)
    assert status_of(store, "p0_000") == "kept"


def test_both_texts_are_stored(tiny_store):
    """Check the word-vector text and the transformer text are both stored."""
    pins = tiny_store.pins("tiny")
    row = pins.iloc[0]
    assert row["text_words"].split() == clean_words(row["description"])
    assert row["text_transformer"] == clean_transformer_text(row["description"])


# ---------------------------------------------------------------- images
def _bomb_png(path: Path, side: int) -> None:
    """Write a valid 1-bit PNG of side x side pixels that compresses to almost nothing."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    raw = zlib.compress(row * side, 9)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.unlink(), "missing"),
        (lambda p: p.write_bytes(p.read_bytes()[:200]), "corrupt or truncated"),
        (lambda p: p.write_bytes(b"this is not an image at all"), "not an image"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: _bomb_png(p, 20_000), "decompression bomb"),
        (lambda p: _bomb_png(p, 9_000), "too large"),
    ],
    ids=["missing", "truncated", "not-image", "zero-bytes", "bomb", "huge"],
)
def test_bad_images_are_dropped_with_their_reason(store, tiny_copy, make, reason):
    """Check unusable image files drop only their pin, with a reason in the report."""
    make(tiny_copy.parent / "images" / "p1_003.png")
    result = import_manifest(store, tiny_copy, "tiny", TINY_CONFIG, progress=False)
    assert result.n_pins == 143
    status = status_of(store, "p1_003")
    assert status.startswith("bad image") and reason in status


@pytest.mark.parametrize("mode", ["CMYK", "RGBA", "I;16", "P", "L"])
def test_unusual_image_modes_are_kept(tmp_path, mode):
    """Check CMYK, RGBA, 16-bit, palette and grayscale images pass the check."""
    arr = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    img = Image.fromarray(arr[..., 0].astype(np.uint16) * 200) if mode == "I;16" else Image.fromarray(arr).convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    img.save(path)
    check = inspect_image(path)
    assert check.ok, check.reason
    assert len(check.dhash) == 64


def test_animated_gif_is_kept(tmp_path):
    """Check an animated GIF passes (its first frame is used)."""
    frames = [Image.new("RGB", (30, 30), c) for c in ("red", "blue", "green")]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    assert inspect_image(tmp_path / "a.gif").ok


def test_duplicate_image_kept_in_the_smallest_category(store, tiny_copy):
    """Check a duplicate image survives once, in the category with the fewest pins."""
    images = tiny_copy.parent / "images"
    # Make "Travel" smaller: drop 4 of its pins, then copy a Travel image over an Animals pin.
    edit(tiny_copy, lambda df: df.drop(df.index[df["pin_id"].isin([f"p5_00{i}" for i in range(4)])], inplace=True))
    shutil.copy(images / "p5_010.png", images / "p0_005.png")
    import_manifest(store, tiny_copy, "tiny", TINY_CONFIG, progress=False)
    assert status_of(store, "p5_010") == "kept"
    assert status_of(store, "p0_005").startswith("duplicate image")
    assert "p5_010" in status_of(store, "p0_005")


def test_duplicate_groups_with_a_distance():
    """Check near-duplicate grouping by Hamming distance."""
    hashes = ["ff00000000000000", "ff00000000000001", "00ff000000000000", "ff00000000000000"]
    assert sorted(map(sorted, duplicate_groups(hashes, 0))) == [[0, 3]]
    assert sorted(map(sorted, duplicate_groups(hashes, 1))) == [[0, 1, 3]]


def _photo(seed: int = 0) -> Image.Image:
    """A 272 x 256 photo of 17 x 16 grey blocks whose horizontal neighbours differ by >= 40
    levels: its 256-bit dHash has no near-ties, so JPEG noise cannot flip a bit."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(16):
        row = [int(rng.integers(30, 226))]
        for _ in range(16):
            step = int(rng.integers(40, 90)) * (1 if row[-1] < 128 else -1)
            row.append(row[-1] + step)
        rows.append(row)
    blocks = np.array(rows, dtype=np.uint8).repeat(16, 0).repeat(16, 1)
    return Image.fromarray(blocks).convert("RGB")


def _jpeg(img: Image.Image, orientation: int = 1) -> bytes:
    """JPEG bytes: ``img`` upright, or stored turned with the EXIF tag that turns it back."""
    import io

    buf = io.BytesIO()
    if orientation == 1:
        img.save(buf, "JPEG", quality=95)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.transpose(STORE_FOR_ORIENTATION[orientation]).save(buf, "JPEG", quality=95, exif=exif)
    return buf.getvalue()


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_photo_hashes_as_the_upright_one(tmp_path, orientation):
    """Check the dHash of a photo stored turned with an EXIF tag equals the upright photo's."""
    import imagehash

    from pinterest_mm.data.clean import HASH_SIZE

    photo = _photo()
    (tmp_path / "upright.jpg").write_bytes(_jpeg(photo))
    (tmp_path / "phone.jpg").write_bytes(_jpeg(photo, orientation))
    upright, phone = inspect_image(tmp_path / "upright.jpg"), inspect_image(tmp_path / "phone.jpg")
    assert upright.ok and phone.ok
    assert phone.dhash == upright.dhash
    with Image.open(tmp_path / "phone.jpg") as stored:  # the premise: as stored, it hashes apart
        assert str(imagehash.dhash(stored.convert("L"), hash_size=HASH_SIZE)) != upright.dhash
    assert (phone.width, phone.height) == (  # width/height stay those of the stored pixels
        (256, 272) if orientation in (6, 8) else (272, 256))


def test_exif_rotated_copy_is_a_duplicate(store, tiny_copy):
    """Check one photo stored upright and once turned with an EXIF tag is one image: the copy
    is dropped as a duplicate, kept in the category with the fewest pins."""
    images = tiny_copy.parent / "images"
    photo = _photo(1)
    (images / "p5_010.jpg").write_bytes(_jpeg(photo))
    (images / "p0_005.jpg").write_bytes(_jpeg(photo, 6))

    def use_jpegs(df):
        df.drop(df.index[df["pin_id"].isin([f"p5_00{i}" for i in range(4)])], inplace=True)  # Travel smaller
        df.replace({"image": {"images/p5_010.png": "images/p5_010.jpg",
                              "images/p0_005.png": "images/p0_005.jpg"}}, inplace=True)

    edit(tiny_copy, use_jpegs)
    import_manifest(store, tiny_copy, "tiny", TINY_CONFIG, progress=False)
    assert status_of(store, "p5_010") == "kept"
    assert status_of(store, "p0_005").startswith("duplicate image")
    assert "p5_010" in status_of(store, "p0_005")


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_malformed_exif_keeps_the_image_and_its_hash(tmp_path):
    """Check a malformed EXIF block passes the image check; with no usable Orientation the
    hash is that of the pixels as stored, with a readable one that of the upright photo."""
    photo = _photo(2)
    (tmp_path / "upright.jpg").write_bytes(_jpeg(photo))
    want = inspect_image(tmp_path / "upright.jpg").dhash
    for name, (block, orientation) in malformed_exif_blocks().items():
        stored = photo if orientation == 1 else photo.transpose(STORE_FOR_ORIENTATION[orientation])
        (path := tmp_path / f"{name}.jpg").write_bytes(jpeg_with_exif_block(stored, block))
        check = inspect_image(path)
        assert check.ok, (name, check.reason)
        assert check.dhash == want, name


# ---------------------------------------------------------------- classes, splits
def test_small_classes_dropped_and_draw_is_capped_and_seeded(store, tiny_copy):
    """Check min_per_class drops a class and max_per_class draws a seeded subset."""
    edit(tiny_copy, lambda df: df.drop(df.index[(df["category"] == "Travel") & (df["pin_id"] > "p5_008")], inplace=True))
    cfg = ImportConfig(cleaning=CleaningConfig(min_per_class=10, max_per_class=20), split=SplitConfig(seed=3))
    result = import_manifest(store, tiny_copy, "tiny", cfg, progress=False)
    assert "Travel" not in result.classes and len(result.classes) == 5
    pins = store.pins("tiny")
    assert pins.groupby("category").size().eq(20).all()
    first = set(pins["pin_id"])
    import_manifest(store, tiny_copy, "tiny", cfg, replace=True, progress=False)
    assert set(store.pins("tiny")["pin_id"]) == first
    other = ImportConfig(cleaning=cfg.cleaning, split=SplitConfig(seed=4))
    import_manifest(store, tiny_copy, "tiny", other, replace=True, progress=False)
    assert set(store.pins("tiny")["pin_id"]) != first


def test_split_proportions_and_stratification():
    """Check 10 % test, then 80/20 train/val, per class, seeded."""
    labels = np.repeat(np.arange(29), 1000)
    split = stratified_split(labels, 0.1, 0.2, seed=0)
    for c in range(29):
        s = split[labels == c]
        assert (s == "test").sum() == 100 and (s == "val").sum() == 180 and (s == "train").sum() == 720
    assert (stratified_split(labels, seed=0) == split).all()
    assert (stratified_split(labels, seed=1) != split).any()


def test_every_class_in_every_split_even_when_small():
    """Check small classes still appear in train, val and test."""
    labels = np.repeat(np.arange(3), [4, 7, 11])
    split = stratified_split(labels, seed=0)
    for c in range(3):
        assert set(split[labels == c]) == {"train", "val", "test"}


def test_draw_per_class_caps():
    labels = np.array(list("aaaaabbbc"))
    keep = draw_per_class(labels, 2, seed=0)
    assert sorted(labels[keep].tolist()) == ["a", "a", "b", "b", "c"]


def test_class_too_small_for_a_split_is_refused(store, tiny_copy):
    """Check a class with 3 pins gets a clear refusal naming the option."""
    edit(tiny_copy, lambda df: df.drop(df.index[(df["category"] == "Travel") & (df["pin_id"] > "p5_002")], inplace=True))
    cfg = ImportConfig(cleaning=CleaningConfig(min_per_class=1))
    with pytest.raises(ImportFailed, match="--min-per-class"):
        import_manifest(store, tiny_copy, "tiny", cfg, progress=False)


def test_cleaning_that_leaves_nothing_names_the_step_and_option(store, tiny_copy):
    """Check the message says which step removed everything and which option to change."""
    cfg = ImportConfig(cleaning=CleaningConfig(min_per_class=500))
    with pytest.raises(ImportFailed, match=r"'small class'.*--min-per-class"):
        import_manifest(store, tiny_copy, "tiny", cfg, progress=False)
    cfg = ImportConfig(cleaning=CleaningConfig(min_words=50))
    with pytest.raises(ImportFailed, match=r"'too few words'.*--min-words"):
        import_manifest(store, tiny_copy, "tiny", cfg, progress=False)
    assert store.dataset_names() == []


# ---------------------------------------------------------------- manifest errors
def test_missing_columns_listed(tmp_path):
    path = tmp_path / "m.csv"
    pd.DataFrame({"pin_id": ["a"], "image": ["x.png"]}).to_csv(path, index=False)
    with pytest.raises(ManifestError, match="description, category"):
        read_manifest(path)


def test_conflicting_duplicate_pin_ids_refused(tiny_copy):
    edit(tiny_copy, lambda df: df.__setitem__("pin_id", df["pin_id"].replace("p0_001", "p0_002")))
    with pytest.raises(ManifestError, match="p0_002"):
        read_manifest(tiny_copy)


def test_repeated_rows_are_saves_by_several_users(tiny_store):
    """Check a pin saved by two users is one pin with two saves."""
    rows = tiny_store.manifest_rows("tiny")
    assert rows.groupby("pin_id")["user_id"].nunique().max() == 2
    assert tiny_store.pins("tiny")["pin_id"].is_unique
    saves = tiny_store.saves("tiny")
    assert len(saves) == len(rows) and saves["user_id"].nunique() == 8


@pytest.mark.parametrize("bad", ["../outside.png", "/etc/passwd", "images/../../outside.png"])
def test_paths_escaping_the_images_root_are_refused(tiny_copy, bad):
    (tiny_copy.parent.parent / "outside.png").write_bytes(b"x")
    edit(tiny_copy, lambda df: df.__setitem__("image", df["image"].where(df["pin_id"] != "p0_000", bad)))
    with pytest.raises(ManifestError, match="outside the images root"):
        read_manifest(tiny_copy)


def test_symlink_out_of_the_root_is_refused(tiny_copy, tmp_path):
    target = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(target)
    link = tiny_copy.parent / "images" / "link.png"
    link.symlink_to(target)
    edit(tiny_copy, lambda df: df.__setitem__("image", df["image"].where(df["pin_id"] != "p0_000", "images/link.png")))
    with pytest.raises(ManifestError, match="outside the images root"):
        read_manifest(tiny_copy)


def test_empty_and_non_utf8_text_dropped(store, tiny_copy):
    """Check an empty description and a Latin-1 one are dropped with a reason."""
    df = pd.read_csv(tiny_copy, dtype=str, keep_default_na=False)
    df.loc[df["pin_id"] == "p0_000", "description"] = ""
    text = df.to_csv(index=False).replace(
        df.loc[df["pin_id"] == "p0_001", "description"].iloc[0], "Caf\xe9 dog puppy kitten paw fur")
    tiny_copy.write_bytes(text.encode("latin-1"))
    import_manifest(store, tiny_copy, "tiny", TINY_CONFIG, progress=False)
    assert status_of(store, "p0_000") == "invalid text"
    assert status_of(store, "p0_001") == "invalid text"
    assert status_of(store, "p0_002") == "kept"


def test_parquet_manifest(store, tiny_copy):
    df = pd.read_csv(tiny_copy, dtype=str, keep_default_na=False)
    pq = tiny_copy.with_suffix(".parquet")
    df.to_parquet(pq)
    assert import_manifest(store, pq, "tiny", TINY_CONFIG, progress=False).n_pins == 144


def test_malformed_file_gets_a_clear_message(tmp_path):
    path = tmp_path / "m.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(ManifestError, match="could not be read"):
        read_manifest(path)


# ---------------------------------------------------------------- atomicity, replace
def test_existing_name_refused_without_replace(tiny_store, tiny_manifest):
    with pytest.raises(StoreError, match="--replace"):
        import_manifest(tiny_store, tiny_manifest, "tiny", TINY_CONFIG, progress=False)


def test_failed_write_leaves_the_store_as_it_was(tiny_store, tiny_copy, monkeypatch):
    """Check an import dying inside the store write keeps the previous dataset whole."""
    before = tiny_store.pins("tiny")
    report_before = tiny_store.import_report("tiny")
    original = Store._insert_df

    def dying(con, table, name, df):
        if table == "import_report":
            raise KeyboardInterrupt("killed")
        return original(con, table, name, df)

    monkeypatch.setattr(Store, "_insert_df", staticmethod(dying))
    edit(tiny_copy, lambda df: df.drop(df.index[df["category"] == "Travel"], inplace=True))
    with pytest.raises(KeyboardInterrupt):
        import_manifest(tiny_store, tiny_copy, "tiny", TINY_CONFIG, replace=True, progress=False)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(tiny_store.pins("tiny"), before)
    pd.testing.assert_frame_equal(tiny_store.import_report("tiny"), report_before)


def test_killed_import_process_leaves_store_unchanged(tmp_path, tiny_manifest):
    """Check a SIGKILLed import process (mid image check) leaves no dataset behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    home = tmp_path / "home"
    env = {**os.environ, "PINTEREST_MM_HOME": str(home)}
    folder = tmp_path / "big"
    make_tiny_manifest(folder, per_class=150)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pinterest_mm.cli", "import", str(folder / "manifest.csv"), "--name", "big"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 60
    while not (home / "store.duckdb").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert Store(home).dataset_names() in ([], ["big"])  # nothing half-written
    if Store(home).dataset_names() == ["big"]:
        assert len(Store(home).pins("big")) == 900
    rerun = subprocess.run(
        [sys.executable, "-m", "pinterest_mm.cli", "import", str(folder / "manifest.csv"), "--name", "big",
         "--replace", "--quiet"], env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert len(Store(home).pins("big")) == 900


# ---------------------------------------------------------------- CLI
def test_cli_import_and_datasets(tmp_path, tiny_manifest, monkeypatch, capsys):
    """Check exit statuses and the JSON listing."""
    import json

    monkeypatch.setenv("PINTEREST_MM_HOME", str(tmp_path / "home"))
    assert cli_main(["import", str(tiny_manifest), "--name", "tiny", "--min-per-class", "10", "--quiet"]) == 0
    assert "144 pins" in capsys.readouterr().out
    assert cli_main(["import", str(tiny_manifest), "--name", "tiny", "--quiet"]) == 2
    assert "--replace" in capsys.readouterr().err
    assert cli_main(["datasets", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["datasets"][0]
    assert data["pins"] == 144 and data["classes"] == 6 and data["users"] == 8
    assert data["splits"] == {"train": 108, "val": 24, "test": 12}
    assert cli_main(["import", str(tmp_path / "nope.csv"), "--name", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli_main(["import", str(tiny_manifest), "--name", "bad name;drop"]) == 2


def test_store_rejects_newer_schema_and_corrupt_files(tmp_path):
    """Check a newer schema and a truncated file get clear messages."""
    s = Store(tmp_path / "a")
    with s.connect() as con:
        con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="newer"):
        s.dataset_names()
    bad = tmp_path / "b"
    bad.mkdir()
    (bad / "store.duckdb").write_bytes(b"garbage" * 100)
    with pytest.raises(StoreError, match="truncated or corrupt"):
        Store(bad)


# ---------------------------------------------------------------- the real H&M sample
@pytest.mark.shared
@pytest.mark.skipif(not HM_DIR.exists(), reason="../shared/data/hm is absent")
def test_import_hm_section(tmp_path):
    """Check hm-section imports to 28 classes x 100 pins with users."""
    from pinterest_mm.data.sources.hm import write_hm_manifest

    manifest = write_hm_manifest(HM_DIR, "hm-section", tmp_path / "hm.csv")
    store = Store(tmp_path / "store")
    cfg = ImportConfig(cleaning=CleaningConfig(min_per_class=100, max_per_class=100))
    result = import_manifest(store, manifest, "hm-section", cfg, images_root=HM_DIR, progress=False)
    assert result.n_pins == 100 * len(result.classes)
    assert len(result.classes) >= 20
    assert result.n_users > 100
    assert result.split_counts["test"] == 10 * len(result.classes)
