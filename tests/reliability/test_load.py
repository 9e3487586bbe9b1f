"""Ten and twenty researchers at once: concurrent sessions against one ``streamlit run`` server.

Ten (or twenty) clients (:mod:`.stclient`: Streamlit's own websocket protocol plus the uploader's HTTP
PUT, on 127.0.0.1) each open their own session and, for a bounded time, with a person's
think time between actions, move the Fusion lab's l slider (a fragment rerun, as the browser
sends it) and predict an uploaded pin of their own on the Predict page (real models).
Checked: no exception in any run, every session only ever sees its own l and its own
description, the models are loaded once per server (bounded RSS here; a call count in
:func:`test_models_are_loaded_once_for_all_sessions`), and the p95 slider-update time
stays within twice the single-user time (the target: printed always, asserted when
``PMM_LOAD_P95_FACTOR`` is set, since timings are not CI's to judge). The figures are printed
(``pytest -s``): slider updates, full page loads (Fusion lab, Predict) and predictions, single
user and under load, and the server's CPU use.

Timing is server-side: from the moment a client's request is on the socket to the server's
``script_finished`` (queueing, the script run and sending its output; loopback, no rendering).
Browsers rendering the same pages are covered by ``tests/test_browser.py``; here twenty
Chromium renderers would compete with the server for the 2 cores and measure themselves
(the browser-measured p95 with 20 tabs, 6.2 s, was mostly that).
"""

from __future__ import annotations

import io
import os
import random
import statistics
import threading
import time

import numpy as np
import pytest

from app_fixtures import DATASET, REAL_DATASET, shared_cache

from .conftest import REPO, rss_mb, streamlit_server

pytestmark = pytest.mark.slow

DURATION = float(os.environ.get("PMM_LOAD_SECONDS", "40"))
THINK = tuple(float(x) for x in os.environ.get("PMM_LOAD_THINK", "3,8").split(","))  # a person reads the result
# Timing targets belong to benchmarks, not to CI: the p95 ratio is printed, and asserted only
# when PMM_LOAD_P95_FACTOR is set (e.g. PMM_LOAD_P95_FACTOR=2 on a quiet machine).
P95_FACTOR = os.environ.get("PMM_LOAD_P95_FACTOR")
# PMM_LOAD_PROFILE=FILE samples the server with py-spy (on PATH, or PMM_PYSPY=path) during the
# load and writes its collapsed stacks to FILE, with the functions that dominate printed.
PROFILE = os.environ.get("PMM_LOAD_PROFILE")
L_LABEL = "l (MM weights = softmax(validation accuracy × l))"
UPLOAD_LABEL = "Pin image (PNG, JPEG or WebP)"


def _p95(xs: list[float]) -> float:
    return float(np.percentile(xs, 95)) if xs else float("nan")


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (s), from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pin_png(i: int) -> bytes:
    from conftest import TINY_CLASSES, draw_pin_image

    color, shape, _ = list(TINY_CLASSES.values())[i % len(TINY_CLASSES)]
    buf = io.BytesIO()
    draw_pin_image(color, shape, np.random.default_rng(100 + i)).save(buf, "PNG")
    return buf.getvalue()


def _start_profiler(pid: int, seconds: float):
    """py-spy recording the server for ``seconds`` when ``PMM_LOAD_PROFILE`` is set."""
    if not PROFILE:
        return None
    import shutil
    import subprocess

    exe = os.environ.get("PMM_PYSPY") or shutil.which("py-spy")
    if not exe:
        pytest.fail("PMM_LOAD_PROFILE is set but py-spy is not found (pip install py-spy, or PMM_PYSPY=path)")
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50",
                             "--format", "raw", "--output", PROFILE, "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _stop_profiler(spy) -> str:
    """Wait for py-spy; return the functions with the most samples (own and inclusive)."""
    if spy is None:
        return ""
    import collections

    _, err = spy.communicate(timeout=120)
    own, incl, total = collections.Counter(), collections.Counter(), 0
    try:
        lines = open(PROFILE).read().splitlines()
    except OSError:
        return f"\n  profile: none written ({err.strip()[-300:]})"
    for line in lines:
        stack, _, n = line.rpartition(" ")
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  for f in stack.split(";") if f]
        if not frames or not n.isdigit():
            continue
        total += int(n)
        own[frames[-1]] += int(n)
        for f in set(frames):
            incl[f] += int(n)
    top = lambda c: "".join(f"\n      {k / max(total, 1):5.1%} {f}" for f, k in c.most_common(12))  # noqa: E731
    return (f"\n  profile ({total} samples of the server's threads, {PROFILE}): own time{top(own)}"
            f"\n    inclusive (skip the thread roots){top(incl)}")


