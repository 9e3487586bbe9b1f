"""The lab in a real browser: ``streamlit run app.py`` driven by headless Chromium.

Starts Streamlit on a free port against a test cache (``PINTEREST_MM_HOME`` = a temporary
store with the synthetic ``tiny`` models and, when they build here, real models on
``tiny-real``), visits every page, moves the l slider, uploads a pin image and waits for the
fused prediction. Screenshots go to the test's tmp folder, and to ``screenshots/`` when the
environment variable ``PMM_SCREENSHOTS`` is set. Skips cleanly without Chromium or Playwright.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from app_fixtures import DATASET, REAL_DATASET, shared_cache, streamlit_server

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("PMM_CHROMIUM", "/usr/bin/chromium")
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGES = ["Overview", "Models", "Fusion_lab", "Compare", "Users", "Predict"]


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Playwright (skip when either is missing)."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("chromium is not installed (make browser)")
    sync_api = pytest.importorskip("playwright.sync_api")
    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    with sync_api.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=exe, args=CHROME_ARGS, headless=True)
        except Exception as exc:  # pragma: no cover - broken browser install
            pytest.skip(f"chromium does not start: {exc}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``streamlit run app.py`` on a free port against a test cache; yields (url, has_real)."""
    root, has_real = shared_cache(tmp_path_factory)
    with streamlit_server(root, tmp_path_factory.mktemp("log") / "streamlit.log") as (url, _proc):
        yield url, has_real


@pytest.fixture
def shots(tmp_path):
    """Save a screenshot to tmp (and to screenshots/ when PMM_SCREENSHOTS is set)."""
    extra = REPO / "screenshots" if os.environ.get("PMM_SCREENSHOTS") else None
    if extra:
        extra.mkdir(exist_ok=True)

    def save(page, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if extra:
            shutil.copy(path, extra / path.name)
        return path

    return save


def _settle(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the script and charts have drawn."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-test-script-state]');"
        " return a && a.getAttribute('data-test-script-state') !== 'running'"
        " && !document.querySelector('[data-testid=\"stSpinner\"]'); }",
        timeout=timeout,
    )
    page.wait_for_timeout(800)


def _no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.inner_text("body")[:2000]


def test_every_page_slider_and_upload(server, browser, shots, tmp_path):
    """Check every page renders, the l slider re-scores live, and an upload is predicted."""
    url, has_real = server
    ctx = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = ctx.new_page()
    for name in PAGES:
        page.goto(f"{url}/{name}?dataset={DATASET}")
        page.get_by_role("heading", level=1).first.wait_for(timeout=60_000)
        _settle(page)
        _no_exception(page)
        if name != "Predict":
            page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
        assert DATASET in page.inner_text("body")
        shots(page, f"{PAGES.index(name) + 1}_{name}")

    # the live l slider
    page.goto(f"{url}/Fusion_lab?dataset={DATASET}&method=mm&l=0")
    _settle(page)
    acc = page.locator('[data-testid="stMetricValue"]').first
    before = acc.inner_text()
    handle = page.locator('[data-testid="stSlider"] input[type="range"]').first
    handle.focus()
    page.keyboard.press("End")  # l = 20, the slider's maximum
    page.wait_for_url("**l=20**", timeout=30_000)
    _settle(page)
    _no_exception(page)
    after = acc.inner_text()
    weights_text = page.locator(".js-plotly-plot").nth(2).inner_text()
    assert before != after or weights_text  # the weights chart re-drew at least

    # click the (Animals, Animals) cell of the confusion matrix: its pins are listed
    cm = page.locator(".js-plotly-plot").nth(3)
    cm.scroll_into_view_if_needed()
    area = cm.locator(".nsewdrag").first.bounding_box()
    n_classes = 6
    x, y = area["x"] + area["width"] * 0.5 / n_classes, area["y"] + area["height"] * 0.5 / n_classes
    page.mouse.move(x, y)
    page.wait_for_timeout(500)
    page.mouse.down()
    page.wait_for_timeout(80)
    page.mouse.up()
    page.get_by_text("are of class Animals and predicted Animals").wait_for(timeout=30_000)
    _settle(page)
    _no_exception(page)
    page.set_viewport_size({"width": 1400, "height": 3000})
    _settle(page)
    shots(page, "3_fusion_after_slider_and_click")
    page.set_viewport_size({"width": 1400, "height": 1800})

    # upload a pin and see the fused prediction
    if not has_real:
        pytest.skip("real models cannot be built here: upload check skipped")
    from conftest import TINY_CLASSES, draw_pin_image

    color, shape, _ = TINY_CLASSES["Gardening"]
    img = tmp_path / "pin.png"
    draw_pin_image(color, shape, np.random.default_rng(3)).save(img)
    page.goto(f"{url}/Predict?dataset={REAL_DATASET}")
    _settle(page)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(img))
    _settle(page, 180_000)
    page.get_by_text("Fused prediction:").first.wait_for(timeout=120_000)
    _no_exception(page)
    body = page.inner_text("body")
    assert "effnet-lite0" in body
    page.get_by_label("Description").fill("tulip seeds in the garden soil with compost")
    page.keyboard.press("Control+Enter")
    _settle(page)
    page.get_by_text("glove-6b-50").first.wait_for(timeout=60_000)
    _no_exception(page)
    shots(page, "6_predict_upload")
    ctx.close()


def test_search_page(server, browser, shots, tmp_path_factory):
    """Search a joint space trained on tiny-real: text query -> pins and users; the map draws."""
    url, has_real = server
    if not has_real:
        pytest.skip("real models cannot be built here: no joint space to search")
    from app_fixtures import shared_cache
    from pinterest_mm.embed.train import EmbedConfig, train
    from pinterest_mm.store import Store

    root, _ = shared_cache(tmp_path_factory)
    train(Store(root), REAL_DATASET, EmbedConfig(dim=32, filters=(16, 8, 8), batch_size=64, epochs=3, lr=5e-3))
    ctx = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = ctx.new_page()
    page.goto(f"{url}/Search?dataset={REAL_DATASET}")
    page.get_by_role("heading", level=1).first.wait_for(timeout=60_000)
    _settle(page)
    _no_exception(page)
    page.get_by_label("Text").fill("tulip seeds in the garden soil")
    page.keyboard.press("Enter")
    page.get_by_text("Nearest users").first.wait_for(timeout=60_000)
    _settle(page)
    _no_exception(page)
    assert "Nearest pins" in page.inner_text("body")
    shots(page, "7_search_text")
    page.get_by_role("tab", name="Map").click()
    page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
    _no_exception(page)
    shots(page, "7_search_map")
    ctx.close()
