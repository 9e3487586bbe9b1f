"""Hostile files and manifests at import: nothing hangs, exhausts memory or echoes junk.

Each test builds its attack from the tiny generated dataset: an image path that is a FIFO,
a sparse 5 GiB "JPEG", a large manifest whose pins share few images, category names that
differ only in Unicode normalization or case, a Parquet file with non-UTF-8 bytes, and
files that are no CSV at all (ZIP, gzip, UTF-16) or whose header holds terminal escapes.
Imports that could hang or eat memory run in a child process under a timeout (and an
address-space limit), so a regression fails instead of stalling the suite.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import textwrap
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TINY_CONFIG
from pinterest_mm.cli import main as cli_main
from pinterest_mm.config import CleaningConfig, ImportConfig
from pinterest_mm.data import importer
from pinterest_mm.data.clean import duplicate_groups, duplicate_keepers, inspect_image
from pinterest_mm.data.importer import PHASES, format_report, import_manifest
from pinterest_mm.data.manifest import ManifestError, read_manifest
from pinterest_mm.data.printable import printable
from pinterest_mm.store import Store

from manifest_copy import copy_tiny, edit

from .conftest import REPO, run_cli

CHILD_TIMEOUT = 240  # seconds: a hang fails the test instead of stalling the suite


@pytest.fixture
def data(tmp_path, tiny_manifest) -> Path:
    """A private, editable copy of the tiny dataset; its manifest."""
    return copy_tiny(tmp_path, tiny_manifest)


def point_pin_at(manifest: Path, pin_id: str, image: str) -> None:
    edit(manifest, lambda df: df.__setitem__("image", df["image"].where(df["pin_id"] != pin_id, image)))


def status_of(store: Store, name: str, pin_id: str) -> str:
    rows = store.manifest_rows(name)
    return rows.loc[rows["pin_id"] == pin_id, "status"].iloc[0]


def shows_cleanly(message: str, limit: int = 1500) -> bool:
    """A message a terminal can print as is: no control or format characters, not huge."""
    return all(ch.isprintable() or ch == "\n" for ch in message) and len(message) < limit


# ------------------------------------------------------------------ 5: a FIFO as an image
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifo_image_is_a_bad_image_and_never_hangs(tmp_path, data):
    """A FIFO named like an image: the import ends quickly, that pin is a bad image."""
    os.mkfifo(data.parent / "images" / "pipe.jpg")
    point_pin_at(data, "p0_000", "images/pipe.jpg")
    home = tmp_path / "home"
    try:
        done = run_cli(home, "import", str(data), "--name", "tiny", "--min-per-class", "10",
                       "--quiet", timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the import hung on a FIFO for {CHILD_TIMEOUT} s")
    assert done.returncode == 0, done.stderr
    assert status_of(Store(home), "tiny", "p0_000").startswith("bad image: not a regular file")
    assert status_of(Store(home), "tiny", "p0_001") == "kept"
    os.mkfifo(tmp_path / "pipe.csv")  # the manifest itself a FIFO: refused, not read
    try:
        done = run_cli(home, "import", str(tmp_path / "pipe.csv"), "--name", "x", timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the import hung on a FIFO manifest for {CHILD_TIMEOUT} s")
    assert done.returncode == 2 and "is not a regular file" in done.stderr


def test_folder_named_like_an_image_is_not_a_regular_file(tmp_path):
    (tmp_path / "dir.jpg").mkdir()
    check = inspect_image(tmp_path / "dir.jpg")
    assert not check.ok and check.reason.startswith("not a regular file")


# ------------------------------------------------------------------ 6: per-image byte cap
SPARSE_IMPORT = textwrap.dedent("""
    import resource, sys
    from pinterest_mm.cli import main
    import pinterest_mm.data.importer, pinterest_mm.store  # the heavy imports, before the limit
    vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + 2 * 2**30, resource.RLIM_INFINITY))
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_sparse_huge_image_is_refused_unread(tmp_path, data):
    """A sparse 5 GiB file named .jpg is refused as too large; the child's address space is
    capped 2 GiB above what it holds after imports, so reading the file would fail."""
    huge = data.parent / "images" / "huge.jpg"
    with open(huge, "wb") as f:
        f.truncate(5 << 30)
    point_pin_at(data, "p1_000", "images/huge.jpg")
    home = tmp_path / "home"
    env = dict(os.environ, PINTEREST_MM_HOME=str(home), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    try:
        done = subprocess.run(
            [sys.executable, "-c", SPARSE_IMPORT, "import", str(data), "--name", "tiny",
             "--min-per-class", "10", "--quiet"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the import of a sparse 5 GiB image ran over {CHILD_TIMEOUT} s")
    assert done.returncode == 0, done.stderr[-2000:]
    status = status_of(Store(home), "tiny", "p1_000")
    assert status.startswith("bad image: image file too large") and "5,120 MiB" in status


def test_byte_cap_is_a_setting(tmp_path, data):
    """Files over ``max_image_bytes`` are bad images; the cap is exact to the byte."""
    sizes = {p.stem: p.stat().st_size for p in (data.parent / "images").glob("*.png")}
    largest = max(sizes, key=sizes.get)
    path = data.parent / "images" / f"{largest}.png"
    cap = sizes[largest] - 1
    assert inspect_image(path, max_bytes=cap + 1).ok
    check = inspect_image(path, max_bytes=cap)
    assert not check.ok and check.reason.startswith("image file too large") and check.sha1 == ""
    config = ImportConfig(cleaning=CleaningConfig(min_per_class=10, max_per_class=100, max_image_bytes=cap))
    store = Store(tmp_path / "store")
    result = import_manifest(store, data, "tiny", config, progress=False)
    assert result.n_pins == 144 - sum(s > cap for s in sizes.values())
    assert status_of(store, "tiny", largest).startswith("bad image: image file too large")


# ------------------------------------------------------------------ 7: duplicates at scale
def old_duplicate_drops(hashes, categories, pin_ids, max_distance):
    """The pre-vectorized loop, verbatim in meaning: keeper per group, others dropped."""
    sizes = pd.Series(categories).map(pd.Series(categories).value_counts())
    drop = [False] * len(hashes)
    reasons = [""] * len(hashes)
    for group in duplicate_groups(list(hashes), max_distance):
        keeper = min(group, key=lambda i: (sizes.iloc[i], pin_ids[i]))
        for i in group:
            if i != keeper:
                drop[i] = True
                reasons[i] = f"duplicate of pin {pin_ids[keeper]}"
    return drop, reasons


@pytest.mark.parametrize("max_distance", [0, 3])
@pytest.mark.parametrize("seed", range(5))
def test_vectorized_duplicates_match_the_old_loop(seed, max_distance):
    rng = np.random.default_rng(seed)
    n = 300
    base = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(20)]
    hashes = []
    for k in rng.integers(0, len(base), n):
        h = bytearray.fromhex(base[k])
        if rng.random() < 0.3:  # a near copy: one or two bits off
            for bit in rng.integers(0, 256, rng.integers(1, 3)):
                h[bit // 8] ^= 1 << (bit % 8)
        hashes.append(h.hex())
    categories = [f"c{c}" for c in rng.integers(0, 6, n)]
    pin_ids = [f"p{i}" for i in rng.permutation(n)]
    sizes = pd.Series(categories).map(pd.Series(categories).value_counts()).to_numpy()
    keepers = duplicate_keepers(hashes, sizes, pin_ids, max_distance)
    drop, reasons = old_duplicate_drops(hashes, categories, pin_ids, max_distance)
    assert (keepers != np.arange(n)).tolist() == drop
    assert [f"duplicate of pin {pin_ids[k]}" if d else "" for k, d in zip(keepers, drop)] == reasons
    assert sum(drop) > n // 2  # the case has real groups


def test_shared_images_import_like_the_old_loop_with_progress(tmp_path, data, monkeypatch, capsys):
    """Many pins share few image files, across categories of different sizes: each file is
    checked once, the drops and their reasons equal the old loop's, and every phase of the
    import is announced on the progress bar."""
    images = sorted(p.name for p in (data.parent / "images").glob("*.png"))[:40]

    def share(df: pd.DataFrame) -> None:
        ci, j = df["pin_id"].str[1].astype(int), df["pin_id"].str[-3:].astype(int)
        df["image"] = [f"images/{images[(c * 7 + k) % 40]}" for c, k in zip(ci, j)]
        df.drop(df.index[j >= 10 + 2 * ci], inplace=True)  # categories of 10, 12, ... 20 pins

    edit(data, share)
    calls = []
    real = importer.inspect_image
    monkeypatch.setattr(importer, "inspect_image", lambda p, *a: calls.append(p) or real(p, *a))
    config = ImportConfig(cleaning=CleaningConfig(min_per_class=4, max_per_class=100))
    store = Store(tmp_path / "store")
    import_manifest(store, data, "shared", config, progress=True)
    assert len(calls) == len(set(calls)) == 40
    err = capsys.readouterr().err
    for phase in PHASES:
        assert f"import: {phase}" in err
    assert "checking images" in err
    pins = read_manifest(data).pins
    drop, reasons = old_duplicate_drops(
        [real(Path(p)).dhash for p in pins["path"]], pins["category"].tolist(), pins["pin_id"].tolist(), 0)
    rows = store.manifest_rows("shared").drop_duplicates("pin_id").set_index("pin_id")["status"]
    for pin_id, dropped, reason in zip(pins["pin_id"], drop, reasons):
        if dropped:
            assert rows[pin_id] == f"duplicate image: {reason}"
        else:
            assert not rows[pin_id].startswith("duplicate image")


# ------------------------------------------------------------------ 9: category names
def test_nfc_and_nfd_spellings_are_one_class(tmp_path, data):
    nfc = "Caf\u00e9 and d\u00e9cor"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    edit(data, lambda df: df.__setitem__("category", df.apply(
        lambda r: (nfc if int(r["pin_id"][-3:]) % 2 else nfd) if r["category"] == "Animals" else r["category"], axis=1)))
    store = Store(tmp_path / "store")
    result = import_manifest(store, data, "tiny", TINY_CONFIG, progress=False)
    assert nfc in result.classes and nfd not in result.classes and len(result.classes) == 6
    assert (store.pins("tiny")["category"] == nfc).sum() == 24
    assert "1 name(s) normalized to Unicode NFC" in format_report(result.report)


def _gardening_in_two_cases(df: pd.DataFrame) -> None:
    lower = (df["category"] == "Gardening") & (df["pin_id"].str[-3:].astype(int) < 10)
    df.loc[lower, "category"] = "gardening"


def test_case_variants_are_reported_and_merged_on_request(tmp_path, data, monkeypatch, capsys):
    edit(data, _gardening_in_two_cases)
    store = Store(tmp_path / "store")
    apart = import_manifest(store, data, "apart", TINY_CONFIG, progress=False)
    assert {"Gardening", "gardening"} <= set(apart.classes)
    text = format_report(apart.report)
    assert "WARNING" in text and "'Gardening' / 'gardening'" in text and "--merge-case-variants" in text

    monkeypatch.setenv("PINTEREST_MM_HOME", str(tmp_path / "home"))
    assert cli_main(["import", str(data), "--name", "merged", "--min-per-class", "10", "--quiet",
                     "--merge-case-variants"]) == 0
    out = capsys.readouterr().out
    assert "case variants merged into the first: 'Gardening' / 'gardening'" in out
    merged = Store(tmp_path / "home")
    pins = merged.pins("merged")
    assert (pins["category"] == "Gardening").sum() == 24 and not (pins["category"] == "gardening").any()
    assert merged.dataset_info("merged")["config"]["cleaning"]["merge_case_variants"] is True


# ------------------------------------------------------------------ 10: Parquet and UTF-8
def _parquet_with_bad_description(df: pd.DataFrame, path: Path, as_string: bool) -> None:
    """Write ``df`` as Parquet with pin p0_001's description as the bytes b'Caf\\xe9 ...'."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = [d.encode() if pid != "p0_001" else b"Caf\xe9 dog puppy kitten paw fur"
           for pid, d in zip(df["pin_id"], df["description"])]
    column = pa.array(raw, pa.binary())
    if as_string:  # a string column holding invalid UTF-8, as some writers produce
        column = pa.Array.from_buffers(pa.string(), len(column), column.buffers())
    table = pa.Table.from_pandas(df.drop(columns="description"), preserve_index=False)
    pq.write_table(table.append_column("description", column), path)


@pytest.mark.parametrize("as_string", [False, True], ids=["binary", "string"])
def test_parquet_with_one_non_utf8_value_loses_only_that_pin(tmp_path, data, as_string):
    """One non-UTF-8 description costs its pin, as in a CSV; numbers and nulls read as text."""
    df = pd.read_csv(data, dtype=str, keep_default_na=False)
    path = data.with_suffix(".parquet")
    _parquet_with_bad_description(df.assign(board=None, n=np.arange(len(df))), path, as_string)
    store = Store(tmp_path / "store")
    result = import_manifest(store, path, "tiny", TINY_CONFIG, progress=False)
    assert result.n_pins == 143
    assert status_of(store, "tiny", "p0_001") == "invalid text"
    assert (store.manifest_rows("tiny")["board"] == "").all()
    # the CSV of the same content is treated alike
    text = df.to_csv(index=False).replace(
        df.loc[df["pin_id"] == "p0_001", "description"].iloc[0], "Caf\xe9 dog puppy kitten paw fur")
    data.write_bytes(text.encode("latin-1"))
    csv_store = Store(tmp_path / "csv")
    assert import_manifest(csv_store, data, "tiny", TINY_CONFIG, progress=False).n_pins == 143
    assert status_of(csv_store, "tiny", "p0_001") == "invalid text"


# ------------------------------------------------------------------ 11: messages echo no junk
ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[H"


def _header_with_escapes(path: Path) -> None:
    path.write_text(f"{ESCAPES}pin_id,image,description,{'x' * 5000}\np1,a.png,text,Cat\n", encoding="utf-8")


def _zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook>\x1b[2J</workbook>" * 20)


def _utf16(path: Path, encoding: str) -> None:
    path.write_bytes("pin_id,image,description,category\np1,a.png,some text,Cat\n".encode(encoding))


NOT_CSV = {
    "zip": (_zip, "ZIP archive"),
    "gzip": (lambda p: p.write_bytes(gzip.compress(b"pin_id,image\n" * 50)), "gzip-compressed"),
    "utf16-bom": (lambda p: _utf16(p, "utf-16"), "UTF-16"),
    "utf16-le": (lambda p: _utf16(p, "utf-16-le"), "UTF-16"),
    "xls": (lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4), "Excel .xls"),
}


@pytest.mark.parametrize("kind", sorted(NOT_CSV))
def test_a_file_that_is_no_csv_gets_its_likely_cause(tmp_path, kind):
    make, cause = NOT_CSV[kind]
    path = tmp_path / "manifest.csv"
    make(path)
    with pytest.raises(ManifestError) as err:
        read_manifest(path)
    message = str(err.value)
    assert cause in message and "not" in message and shows_cleanly(message)


def test_latin1_header_names_the_encoding(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_bytes("pin_id,image,d\xe9scription,cat\xe9gorie\np1,a.png,text,Cat\n".encode("latin-1"))
    with pytest.raises(ManifestError, match="not valid UTF-8: re-save it as 'CSV UTF-8'") as err:
        read_manifest(path)
    assert shows_cleanly(str(err.value))


def test_terminal_escapes_in_a_header_are_shown_escaped(tmp_path):
    path = tmp_path / "manifest.csv"
    _header_with_escapes(path)
    with pytest.raises(ManifestError) as err:
        read_manifest(path)
    message = str(err.value)
    assert shows_cleanly(message) and "\\x1b]0;owned\\x07" in message and "x" * 100 not in message
    done = run_cli(tmp_path / "home", "import", str(path), "--name", "x", "--quiet", timeout=CHILD_TIMEOUT)
    assert done.returncode == 2 and "\x1b" not in done.stderr and "\x07" not in done.stderr
    assert "lacks the required column(s) pin_id, category" in done.stderr


def test_long_pin_ids_and_paths_are_cut_in_messages(tmp_path):
    path = tmp_path / "manifest.csv"
    pd.DataFrame({"pin_id": [ESCAPES + "p" * 3000] * 2, "image": ["a.png", "b.png"],
                  "description": ["t", "t"], "category": ["c", "c"]}).to_csv(path, index=False)
    with pytest.raises(ManifestError, match="different image") as err:
        read_manifest(path)
    assert shows_cleanly(str(err.value), 800) and "\\x1b" in str(err.value)
    pd.DataFrame({"pin_id": ["p"], "image": ["../" + ESCAPES + "x" * 3000], "description": ["t"],
                  "category": ["c"]}).to_csv(path, index=False)
    with pytest.raises(ManifestError, match="outside the images root") as err:
        read_manifest(path)
    assert shows_cleanly(str(err.value), 800)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(head=st.binary(max_size=600), suffix=st.sampled_from([".csv", ".tsv", ".parquet"]))
def test_any_bytes_give_a_manifest_or_a_clean_message(tmp_path, head, suffix):
    path = tmp_path / f"m{suffix}"
    path.write_bytes(head)
    try:
        read_manifest(path)
    except ManifestError as exc:
        assert shows_cleanly(str(exc)), repr(str(exc))


@pytest.mark.parametrize("value, shown", [
    ("plain", "plain"),
    ("\x1b[2J", "\\x1b[2J"),
    ("a\u202eb", "a\\u202eb"),
    ("x" * 100, "x" * 60 + "…"),
    (b"\xff\x00ok", "\ufffd\\x00ok"),
])
def test_printable(value, shown):
    assert printable(value) == shown
