"""Hostile and malformed input: uploads, descriptions, manifests, names, CSV exports."""

from __future__ import annotations

import ast
import io
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import (
    STORE_FOR_ORIENTATION, TINY_CONFIG, assert_upright, exif_jpeg, jpeg_with_exif_block,
    malformed_exif_blocks, quadrant_image, shows_upright,
)
from pinterest_mm import predict as pin_predict
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.data.manifest import ManifestError, read_manifest
from pinterest_mm.store import Store, validate_name
from pinterest_mm.ui import predict
from pinterest_mm.ui.widgets import safe_csv

from .conftest import REPO, run_cli

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest


# ----------------------------------------------------------------------------- uploads
def _encode(fmt: str, size=(48, 32), mode="RGB", **kw) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (200, 30, 60) if mode == "RGB" else 128).save(buf, fmt, **kw)
    return buf.getvalue()


VALID = {f: _encode(f) for f in ("PNG", "JPEG", "GIF", "WEBP")}


def _png_with_size(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h pixels (a decompression bomb / huge image)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _exif_rotated() -> bytes:
    im = Image.new("RGB", (40, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def _check(up: predict.Upload) -> None:
    """An upload is an RGB image, or no image with a clear one-line message; never both."""
    if up.image is None:
        assert up.message and len(up.message) < 300 and "\n" not in up.message
    else:
        assert up.image.mode == "RGB" and up.message == ""
        assert up.image.width * up.image.height <= predict.MAX_PIXELS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_never_crash(data):
    _check(predict.read_image(data))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from(sorted(VALID)), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=8),
       tail=st.binary(max_size=64))
def test_truncated_and_corrupted_images_never_crash(fmt, cut, flips, tail):
    """Valid PNG/JPEG/GIF/WebP files, cut short, bytes flipped, junk appended."""
    data = bytearray(VALID[fmt][: max(1, int(len(VALID[fmt]) * cut))])
    for pos, val in flips:
        data[min(len(data) - 1, int(pos * len(data)))] = val
    _check(predict.read_image(bytes(data) + tail))


@pytest.mark.parametrize("name, data, expect", [
    ("zero", b"", "empty"),
    ("bomb", _png_with_size(100_000, 100_000), "too many pixels"),
    ("huge", _png_with_size(8_000, 6_000), "too large"),
    ("too-many-bytes", b"\x89PNG" + b"\x00" * (predict.MAX_UPLOAD_BYTES + 1), "too large"),
    ("gif", VALID["GIF"], "Unsupported image format GIF"),
    ("html-polyglot", b"GIF89a/*<html><script>alert(1)</script>*/=1;", "not an image"),
    ("zip-polyglot", VALID["PNG"] + b"PK\x03\x04" + b"\x00" * 40, None),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "not an image"),
    ("exif-rotated", _exif_rotated(), None),
    ("cmyk-jpeg", _encode("JPEG", mode="CMYK"), None),
    ("16-bit-png", _encode("PNG", mode="I;16"), None),
    ("animated-webp", None, None),
])
def test_special_uploads(name, data, expect):
    """Check each hostile upload gives its clear message, or a (first-frame, RGB) image."""
    if name == "animated-webp":
        buf = io.BytesIO()
        frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0))]
        frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:])
        data = buf.getvalue()
    up = predict.read_image(data)
    _check(up)
    if expect is None:
        assert up.image is not None, up.message
    else:
        assert up.image is None and expect in up.message, up.message


def test_phone_mpo_jpeg_is_read_as_its_photo():
    """Check a JPEG carrying a second image (MPO: a phone's depth or gain map) is accepted as
    the photo (first image), with no "animated image" note."""
    photo, depth = Image.new("RGB", (64, 48), (200, 30, 30)), Image.new("RGB", (64, 48), (0, 0, 0))
    buf = io.BytesIO()
    photo.save(buf, "MPO", save_all=True, append_images=[depth])
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        assert im.format == "MPO" and im.n_frames == 2  # the premise
    upload = predict.read_image(buf.getvalue())
    _check(upload)
    assert upload.image is not None and upload.notes == [], (upload.message, upload.notes)
    r, g, b = upload.image.getpixel((10, 10))
    assert r > 180 and g < 60 and b < 60


@pytest.mark.parametrize("orientation", range(2, 9))
def test_exif_rotated_upload_is_upright(orientation):
    """Check a phone photo (pixels stored turned + EXIF Orientation 2-8) is read upright."""
    up = quadrant_image()
    data = exif_jpeg(up, orientation)
    with Image.open(io.BytesIO(data)) as stored:  # the premise: as stored, it is not upright
        assert not shows_upright(stored, up)
    upload = predict.read_image(data)
    _check(upload)
    assert upload.image is not None, upload.message
    assert_upright(upload.image, up)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize("name", sorted(malformed_exif_blocks()))