class Researcher:
    """One session: its own l values, its own pin image and description."""

    def __init__(self, idx: int, url: str, sessions: int = 1) -> None:
        from .stclient import Client

        self.idx, self.sessions, self.client = idx, sessions, Client(url)
        self.l = float(idx)  # distinct per session (0..19 within the slider)
        self.slider_s: list[float] = []
        self.predict_s: list[float] = []
        self.page_s: dict[str, list[float]] = {}  # full page runs by page
        self.query = ""
        self.slider = ("", "")
        self.errors: list[str] = []

    def _check(self, run, where: str) -> None:
        if run.exceptions:
            self.errors.append(f"session {self.idx} {where}: {run.exceptions[0][:300]}")

    def goto(self, page: str, dataset: str, query: str):
        """Switch to a page, then to a dataset with the sidebar's selectbox, as a person does."""
        r = self.client.run(query, page)
        self.page_s.setdefault(page, []).append(r.seconds)
        if f"dataset={dataset}&" not in (r.query_string or ""):
            self._check(r, page)
            r = self.client.run(r.query_string, page, [(r.widgets["Dataset"][0], "string", dataset)])
            self.page_s[page].append(r.seconds)
        assert f"dataset={dataset}&" in r.query_string, r.query_string
        return r

    def open_fusion(self) -> None:
        r = self.goto("Fusion_lab", DATASET, f"dataset={DATASET}&method=mm&l={self.l:g}")
        self._check(r, "Fusion_lab")
        if f"l={self.l:g}&" not in r.query_string:  # switching the dataset re-chose l on validation
            slider = r.widgets[L_LABEL]  # (l follows the model selection): set it, as a person would
            r = self.client.run(r.query_string, "Fusion_lab", [(slider[0], "double_array", [self.l])], slider[1])
            self._check(r, "Fusion_lab l")
        self._assert_l(r, self.l)
        self.query, self.slider = r.query_string, r.widgets[L_LABEL]

    @staticmethod
    def _assert_l(r, want: float) -> None:
        """The session's own l is on its slider, and in its URL unless it is the value chosen on
        validation (a URL without l means that one)."""
        ls = [p[2:] for p in r.query_string.split("&") if p.startswith("l=")]
        shown = r.slider_values.get(L_LABEL)  # empty when this run did not send the slider
        assert ls == [f"{want:g}"] or (ls == [] and shown == [want]), (want, r.query_string, shown)

    def move_slider(self) -> None:
        want = self.l + 0.25 if self.l < 19.5 else 0.25
        r = self.client.run(self.query, "Fusion_lab", [(self.slider[0], "double_array", [want])], self.slider[1])
        self._check(r, "slider")
        self.slider_s.append(r.seconds)
        self._assert_l(r, want)  # its own value, never another session's
        self.l, self.query = want, r.query_string

    def predict(self) -> None:
        token = f"session{self.idx}marker"
        r = self.goto("Predict", REAL_DATASET, self.query)
        self._check(r, "predict page")
        state = self.client.upload(f"pin{self.idx}.png", _pin_png(self.idx))
        r = self.client.run(r.query_string, "Predict", [
            (r.widgets["Dataset"][0], "string", REAL_DATASET), (r.widgets[UPLOAD_LABEL][0], "file", state),
            (r.widgets["Description"][0], "string", f"tulip seeds garden soil {token}")])
        self._check(r, "predict")
        self.predict_s.append(r.seconds)
        shown = " ".join(r.texts)
        assert token in shown, (self.idx, shown[:500])
        others = [i for i in range(self.sessions) if i != self.idx and f"session{i}marker" in shown]
        assert not others, f"session {self.idx} sees the text of sessions {others}"
        assert any(a.startswith("Fused prediction:") for a in r.alerts), (self.idx, r.alerts)
        self.open_fusion()

    def run(self, until: float, rng: random.Random) -> None:
        try:
            self.open_fusion()
            n = 0
            while time.monotonic() < until:
                time.sleep(rng.uniform(*THINK))
                (self.predict if n % 5 == 4 else self.move_slider)()
                n += 1
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(f"session {self.idx}: {type(exc).__name__}: {exc}"[:600])
        finally:
            self.client.close()


