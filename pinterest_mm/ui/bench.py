"""Speed of the lab, server side: ``python -m pinterest_mm.ui.bench [--pages]``.

Measures (median of repeats, milliseconds):

- ``slider``: one l-slider move at thesis scale (6 models, 2,900 test pins, 29 classes;
  ``--slider-pins 100000`` adds 8 models at 100,000 test pins):
  MM weights, fuse + evaluate on the prepared stack, confusion matrix, the top-k, weights,
  grid and confusion figures built and serialized to JSON (what the fragment sends).
- ``pages`` (with ``--pages``, needs ``PINTEREST_MM_HOME`` with an imported dataset that has
  models): each page's warm first load in a fresh ``AppTest`` session (caches warm).
- ``predict`` (with ``--predict DATASET``): one uploaded pin (image + text) through the
  cached predictors and the fusion, warm.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

import numpy as np


def _median_ms(fn, repeats: int = 20) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_slider(M: int = 6, n: int = 2900, C: int = 29, seed: int = 0) -> float:
    """One slider move's server-side work at thesis scale; returns median ms."""
    from .. import metrics
    from ..fusion.late import mm_weights
    from ..fusion.live import FusionStack
    from . import charts

    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    logits = rng.normal(size=(M, n, C))
    logits[:, np.arange(n), y] += 1.5
    p = np.exp(logits)
    stack = (p / p.sum(2, keepdims=True)).astype(np.float32)
    fs = FusionStack(stack, y)
    accs = rng.uniform(0.4, 0.6, M)
    names = [f"model-{i}" for i in range(M)]
    classes = [f"Category {i}" for i in range(C)]
    fam = {m: "image" for m in names}
    state = {"l": 1.0}

    def move():
        state["l"] = state["l"] % 5 + 0.25
        w = mm_weights(accs, state["l"])
        ev = fs.view(w)
        cm = metrics.normalize_confusion(ev.confusion, "true")
        figs = [
            charts.topk_figure({"MM": ev.topk, "best": ev.topk}, {"best": "image"}, "t", bold=["MM"]),
            charts.weights_bar(dict(zip(names, w)), fam, "w"),
            charts.grid_figure([1, 2, 3, 4, 5], [0.5] * 5, [0.5] * 5, 1.0, state["l"], "l", "g"),
            charts.confusion_figure(cm, classes, "true", "cm"),
        ]
        for f in figs:
            f.to_json()

    return _median_ms(move)


def bench_pages(pages: list[str], repeats: int = 3) -> dict[str, float]:
    """Warm first load of each page in a fresh AppTest session; returns median ms."""
    from streamlit.testing.v1 import AppTest

    repo = Path(__file__).resolve().parents[2]
    res = {}
    for p in pages:
        path = str(repo / p)
        AppTest.from_file(path, default_timeout=120).run()  # warm the caches

        def load():
            at = AppTest.from_file(path, default_timeout=120).run()
            assert not at.exception, [e.message for e in at.exception]

        res[p] = _median_ms(load, repeats)
    return res


def bench_predict(dataset: str, repeats: int = 10) -> dict[str, float]:
    """One pin (image + text) through every cached predictor and the fusion; median ms."""
    from PIL import Image

    from ..fusion.registry import fuse
    from ..models import load_predictor
    from ..outputs import load_outputs
    from ..store import Store
    from .predict import predict_pin, read_image

    store = Store(read_only=True)
    out = load_outputs(store, dataset)
    r = fuse(out, "mm")
    preds = {m: load_predictor(store, dataset, m) for m in r.weights}
    mods = {m: out.models[m].modality for m in out.models}
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (40, 160, 60)).save(buf, "JPEG")
    data = buf.getvalue()

    def one():
        up = read_image(data)
        predict_pin(preds, mods, r.weights, up.image, "tulip seeds garden soil compost bloom")

    return {"predict_image_and_text": _median_ms(one, repeats)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", action="store_true")
    ap.add_argument("--predict", metavar="DATASET")
    ap.add_argument("--slider-pins", type=int, nargs="*", default=[],
                    help="also time the slider move at these test-split sizes (e.g. 100000)")
    a = ap.parse_args(argv)
    res: dict = {"slider_ms_thesis_scale": bench_slider()}
    for n in a.slider_pins:
        res[f"slider_ms_{n}_pins"] = bench_slider(M=8, n=n)
    if a.pages:
        res["page_first_load_warm_ms"] = bench_pages([
            "app.py", "pages/1_Overview.py", "pages/2_Models.py", "pages/3_Fusion_lab.py",
            "pages/4_Compare.py", "pages/5_Users.py", "pages/6_Predict.py", "pages/7_Search.py"])
    if a.predict:
        res.update(bench_predict(a.predict))
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
