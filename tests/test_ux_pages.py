"""Rough edges of the pages (AppTest): the Fusion lab's knobs follow the model selection."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from app_fixtures import DATASET, make_test_cache

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
AppTest = streamlit_testing.AppTest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ux_home(tmp_path_factory):
    """The tiny dataset with six synthetic models; PINTEREST_MM_HOME points at it."""
    root = tmp_path_factory.mktemp("ux") / "home"
    store = make_test_cache(root)
    rows = store.models(DATASET).set_index("model")
    curves = {"synth-glove": {"C": 0.01, "cv_scores": {"0.1": 0.5, "0.01": 0.6, "0.001": 0.4, "0.0001": 0.3}},
              "synth-bert": {"best_epoch": 2, "epoch_val_accuracy": [0.4, 0.55, 0.5],
                             "epoch_train_loss": [1.7, 1.1, 0.8]}}
    for name, params in curves.items():  # the training records of a real build, same probabilities
        r = rows.loc[name]
        store.save_model(DATASET, name, family=r["family"], modality=r["modality"], params=params,
                         cv_score=r["cv_score"], val_accuracy=r["val_accuracy"], test_accuracy=r["test_accuracy"],
                         seconds=r["seconds"], fingerprint="synthetic-curves",
                         probs={sp: store.load_probs(DATASET, name, sp) for sp in ("train", "val", "test")})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PINTEREST_MM_HOME", str(root))
        yield root


def page(path: str) -> AppTest:
    return AppTest.from_file(str(REPO / path), default_timeout=120).run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.message for e in at.exception]
    return at


def captions(at: AppTest) -> str:
    return "\n".join(str(c.value) for c in at.caption).replace("\\", "")


def metric(at: AppTest, label_start: str) -> float:
    return float(next(m.value for m in at.metric if m.label.startswith(label_start)))


def test_l_follows_the_model_selection_until_the_user_moves_it(ux_home):
    """The l chosen on validation differs per selection (thesis selection 1, these 5 and 4)."""
    from pinterest_mm import Lab

    ds = Lab().dataset(DATASET)
    at = ok(page("pages/3_Fusion_lab.py"))
    assert at.slider(key="w_l").value == 1.0
    chosen5 = ["synth-bert", "synth-w2v", "synth-tfidf"]
    ok(at.multiselect[0].set_value(chosen5).run())
    assert at.slider(key="w_l").value == 5.0
    assert "l" not in at.query_params  # still "chosen on validation"
    assert "l = 5 was chosen on validation" in captions(at) and "(current)" in captions(at)
    ev = ds.evaluate(ds.fuse("mm", models=tuple(chosen5)), split="test")
    assert metric(at, "Fusion accuracy") == pytest.approx(ev.accuracy, abs=1e-3)  # the headline
    ok(at.slider(key="w_l").set_value(7.0).run())  # the user's value holds for this selection
    assert at.query_params["l"] in ("7", ["7"]) and at.slider(key="w_l").value == 7.0
    ok(at.radio(key="w_norm").set_value("none").run())
    assert at.slider(key="w_l").value == 7.0
    ok(at.multiselect[0].set_value(["synth-bert", "synth-img-b", "synth-tfidf"]).run())
    assert at.slider(key="w_l").value == 4.0 and "l" not in at.query_params


def test_lambda_follows_the_pair(ux_home):
    at = ok(page("pages/3_Fusion_lab.py"))
    ok(at.selectbox(key="w_method").set_value("lambda").run())
    ok(at.selectbox(key="w_image_model").set_value("synth-img-a").run())
    ok(at.selectbox(key="w_text_model").set_value("synth-glove").run())
    assert at.slider(key="w_lambda").value == 0.0
    ok(at.selectbox(key="w_text_model").set_value("synth-tfidf").run())
    assert at.slider(key="w_lambda").value == 0.7 and "lambda" not in at.query_params


def test_a_link_keeps_its_l_for_its_models(ux_home):
    at = AppTest.from_file(str(REPO / "pages/3_Fusion_lab.py"), default_timeout=120)
    at.query_params.update({"dataset": DATASET, "l": "3.5", "models": "synth-img-a,synth-bert"})
    ok(at.run())
    assert at.slider(key="w_l").value == 3.5 and at.query_params["l"] in ("3.5", ["3.5"])


def arr(v) -> np.ndarray:
    """A figure's array, decoded when plotly sent it as typed base64 (``bdata``)."""
    if isinstance(v, dict):
        a = np.frombuffer(base64.b64decode(v["bdata"]), v["dtype"])
        return a.reshape([int(n) for n in str(v["shape"]).split(",")]) if "shape" in v else a
    return np.asarray(v, dtype=float)


def charts_by_title(at: AppTest) -> dict[str, tuple[dict, dict]]:
    """Each plotly chart's (figure, config) by its title."""
    out = {}
    for el in at.get("plotly_chart"):
        fig = json.loads(el.proto.spec)
        out[fig["layout"]["title"]["text"]] = (fig, json.loads(el.proto.config or "{}"))
    return out


