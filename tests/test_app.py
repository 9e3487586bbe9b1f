"""The Streamlit lab through ``streamlit.testing.v1.AppTest``: every page, the live sliders,
URL state, drill-down, downloads, uploads and the empty-store path."""

from __future__ import annotations

import base64
import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from app_fixtures import DATASET, REAL_DATASET, make_test_cache, shared_cache
from conftest import (
    STORE_FOR_ORIENTATION, assert_upright, exif_jpeg, jpeg_with_exif_block, malformed_exif_blocks,
    quadrant_image, shows_upright,
)
from pinterest_mm.store import Store

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
AppTest = streamlit_testing.AppTest

REPO = Path(__file__).resolve().parents[1]
PAGES = {
    "overview": "pages/1_Overview.py",
    "models": "pages/2_Models.py",
    "fusion": "pages/3_Fusion_lab.py",
    "compare": "pages/4_Compare.py",
    "users": "pages/5_Users.py",
    "predict": "pages/6_Predict.py",
    "search": "pages/7_Search.py",
}


@contextlib.contextmanager
def serving(root):
    """``PINTEREST_MM_HOME`` points at ``root`` inside the block (module-scoped fixtures)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PINTEREST_MM_HOME", str(root))
        yield root


@pytest.fixture(scope="module")
def app_home(tmp_path_factory):
    """A store with the tiny dataset and six synthetic models; PINTEREST_MM_HOME points at it."""
    root = tmp_path_factory.mktemp("app") / "home"
    make_test_cache(root)
    with serving(root):
        yield root


def page(name: str, query: dict | None = None, timeout: float = 90) -> AppTest:
    """Run one page file (it draws its own sidebar) and return the AppTest."""
    at = AppTest.from_file(str(REPO / PAGES[name]), default_timeout=timeout)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def captions(at: AppTest) -> str:
    """All captions, markdown escapes removed."""
    return "\n".join(str(c.value) for c in at.caption).replace("\\", "")


def metric(at: AppTest, label_start: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label_start))


def figure(at: AppTest, index: int) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


# ----------------------------------------------------------------------------- every page
@pytest.mark.parametrize(
    "name, n_charts, text",
    [
        ("overview", 2, "Import report"),
        ("models", 4, "Top-k accuracy by family"),
        ("fusion", 4, "Pins in a cell"),
        ("compare", 4, "Significance vs the best single model"),
        ("users", 2, "Best predicted users"),
        ("predict", 0, "Description"),
    ],
)
def test_every_page_runs(app_home, name, n_charts, text):
    """Check each page runs without exception, names its dataset and draws its elements."""
    at = page(name)
    no_exception(at)
    assert at.title[0].value
    assert f"**{DATASET}**" in captions(at)
    assert len(at.get("plotly_chart")) >= n_charts
    shown = " ".join(str(e.value) for kind in ("markdown", "subheader", "caption") for e in at.get(kind))
    shown += " ".join(w.label for w in at.get("text_area"))
    assert text in shown


def test_app_home_page_summarizes_and_links_every_page(app_home):
    """Check app.py shows the dataset's figures and a link to each page."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    no_exception(at)
    assert at.title[0].value == "pinterest-mm lab"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Classes"] == "6" and int(metrics["Models built"]) > 0
    links = at.get("page_link")
    assert len(links) == len(PAGES)