def test_malformed_exif_upload_still_gives_the_image(name):
    """Check a malformed EXIF block gives the image, never an error: as stored when the
    Orientation is unusable, upright when it is readable (``mistyped-tag``: Pillow's
    ``exif_transpose`` raises while rewriting the block, after turning the pixels)."""
    block, orientation = malformed_exif_blocks()[name]
    up = quadrant_image()
    stored = up if orientation == 1 else up.transpose(STORE_FOR_ORIENTATION[orientation])
    upload = predict.read_image(jpeg_with_exif_block(stored, block))
    _check(upload)
    assert upload.image is not None and upload.message == "", upload.message
    assert_upright(upload.image, up)


def test_exif_rotated_upload_is_still_checked_first():
    """Check the pixel limit and truncation are judged before any turning, as before."""
    data = exif_jpeg(quadrant_image((960, 640)), 6)
    too_big = predict.read_image(data, max_pixels=960 * 640 - 1)
    assert too_big.image is None and "too large (640×960 pixels)" in too_big.message
    cut = predict.read_image(data[: len(data) // 2])
    assert cut.image is None and "corrupt or truncated" in cut.message


TEXTS = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["<script>alert(1)</script>", "\u202eevil\u202c txt.exe", "مرحبا بالعالم حديقة",
                     "\x00\x01\x1b[31mred\x07", "x" * 50_000, "=HYPERLINK(\"http://e\")", "\ud7ff" * 10,
                     "tulip " * 10_000]),
)


class _Fake:
    """A predictor that votes by text length (or image size)."""

    def predict_proba(self, images=None, texts=None):
        n = len(images or texts)
        p = np.full((n, 3), 1 / 3, np.float32)
        return p


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_descriptions_always_predict(text):
    """Check any description is clipped, has no NUL, and gets a prediction."""
    clipped, note = pin_predict.clip_text(text)
    assert len(clipped) <= pin_predict.MAX_TEXT_CHARS and "\x00" not in clipped
    assert (note != "") == (len((text or "").replace("\x00", " ").strip()) > pin_predict.MAX_TEXT_CHARS)
    pin = pin_predict.predict_pin({"t": _Fake(), "i": _Fake()}, {"t": "text", "i": "image"},
                                  {"t": 0.5, "i": 0.5}, None, clipped)
    if clipped:
        assert pin.fused is not None and np.isclose(pin.fused.sum(), 1.0)
    else:
        assert pin.fused is None and pin.skipped["t"] == "no description given"


# ----------------------------------------------------------------------------- no HTML from users
def _py_files() -> list[Path]:
    return [REPO / "app.py", *sorted((REPO / "pages").glob("*.py")), *sorted((REPO / "pinterest_mm").rglob("*.py"))]


def test_no_page_renders_raw_html():
    """No code path turns text into HTML: no unsafe_allow_html, st.html or components.html."""
    bad = []
    for f in _py_files():
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if re.search(r"unsafe_allow_html\s*=\s*True|\bst\.html\(|components\.v1|components\.html", line):
                bad.append(f"{f.relative_to(REPO)}:{i}: {line.strip()}")
    assert not bad, bad


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory):
    """A store whose category, pin ids, users and boards are HTML and SQL."""
    from app_fixtures import add_synth_models
    from conftest import make_tiny_manifest

    folder = tmp_path_factory.mktemp("hostile")
    manifest = make_tiny_manifest(folder, per_class=12)
    df = pd.read_csv(manifest)
    html_cat, sql = "<b>Bold</b><img src=x onerror=alert(1)>", "x'); DROP TABLE pins; --"
    df.loc[df["category"] == "Animals", "category"] = html_cat
    df.loc[df["pin_id"] == "p1_000", "pin_id"] = sql
    df.loc[df["user_id"] == "u1", "user_id"] = sql
    df["board"] = "=cmd|' /C calc'!A0"
    df.loc[df.index[:3], "description"] = "<script>alert(1)</script> dog cat puppy kitten fur paw"
    df.to_csv(manifest, index=False)
    store = Store(folder / "home")
    import_manifest(store, manifest, "hostile", TINY_CONFIG.__class__(
        cleaning=TINY_CONFIG.cleaning.__class__(min_per_class=5, max_per_class=100)), progress=False)
    add_synth_models(store, "hostile")
    return folder / "home", html_cat, sql


def test_sql_and_html_round_trip_through_the_store(hostile_home):
    """Check quotes/SQL in ids, users and categories are stored verbatim, all tables intact."""
    root, html_cat, sql = hostile_home
    store = Store(root, read_only=True)
    assert html_cat in store.classes("hostile")
    pins = store.pins("hostile")
    assert sql in set(pins["pin_id"]) and len(pins) > 50
    saves = store.saves("hostile")
    assert sql in set(saves["user_id"]) and sql in set(saves["pin_id"])
    with pytest.raises(Exception, match="No dataset named"):
        store.dataset_info(sql)
    assert store.load_probs(sql, sql, sql) is None and store.get_fusion(sql, sql) is None
    assert len(Store(root, read_only=True).pins("hostile")) == len(pins)  # DROP never ran


@pytest.mark.parametrize("name", ["x'); DROP TABLE pins; --", "../escape", "a b", "", ".hidden", "-rf",
                                  "a" * 65, "name\x00", "é"])