def test_models_page_shows_one_models_confusion_and_training_curve(ux_home):
    at = ok(page("pages/2_Models.py"))
    ok(at.selectbox(key="w_model_detail").set_value("synth-glove").run())
    figs = charts_by_title(at)
    cm_fig = next(f for t, (f, _) in figs.items() if t.startswith("Confusion matrix of synth-glove"))
    z = arr(cm_fig["data"][0]["z"]).astype(float)
    assert z.shape == (6, 6) and np.allclose(z.sum(1)[z.sum(1) > 0], 1)  # shares of each true class
    curve, _ = figs["How synth-glove was trained"]
    assert curve["data"][0]["x"] == [0.0001, 0.001, 0.01, 0.1] and curve["data"][0]["y"] == [0.3, 0.4, 0.6, 0.5]
    assert curve["layout"]["xaxis"]["type"] == "log" and curve["data"][-1]["x"] == [0.01]  # the chosen C
    ok(at.selectbox(key="w_model_detail").set_value("synth-bert").run())
    curve, _ = charts_by_title(at)["How synth-bert was trained"]
    names = [t["name"] for t in curve["data"]]
    assert names == ["validation accuracy", "mean train loss", "kept"] and curve["data"][1]["yaxis"] == "y2"
    assert curve["data"][2]["x"] == [2]
    ok(at.selectbox(key="w_model_detail").set_value("synth-img-a").run())
    assert "recorded no training curve" in " ".join(i.value for i in at.info)


def test_charts_download_as_svg_or_png(ux_home):
    at = ok(page("pages/2_Models.py"))
    configs = [c for _, c in charts_by_title(at).values()]
    assert configs and all(c["toImageButtonOptions"]["format"] == "svg" for c in configs)
    ok(at.radio(key="w_chart_format").set_value("png").run())
    configs = {t: c for t, (_, c) in charts_by_title(at).items()}
    assert all(c["toImageButtonOptions"]["format"] == "png" for c in configs.values())
    assert configs["Validation and test accuracy per model"]["toImageButtonOptions"]["filename"] == "tiny-accuracy"
    at = ok(page("pages/3_Fusion_lab.py"))  # the Fusion lab's charts too
    ok(at.radio(key="w_chart_format").set_value("png").run())
    fusion = {t: c for t, (_, c) in charts_by_title(at).items()}
    assert fusion["Weight per model"]["toImageButtonOptions"] == {"format": "png", "filename": "tiny-fusion-weights",
                                                                  "scale": 2}


def test_topk_csv_has_a_k_column():
    from pinterest_mm.curves import topk_table
    from pinterest_mm.safecsv import safe_csv

    table = topk_table({"mm": [0.5, 0.7, 0.9], "best single (glove)": [0.4, 0.6, 0.8]})
    assert list(table.columns) == ["k", "mm", "best single (glove)"] and table["k"].tolist() == [1, 2, 3]
    assert safe_csv(table).decode().splitlines()[:2] == ["k,mm,best single (glove)", "1,0.5,0.4"]
    with pytest.raises(ValueError, match="different lengths"):
        topk_table({"a": [0.1, 0.2], "b": [0.3]})


def test_prediction_notes_low_confidence_relative_to_chance_and_disagreement():
    from pinterest_mm.confidence import low_threshold, prediction_notes

    classes = [f"c{i}" for i in range(12)]
    assert low_threshold(12) == pytest.approx(2 / 12) and low_threshold(2) == 0.5
    sure = np.full(12, 0.5 / 11)
    sure[3] = 0.5
    unsure = np.full(12, 0.85 / 11)
    unsure[3] = 0.15
    votes = {"a": sure, "b": sure, "c": np.roll(sure, 1)}
    assert prediction_notes(sure, votes, classes) == []
    [note] = prediction_notes(unsure, votes, classes)
    assert note.startswith("Low confidence") and "0.15" in note and "0.17" in note
    [note] = prediction_notes(sure, {"a": np.roll(sure, 1), "b": np.roll(sure, 2), "c": sure}, classes)
    assert note == "The models disagree: 1 of the 3 that voted put c3 first."
    assert prediction_notes(None, {}, classes) == []


def test_predict_page_says_a_refused_image_was_refused(ux_home):
    at = AppTest.from_file(str(REPO / "pages/6_Predict.py"), default_timeout=120).run()
    at.file_uploader[0].set_value(("pin.png", b"this is not an image at all", "image/png"))
    at.text_area(key="pred_text").input("football team match at the stadium")
    ok(at.run())
    assert at.error and at.error[0].value.startswith("The image was refused")
    text = captions(at)
    for m in ("synth-img-a", "synth-img-b"):
        assert f"{m}: no vote, the image was refused" in text
    shown = " ".join(str(e.value) for kind in ("error", "warning", "info", "caption", "markdown")
                     for e in at.get(kind))
    assert "no image given" not in shown and "PIL" not in shown