def test_overview_shows_cleaning_and_gallery(app_home):
    """Check the before/after charts, the import report and thumbnails."""
    at = page("overview")
    titles = [figure(at, i)["layout"]["title"]["text"] for i in range(len(at.get("plotly_chart")))]
    assert any("before and after cleaning" in t for t in titles)
    assert any("Fig. 3.6" in t for t in titles)
    assert len(at.dataframe) >= 2
    assert len(at.get("image")) >= 4
    at.selectbox[1].set_value(at.selectbox[1].options[2]).run()  # another user
    no_exception(at)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_thumbnails_are_upright(tmp_path):
    """Check gallery thumbnails of phone photos (pixels stored turned + EXIF Orientation) are
    upright, also through ``draft``; a malformed EXIF block still gives a thumbnail."""
    from pinterest_mm.ui import data

    for side in (96, 960):  # 960: JPEG draft decodes at a reduced scale first
        up = quadrant_image((side, side * 2 // 3))
        for orientation in (3, 6, 8):
            (path := tmp_path / f"phone_{side}_{orientation}.jpg").write_bytes(exif_jpeg(up, orientation))
            with Image.open(path) as stored:  # the premise: as stored, it is not upright
                assert not shows_upright(stored, up, size=False)
            thumb = Image.open(io.BytesIO(data.thumbnail(str(path))))
            assert thumb.width > thumb.height and max(thumb.size) <= data.THUMB_PX
            assert_upright(thumb, up, size=False)
    up = quadrant_image()
    for name, (block, orientation) in malformed_exif_blocks().items():
        stored = up if orientation == 1 else up.transpose(STORE_FOR_ORIENTATION[orientation])
        (path := tmp_path / f"{name}.jpg").write_bytes(jpeg_with_exif_block(stored, block))
        raw = data.thumbnail(str(path))
        assert raw is not None, name
        assert_upright(Image.open(io.BytesIO(raw)), up, size=False)


# ----------------------------------------------------------------------------- fusion lab
def test_l_slider_changes_accuracy_weights_and_url(app_home):
    """Check moving the MM l slider re-weights, re-scores and lands in the URL."""
    at = page("fusion")
    at.slider(key="w_l").set_value(0.0).run()
    no_exception(at)
    w0 = figure(at, 2)  # top-k, weights: after the grid chart
    acc0, topk0 = metric(at, "Fusion accuracy"), figure(at, 1)
    at.slider(key="w_l").set_value(20.0).run()
    no_exception(at)
    assert at.query_params["l"] in ("20", ["20"])
    assert figure(at, 2) != w0  # the weights changed
    assert metric(at, "Fusion accuracy") != acc0 or figure(at, 1) != topk0


def test_a_slider_move_fuses_once(app_home, monkeypatch):
    """Check one l-slider move fuses the selection once and the confusion matrix shows the
    counts of that fusion pass (no second fusion, no recount)."""
    from pinterest_mm.fusion.live import FusionStack

    at = page("fusion")
    at.radio(key="w_norm").set_value("none").run()
    passes = []
    fuse_block = FusionStack._fuse_block
    monkeypatch.setattr(FusionStack, "_fuse_block",
                        lambda self, w, i: passes.append((id(self), i)) or fuse_block(self, w, i))
    at.slider(key="w_l").set_value(7.0).run()
    no_exception(at)
    assert passes and len(passes) == len(set(passes))  # each block of the stack fused once
    z = next(f for f in (figure(at, i) for i in range(len(at.get("plotly_chart"))))
             if "Confusion" in f["layout"]["title"]["text"])["data"][0]["z"]
    cm = np.frombuffer(base64.b64decode(z["bdata"]), z["dtype"]).reshape(6, 6) if isinstance(z, dict) else np.array(z)
    n_test = (Store(app_home, read_only=True).pins(DATASET)["split"] == "test").sum()
    assert cm.sum() == n_test and cm.trace() / n_test == pytest.approx(float(metric(at, "Fusion accuracy")), abs=1e-3)


def test_lambda_slider_and_method_switch(app_home):
    """Check lambda fusion: the slider changes the fusion, the URL keeps the pair."""
    at = page("fusion")
    at.selectbox(key="w_method").set_value("lambda").run()
    no_exception(at)
    at.slider(key="w_lambda").set_value(1.0).run()
    acc1 = metric(at, "Fusion accuracy")
    at.slider(key="w_lambda").set_value(0.0).run()
    no_exception(at)
    assert at.query_params["method"] in ("lambda", ["lambda"])
    assert at.query_params["lambda"] in ("0", ["0"])
    assert "image_model" in at.query_params
    assert acc1 and metric(at, "Fusion accuracy")
    at.selectbox(key="w_method").set_value("equal").run()
    no_exception(at)
    assert "settings chosen on validation" in captions(at)


def test_url_reopens_the_same_view(app_home):
    """Check a copied link (query parameters) restores method, lambda, split and models."""
    at = page("fusion", {"dataset": DATASET, "method": "mm", "l": "3.5", "split": "val",
                         "models": "synth-img-a,synth-bert"})
    no_exception(at)
    assert at.slider(key="w_l").value == 3.5
    assert at.multiselect[0].value == ["synth-img-a", "synth-bert"]
    assert "split **val**" in captions(at)
    at = page("fusion", {"method": "lambda", "lambda": "0.3", "l": "garbage"})
    no_exception(at)
    assert at.slider(key="w_lambda").value == 0.3


def test_confusion_cell_drill_down_with_selectboxes(app_home):
    """Check choosing a (true, predicted) cell lists those pins with votes."""
    at = page("fusion")
    at.radio(key="w_norm").set_value("none").run()
    at.selectbox(key="w_cell_true").set_value("Animals").run()
    at.selectbox(key="w_cell_pred").set_value("Animals").run()
    no_exception(at)
    text = captions(at)
    assert "are of class Animals and predicted Animals" in text
    assert "fused:" in text and "synth-bert:" in text


def test_learned_method_is_behind_a_button(app_home):
    """Check a learned method waits for its button and then reports or runs cleanly."""
    at = page("fusion")
    at.selectbox(key="w_method").set_value("stacking").run()
    no_exception(at)
    assert not [m for m in at.metric if m.label.startswith("Fusion accuracy")]  # not fitted yet
    buttons = [b for b in at.button if b.label.startswith("Fit")]
    assert buttons
    buttons[0].click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]  # the page shows a method's failure as an error
    assert 0 < float(metric(at, "Fusion accuracy")) <= 1
    assert "settings chosen on validation: C = " in captions(at)


# ----------------------------------------------------------------------------- compare
def test_compare_buttons_and_downloads(app_home):
    """Check learned fusions and the thesis tables run on demand; CSV/JSON downloads exist."""
    at = page("compare")
    no_exception(at)
    assert len(at.get("download_button")) == 3
    at.button[0].click().run()  # the learned fusions
    no_exception(at)
    thesis = [b for b in at.button if b.label.startswith("Reproduce")]
    assert len(thesis) == 1
    thesis[0].click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert any("claim" in str(df.value.columns.tolist()) for df in at.dataframe)


def test_report_and_compare_page_name_the_same_best_model_and_pairs(app_home, capsys):
    """Check ``report --thesis --json``, its text, the Compare page and its JSON download apply one
    definition of the best single model, the lambda / feature-cross pairs and the MM selection."""
    from pinterest_mm.cli import main

    assert main(["report", DATASET, "--thesis", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    defs = rep["definitions"]
    assert defs["best_single"] and defs["lambda_pair"] and defs["mm_models"]
    assert rep["best_single"]["model"] == defs["best_single"] == rep["models"][0]["name"]
    fusions = {f["method"]: f for f in rep["fusions"] if "error" not in f}
    assert [fusions["lambda"]["chosen"]["image_model"], fusions["lambda"]["chosen"]["text_model"]] == defs["lambda_pair"]
    assert fusions["best_single"]["chosen"]["model"] in defs["mm_models"]
    assert fusions["ensemble"]["recommended"] and fusions["ensemble"]["test_accuracy_ci"]
    assert main(["report", DATASET, "--thesis"]) == 0
    text = capsys.readouterr().out
    at = page("compare")
    no_exception(at)
    shown = captions(at)
    from pinterest_mm.compare import definition_lines

    for line in definition_lines(defs):
        assert line in text and line in shown
    assert f"best single model by validation accuracy (ties: name): {defs['best_single']}" in shown
    info = next(str(i.value) for i in at.info if "Recommended by validation: **ensemble**" in str(i.value))
    ens = fusions["ensemble"]
    from pinterest_mm.outputs import load_outputs
    from pinterest_mm.ui.results import default_config

    out = load_outputs(Store(app_home, read_only=True), DATASET)
    assert default_config(out, "ensemble") == {}  # every built model, as the report
    assert default_config(out, "equal")["models"] == tuple(defs["mm_models"])
    assert f"test {ens['test_accuracy']:.3f} [{ens['test_accuracy_ci'][0]:.2f}, {ens['test_accuracy_ci'][1]:.2f}]" in info
    n_test = rep["n"]["test"]
    assert n_test < 200 and any(f"{n_test} test pins" in str(w.value) for w in at.warning)
    assert f"WARNING: Small test set: {n_test} test pins" in text
    methods_fig = figure(at, 0)
    assert all(t.get("error_y", {}).get("arrayminus") for t in methods_fig["data"])
    models_at = page("models")
    no_exception(models_at)
    assert f"best single model by validation accuracy (ties: name): **{defs['best_single']}**" in captions(models_at)
    assert all(t.get("error_y", {}).get("array") for t in figure(models_at, 0)["data"])


def test_fusion_text_says_which_models_the_ensemble_chooses_from():
    from pinterest_mm.ui.state import Setting

    assert Setting("d", method="ensemble").fusion_text() == "ensemble (settings chosen on validation; models: every built model)"
    assert Setting("d", method="equal").fusion_text().endswith("models: thesis selection)")
    assert Setting("d", method="ensemble", models=("a", "b")).fusion_text().endswith("models: a, b)")


def test_safe_csv_neutralizes_formulas():
    """Check CSV cells starting with = + - @ are prefixed with a quote."""
    from pinterest_mm.ui.widgets import safe_csv

    df = pd.DataFrame({"a": ["=1+1", "+cmd", "-2", "@SUM(A1)", "fine"], "b": [1, -2, 3, 4, 5]})
    text = safe_csv(df).decode()
    rows = pd.read_csv(io.StringIO(text))
    assert rows["a"].tolist() == ["'=1+1", "'+cmd", "'-2", "'@SUM(A1)", "fine"]
    assert rows["b"].tolist() == [1, -2, 3, 4, 5]


# ----------------------------------------------------------------------------- users
def test_users_page_profiles(app_home):
    """Check user metrics, the profile chart and another user's pins."""
    at = page("users")
    no_exception(at)
    assert metric(at, "Users")
    users = at.selectbox[-1].options
    at.selectbox[-1].set_value(users[-1]).run()
    no_exception(at)
    assert any("true vs predicted" in figure(at, i)["layout"]["title"]["text"]
               for i in range(len(at.get("plotly_chart"))))
    next(r for r in at.radio if r.label == "Predicted profile").set_value("top1").run()
    no_exception(at)
    assert metric(at, "Best F1, fused + history") and metric(at, "History weight a")
    assert any(figure(at, i)["layout"]["title"]["text"].startswith("Top-K interests")
               for i in range(len(at.get("plotly_chart"))))


# ----------------------------------------------------------------------------- predict
def _png(mode="RGB", size=(64, 64), fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 120 if mode in ("L", "CMYK") else (200, 40, 40)).save(buf, fmt, **kw)
    return buf.getvalue()


def _animated() -> bytes:
    buf = io.BytesIO()
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:])
    return buf.getvalue()


@pytest.mark.parametrize(
    "name, content, ok, message",
    [
        ("empty.png", b"", False, "empty"),
        ("text.png", b"this is not an image at all", False, "not an image"),
        ("trunc.png", _png(size=(200, 200))[:300], False, "corrupt or truncated"),
        ("cmyk.jpg", _png("CMYK", fmt="JPEG"), True, ""),
        ("anim.webp", _animated(), True, ""),
        ("pal.png", _png("P"), True, ""),
        ("gif.png", _png(fmt="GIF"), False, "Unsupported image format"),
    ],
)
def test_read_image_handles_bad_uploads(name, content, ok, message):
    """Check bad uploads give a clear message and odd but valid ones an RGB image."""
    from pinterest_mm.ui.predict import read_image

    up = read_image(content)
    assert (up.image is not None) == ok
    assert message in up.message
    if ok:
        assert up.image.mode == "RGB"


def test_read_image_refuses_huge_files():
    """Check the byte and pixel limits."""
    from pinterest_mm.ui.predict import read_image

    assert "too large" in read_image(_png(), max_bytes=100).message
    assert "too large" in read_image(_png(size=(300, 300)), max_pixels=10_000).message


@pytest.mark.parametrize(
    "upload, text",
    [
        (("x.png", b"", "image/png"), ""),
        (("x.png", b"GIF89a garbage", "image/png"), ""),
        (None, "x" * 50_000),
        (None, "🍕🎉 ünïcödé 日本語のレシピ ="),
        (("x.webp", _animated(), "image/webp"), "<script>alert(1)</script> **bold**"),
    ],
)
def test_predict_page_never_shows_a_traceback(app_home, upload, text):
    """Check odd uploads and texts give a message or a prediction, never an exception."""
    at = AppTest.from_file(str(REPO / PAGES["predict"]), default_timeout=90).run()
    if upload is not None:
        at.file_uploader[0].set_value(upload)
    if text:
        at.text_area(key="pred_text").input(text)
    at.run()
    no_exception(at)
    assert at.error or at.warning or at.info or at.success


@pytest.fixture(scope="module")
def real_home(tmp_path_factory):
    """The synthetic store plus ``tiny-real`` with three real, quickly built models (~30 s)."""
    root, has_real = shared_cache(tmp_path_factory)
    if not has_real:
        pytest.skip("real models cannot be built here")
    with serving(root):
        yield root


@pytest.mark.slow
def test_predict_with_real_models(real_home):
    """Check an uploaded pin gets each model's vote and a fused prediction; text alone too."""
    from conftest import TINY_CLASSES, draw_pin_image

    color, shape, _ = TINY_CLASSES["Sports"]
    buf = io.BytesIO()
    draw_pin_image(color, shape, np.random.default_rng(1)).save(buf, "PNG")
    at = AppTest.from_file(str(REPO / PAGES["predict"]), default_timeout=180)
    at.query_params["dataset"] = REAL_DATASET
    at.run()
    at.file_uploader[0].set_value(("pin.png", buf.getvalue(), "image/png"))
    at.run()
    no_exception(at)
    assert at.success and at.success[0].value.startswith("Fused prediction")
    assert "effnet-lite0" in captions(at)
    at.text_area(key="pred_text").input("football team match at the stadium").run()
    no_exception(at)
    assert "Weights used" in captions(at) and "glove-6b-50" in captions(at)
    at.file_uploader[0].set_value(None)
    at.run()
    no_exception(at)
    assert at.success  # text alone still predicts


# ----------------------------------------------------------------------------- empty stores
def test_empty_store_shows_how_to_import(tmp_path, monkeypatch):
    """Check an empty store explains the import commands instead of failing."""
    monkeypatch.setenv("PINTEREST_MM_HOME", str(tmp_path / "empty"))
    for name in PAGES:
        at = page(name)
        no_exception(at)
        assert at.info and "No dataset has been imported" in at.info[0].value
        assert "pinterest-mm import" in at.code[0].value


def test_dataset_without_models_shows_build_command(tiny_store, monkeypatch):
    """Check model pages ask for a build when nothing is built; Overview still works."""
    monkeypatch.setenv("PINTEREST_MM_HOME", str(tiny_store.root))
    at = page("fusion")
    no_exception(at)
    assert "pinterest-mm build tiny" in at.code[0].value
    at = page("overview")
    no_exception(at)
    assert len(at.get("plotly_chart")) >= 2