def test_ten_concurrent_sessions(tmp_path_factory, tmp_path):
    """Ten sessions (``PMM_LOAD_SESSIONS`` overrides)."""
    _load_test(int(os.environ.get("PMM_LOAD_SESSIONS", "10")), tmp_path_factory, tmp_path)


def test_twenty_concurrent_sessions(tmp_path_factory, tmp_path):
    """Twenty sessions: the lab's team plus visitors."""
    _load_test(20, tmp_path_factory, tmp_path)


def _load_test(sessions: int, tmp_path_factory, tmp_path) -> None:
    """One user alone (warm), then ``sessions`` at once for ``PMM_LOAD_SECONDS``."""
    root, has_real = shared_cache(tmp_path_factory)
    if not has_real:
        pytest.skip("the real models cannot be built here (predict needs them)")
    log_path = tmp_path / "streamlit.log"
    with streamlit_server(root, log_path) as (url, proc):
        rss_start = rss_mb(proc.pid)
        # single user, warm: models loaded and stacks prepared once, then the slider timed
        solo = Researcher(0, url)
        solo.open_fusion()
        solo.predict()
        single_predict = solo.predict_s[-1]
        solo.predict()
        single_predict_warm = solo.predict_s[-1]
        for _ in range(3):
            solo.move_slider()
        solo.slider_s.clear()
        for _ in range(15):
            time.sleep(0.3)
            solo.move_slider()
        for _ in range(3):  # page loads, warm: the Fusion lab with its stack prepared
            solo.open_fusion()
        solo.client.close()
        rss_before = rss_mb(proc.pid)
        # all at once
        people = [Researcher(i, url, sessions) for i in range(sessions)]
        cpu0 = _cpu_seconds(proc.pid)
        spy = _start_profiler(proc.pid, DURATION)
        until = time.monotonic() + DURATION
        threads = [threading.Thread(target=p.run, args=(until, random.Random(i))) for i, p in enumerate(people)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(DURATION + 300)
        wall = time.monotonic() - t0
        profile = _stop_profiler(spy)
        cpu = _cpu_seconds(proc.pid) - cpu0
        rss_after = rss_mb(proc.pid)
        alive = proc.poll() is None
    log = log_path.read_text()
    multi = [x for p in people for x in p.slider_s]
    preds = [x for p in people for x in p.predict_s]
    single_p95 = _p95(solo.slider_s)
    solo_pages = {page: xs[-3:] if page == "Fusion_lab" else xs for page, xs in solo.page_s.items()}
    pages = {page: [x for p in people for x in p.page_s.get(page, [])] for page in ("Fusion_lab", "Predict")}
    page_lines = "".join(
        f"  page load {page}: single user (warm) median {_median(solo_pages.get(page, [])) * 1000:.0f} ms; "
        f"{sessions} sessions median {_median(xs) * 1000:.0f} ms, p95 {_p95(xs) * 1000:.0f} ms over {len(xs)}\n"
        for page, xs in pages.items())
    print(
        f"\nLOAD {sessions} sessions for {wall:.0f} s (think time {THINK[0]:g}-{THINK[1]:g} s), "
        f"actions per session {[len(p.slider_s) + len(p.predict_s) for p in people]}\n"
        f"  slider update, single user: median {_median(solo.slider_s) * 1000:.0f} ms, "
        f"p95 {single_p95 * 1000:.0f} ms\n"
        f"  slider update, {sessions} sessions: median {_median(multi) * 1000:.0f} ms, "
        f"p95 {_p95(multi) * 1000:.0f} ms over {len(multi)} updates (p95 ratio {_p95(multi) / single_p95:.2f})\n"
        f"{page_lines}"
        f"  predict (upload + text, 3 real models): single user first {single_predict:.2f} s "
        f"(loads the models), warm {single_predict_warm:.2f} s; {sessions} sessions median "
        f"{_median(preds):.2f} s, p95 {_p95(preds):.2f} s over {len(preds)}\n"
        f"  server CPU during the load: {cpu:.0f} s in {wall:.0f} s ({cpu / wall:.2f} cores of "
        f"{os.cpu_count()}); machine load average {os.getloadavg()[0]:.1f}\n"
        f"  server RSS: start {rss_start:.0f} MB, after warm-up {rss_before:.0f} MB, after the load "
        f"{rss_after:.0f} MB\n"
        f"  errors: {sum(len(p.errors) for p in people)}"
        + profile
    )
    errors = [e for p in people for e in p.errors]
    assert not errors, errors
    assert alive and "Traceback" not in log, log[-3000:]
    assert len(multi) >= sessions * 3 and len(preds) >= sessions // 2
    assert rss_after - rss_before < 300, (rss_before, rss_after)
    # Target: 2x. Measured on 2 cores: 1.7x (single user 35 ms median; ten sessions 35 ms
    # median, 68 ms p95), once Streamlit's post-run gc.collect(2) was switched off
    # (.streamlit/config.toml) and the figures were built in one go (ui/charts.py).
    # Twenty sessions on a shared, loaded 2-core machine (load average 9-12): p95 161 ms vs 49 ms
    # (3.3x) while every page run opened DuckDB for the cache version (a fifth of the server's
    # samples, py-spy); with the version keyed on the store files' stat: p95 97 ms vs 90 ms
    # (1.07x; 2.0x against the first run's single-user p95). Rerun on a quiet machine.
    if P95_FACTOR:
        assert _p95(multi) <= float(P95_FACTOR) * single_p95, (_p95(multi), single_p95)


def test_models_are_loaded_once_for_all_sessions(monkeypatch, tmp_path_factory):
    """Three sessions (AppTest runs share the process's caches, as sessions of one server do)
    predicting different pins load each model once, not once per session."""
    from streamlit.testing.v1 import AppTest

    import pinterest_mm.models as models_pkg
    from pinterest_mm.ui import data

    root, has_real = shared_cache(tmp_path_factory)
    if not has_real:
        pytest.skip("the real models cannot be built here")
    calls: list[str] = []
    real = models_pkg.load_predictor

    def counting(store, dataset, model):
        calls.append(model)
        return real(store, dataset, model)

    monkeypatch.setattr(models_pkg, "load_predictor", counting)
    monkeypatch.setenv("PINTEREST_MM_HOME", str(root))
    data.predictor.clear()
    for i in range(3):
        at = AppTest.from_file(str(REPO / "pages/6_Predict.py"), default_timeout=120)
        at.query_params["dataset"] = REAL_DATASET
        at.run()
        at.file_uploader[0].set_value((f"pin{i}.png", _pin_png(i), "image/png"))
        at.text_area(key="pred_text").set_value(f"tulip garden soil session{i}marker")
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        assert any(str(s.value).startswith("Fused prediction:") for s in at.success)
    assert calls and len(calls) == len(set(calls)), calls  # each model loaded once
