"""The Search page (pages/7_Search.py) through AppTest, on a joint space trained on the
``tiny-real`` dataset (real effnet-lite0 features and GloVe vectors)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from app_fixtures import DATASET, REAL_DATASET, shared_cache

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
pytest.importorskip("torch")
AppTest = streamlit_testing.AppTest

REPO = Path(__file__).resolve().parents[1]
PAGE = str(REPO / "pages/7_Search.py")
QUICK = dict(dim=32, filters=(16, 8, 8), batch_size=64, epochs=3, lr=5e-3)


@pytest.fixture(scope="module")
def search_home(tmp_path_factory):
    """The shared test store with three spaces on tiny-real: all pairs (word-vector CNN and
    MiniLM text encoders), and one without users."""
    root, has_real = shared_cache(tmp_path_factory)
    if not has_real:
        pytest.skip("real models cannot be built here")
    from pinterest_mm.embed.data import load_embed_data
    from pinterest_mm.embed.train import EmbedConfig, train
    from pinterest_mm.store import Store

    store = Store(root)
    train(store, REAL_DATASET, EmbedConfig(**QUICK))
    data = load_embed_data(store, REAL_DATASET)
    no_users = replace(data, users=[], saves=data.saves.iloc[:0])
    train(store, REAL_DATASET, EmbedConfig(lambdas=(0.0, 1.0), **QUICK), data=no_users)
    minilm = EmbedConfig(text_encoder="minilm", **QUICK)
    train(store, REAL_DATASET, minilm, data=load_embed_data(store, REAL_DATASET, text_encoder="minilm"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PINTEREST_MM_HOME", str(root))
        yield root


def run(query: dict) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]


def test_text_search_lists_pins_and_users(search_home):
    at = run({"dataset": REAL_DATASET})
    no_exception(at)
    at.text_input(key="search_text").input("tulip seeds in the garden soil with compost").run()
    no_exception(at)
    subheaders = [s.value for s in at.subheader]
    assert "Nearest pins" in subheaders and "Nearest users" in subheaders
    pins = at.dataframe[0].value
    assert len(pins) == 12 and {"category", "description", "similarity"} <= set(pins.columns)
    assert pins["similarity"].is_monotonic_decreasing
    # the space ranks garden pins first for a garden text (GloVe words, trained on tiny-real)
    assert (pins["category"].head(5) == "Gardening").sum() >= 2, pins[["category", "similarity"]]


def test_image_search(search_home):
    from conftest import TINY_CLASSES, draw_pin_image
    import numpy as np

    color, shape, _ = TINY_CLASSES["Gardening"]
    buf = io.BytesIO()
    draw_pin_image(color, shape, np.random.default_rng(5)).save(buf, "PNG")
    at = run({"dataset": REAL_DATASET})
    at.file_uploader[0].set_value(("pin.png", buf.getvalue(), "image/png"))
    at.run()
    no_exception(at)
    assert "Nearest pins" in [s.value for s in at.subheader]
    assert any("Nearest to the image" in str(c.value) for c in at.caption)
    # a file that is not an image: one message, no traceback
    at.file_uploader[0].set_value(("pin.png", b"not an image", "image/png"))
    at.run()
    no_exception(at)
    assert at.warning and "Nearest pins" not in [s.value for s in at.subheader]


def test_user_view_marks_own_saves_and_profile(search_home):
    at = run({"dataset": REAL_DATASET})
    no_exception(at)
    users = at.selectbox(key="search_user")
    users.select(users.options[1].split(" (")[0]).run()
    no_exception(at)
    frames = [d.value for d in at.dataframe]
    near_pins = next(f for f in frames if "own_save" in f.columns)
    assert near_pins["own_save"].dtype == bool
    profile = next(f for f in frames if "share" in f.columns)
    assert abs(profile["share"].sum() - 1) < 1e-6
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    kinds = {t.get("legendgroup", "").split(",")[-1].strip() for t in fig["data"]}
    assert "user" in kinds and "pin" in kinds


def test_space_without_users_hides_user_parts(search_home):
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["dataset"] = REAL_DATASET
    at.run()
    at.sidebar.selectbox[1].select("embed-0-1").run()
    no_exception(at)
    assert any("no users" in i.value for i in at.info)
    at.text_input(key="search_text").input("tulip garden").run()
    no_exception(at)
    assert "Nearest users" not in [s.value for s in at.subheader]


def test_minilm_space_is_selectable_and_searches(search_home):
    at = run({"dataset": REAL_DATASET})
    tag = "embed-0.33-0.33-minilm"
    assert tag in at.sidebar.selectbox[1].options or any(tag in o for o in at.sidebar.selectbox[1].options)
    at.sidebar.selectbox[1].select(tag).run()
    no_exception(at)
    assert any("text encoder: MiniLM" in str(c.value) for c in at.caption)
    at.text_input(key="search_text").input("tulip seeds in the garden soil with compost").run()
    no_exception(at)
    pins = at.dataframe[0].value
    assert len(pins) == 12 and pins["similarity"].is_monotonic_decreasing
    assert (pins["category"].head(5) == "Gardening").sum() >= 2, pins[["category", "similarity"]]


def test_dataset_without_space_says_how_to_train(search_home):
    at = run({"dataset": DATASET})
    no_exception(at)
    assert any(f"pinterest-mm embed {DATASET}" in c.value for c in at.code)