def test_dataset_and_model_names_are_validated(name, tmp_path, tiny_manifest):
    """Check bad names are refused by the store, the CLI (exit 2) and model saving."""
    with pytest.raises(ValueError, match="Invalid"):
        validate_name(name)
    store = Store(tmp_path / "s")
    with pytest.raises(ValueError):
        store.save_model("d", name, family="other", modality="text", params={}, cv_score=None,
                         val_accuracy=0, test_accuracy=0, seconds=0, fingerprint="", probs={})
    if "\x00" not in name:
        res = run_cli(tmp_path / "s", "import", str(tiny_manifest), f"--name={name}", "--quiet")
        assert res.returncode == 2 and "Invalid dataset name" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr


def test_app_shows_html_and_sql_as_text(hostile_home, monkeypatch):
    """Check the pages run on hostile names (users page with the SQL user selected), and HTML
    from the data is only shown escaped (markdown) or as plain text, never as HTML."""
    root, html_cat, sql = hostile_home
    monkeypatch.setenv("PINTEREST_MM_HOME", str(root))
    for script, query in [("pages/1_Overview.py", {}), ("pages/5_Users.py", {"user": sql}),
                          ("pages/3_Fusion_lab.py", {}), ("pages/6_Predict.py", {})]:
        at = AppTest.from_file(str(REPO / script), default_timeout=90)
        at.query_params["dataset"] = "hostile"
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        assert not at.exception, (script, [e.message for e in at.exception])
        for md in at.markdown:
            raw = str(md.value)
            assert not re.search(r"(?<!\\)<", raw), (script, raw)  # every '<' escaped: text, not HTML
        if script.endswith("predict.py"):
            at.text_area(key="pred_text").set_value("<script>alert(1)</script> tulip garden").run()
            assert not at.exception
            assert any("<script>alert(1)</script>" in t.value for t in at.text)  # shown as text
            assert all("<script" not in str(m.value) for m in at.markdown)


# ----------------------------------------------------------------------------- manifests
def _manifest(tmp_path: Path, images: list[str]) -> Path:
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(root / "images" / "ok.png")
    df = pd.DataFrame({"pin_id": [f"p{i}" for i in range(len(images))], "image": images,
                       "description": "tulip garden seeds soil compost", "category": "Gardening"})
    df.to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"


@pytest.mark.parametrize("bad", ["images/../../x.png", "..\\..\\x.png", "file:///etc/passwd",
                                 "~/x.png", "images/linkdir/secret.png"])
def test_more_paths_escaping_the_root_are_refused(tmp_path, bad):
    """Beyond tests/test_import.py: a symlinked folder out, backslashes, URLs, ``~``."""
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (8, 8)).save(outside / "secret.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    path = _manifest(tmp_path, ["images/ok.png", bad])
    (path.parent / "images" / "linkdir").symlink_to(outside, target_is_directory=True)
    try:
        df = read_manifest(path)
    except ManifestError as exc:
        assert "outside the images root" in str(exc) or "missing" in str(exc).lower()
        return
    # not refused: a literal file name inside the root (then a missing image at import)
    root = path.parent.resolve()
    for p in df.pins["path"].dropna():
        assert Path(p).resolve().is_relative_to(root)


def test_absolute_path_inside_the_root_is_accepted(tmp_path):
    """An absolute path is fine when it stays inside the images root."""
    path = _manifest(tmp_path, [])
    path = _manifest(tmp_path, ["images/ok.png", str(path.parent / "images" / "ok.png")])
    read_manifest(path)


# ----------------------------------------------------------------------------- CSV exports
@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=5))
def test_safe_csv_never_starts_a_cell_with_a_formula(cells):
    df = pd.DataFrame({"=col": cells, "n": range(len(cells))}, index=[f"@{c}" for c in cells])
    rows = pd.read_csv(io.StringIO(safe_csv(df).decode()), dtype=str, keep_default_na=False)
    for value in [*rows.columns, *rows.to_numpy().ravel()]:
        assert not str(value).startswith(("=", "+", "-", "@", "\t", "\r")), value


def test_every_csv_download_is_guarded():
    """Every ``download_button`` in the app gets bytes from ``widgets.safe_csv`` or JSON."""
    calls = []
    for f in _py_files():
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "download_button":
                data = node.args[1] if len(node.args) > 1 else next(k.value for k in node.keywords if k.arg == "data")
                calls.append((f.name, ast.unparse(data)))
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "to_csv":
                src = ast.unparse(node)
                assert f.name in {"safecsv.py", "hm.py", "openclipart.py"}, (f.name, src)
    assert len(calls) >= 4
    for name, src in calls:
        assert src.startswith(("widgets.safe_csv(", "widgets.to_json_bytes(")), (name, src)


def test_upload_limits_agree():
    """The server's upload cap (.streamlit/config.toml), the Predict page's and the reader's agree."""
    import tomllib

    cfg = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert cfg["server"]["maxUploadSize"] * 1024 * 1024 >= predict.MAX_UPLOAD_BYTES
    assert cfg["server"]["maxUploadSize"] <= 20
    assert "max_upload_size=predict.MAX_UPLOAD_MB" in (REPO / "pages" / "6_Predict.py").read_text()
