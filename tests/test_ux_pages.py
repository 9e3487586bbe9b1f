"""Rough edges of the pages (AppTest): the Fusion lab's knobs follow the model selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from app_fixtures import DATASET, make_test_cache

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
AppTest = streamlit_testing.AppTest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ux_home(tmp_path_factory):
    """The tiny dataset with six synthetic models; PINTEREST_MM_HOME points at it."""
    root = tmp_path_factory.mktemp("ux") / "home"
    make_test_cache(root)
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
