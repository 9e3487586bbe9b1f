"""A test cache for the app: the tiny dataset plus synthetic-but-plausible model outputs.

Page tests should not need a model build. :func:`make_test_cache` imports the tiny generated
dataset (see ``conftest.make_tiny_manifest``) and stores, through ``Store.save_model``, the
probability vectors of six fake models (2 image, 2 word-embedding, 1 transformer, 1 other)
generated from the true labels with different, seeded accuracies.

Run as a script to make a cache for manual runs and benchmarks::

    python tests/app_fixtures.py /tmp/pmm-home [--per-class 24]
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import TINY_CONFIG, make_tiny_manifest  # noqa: E402

from pinterest_mm.data.importer import import_manifest  # noqa: E402
from pinterest_mm.store import Store  # noqa: E402

APP_REPO = Path(__file__).resolve().parents[1]
DATASET = "tiny"
REAL_DATASET = "tiny-real"
REAL_MODELS = ["effnet-lite0", "glove-6b-50", "tfidf-lr"]

# name -> (family, modality, signal strength); stronger signal = higher accuracy.
SYNTH_MODELS = {
    "synth-img-a": ("image", "image", 1.9),
    "synth-img-b": ("image", "image", 1.5),
    "synth-glove": ("word_embedding", "text", 1.7),
    "synth-w2v": ("word_embedding", "text", 1.2),
    "synth-bert": ("transformer", "text", 2.2),
    "synth-tfidf": ("other", "text", 1.0),
}


def synth_probs(y: np.ndarray, n_classes: int, strength: float, rng: np.random.Generator,
                shared: np.ndarray | None = None) -> np.ndarray:
    """Probabilities whose argmax is right more often the larger ``strength`` is.

    Logits are the model's own Gaussian noise, plus ``shared`` noise common to every model
    (hard pins are hard for all, so fusion helps but does not become perfect), plus
    ``strength`` on the true class and a smaller bump on a "confusable" neighbour class,
    then a softmax: plausible, not one-hot.
    """
    n = len(y)
    logits = rng.normal(0.0, 1.0, (n, n_classes))
    if shared is not None:
        logits += shared
    logits[np.arange(n), y] += strength
    logits[np.arange(n), (y + 1) % n_classes] += strength * 0.35
    logits *= 1.3
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def add_synth_models(store: Store, dataset: str = DATASET, seed: int = 0) -> list[str]:
    """Store the six synthetic models' val/test/train probabilities; return their names."""
    classes = store.classes(dataset)
    pins = store.pins(dataset)
    C = len(classes)
    ys = {s: pins[pins["split"] == s].sort_values("split_row")["label"].to_numpy() for s in ("train", "val", "test")}
    shared_rng = np.random.default_rng(seed + 7)
    shared = {s: shared_rng.normal(0.0, 0.6, (len(y), C)) for s, y in ys.items()}
    for i, (name, (family, modality, strength)) in enumerate(SYNTH_MODELS.items()):
        rng = np.random.default_rng(seed + 101 * i)
        probs, accs = {}, {}
        for split, y in ys.items():
            probs[split] = synth_probs(y, C, strength, rng, shared[split])
            accs[split] = float((probs[split].argmax(1) == y).mean()) if len(y) else 0.0
        store.save_model(
            dataset, name, family=family, modality=modality,
            params={"C": 0.01, "synthetic": True, "strength": strength},
            cv_score=accs["train"], val_accuracy=accs["val"], test_accuracy=accs["test"],
            seconds=0.5 + i, fingerprint=f"synthetic-{seed}", probs=probs,
        )
    return list(SYNTH_MODELS)


def make_test_cache(root: Path, per_class: int = 40, data_dir: Path | None = None) -> Store:
    """Create a store in ``root`` holding dataset ``tiny`` with the synthetic models."""
    root = Path(root)
    data_dir = Path(data_dir) if data_dir is not None else root.parent / (root.name + "-data")
    manifest = data_dir / "manifest.csv"
    if not manifest.exists():
        manifest = make_tiny_manifest(data_dir, per_class=per_class)
    store = Store(root)
    if DATASET not in store.dataset_names():
        import_manifest(store, manifest, DATASET, TINY_CONFIG, progress=False)
    add_synth_models(store)
    return store


def add_real_models(store: Store, manifest: Path, models: list[str] = REAL_MODELS) -> list[str]:
    """Import ``manifest`` as ``tiny-real`` and build real (offline) models on it.

    Returns the built model names ([] when the model code or weights are unavailable).
    About 30 s on 2 CPU cores for the default models.
    """
    try:
        from pinterest_mm.build import build
    except Exception:
        return []
    if REAL_DATASET not in store.dataset_names():
        import_manifest(store, manifest, REAL_DATASET, TINY_CONFIG, progress=False)
    try:
        results = build(store, REAL_DATASET, models, progress=False)
    except Exception:
        return []
    return [r["model"] for r in results if r["status"] in ("built", "cached")]


_SHARED: dict = {}


def shared_cache(tmp_path_factory) -> tuple[Path, bool]:
    """One store per test session with ``tiny`` (synthetic) and ``tiny-real`` (real models).

    Built once (about 40 s) and shared by the AppTest and browser tests, which only read it.
    Returns (store folder, whether the real models could be built).
    """
    if "root" not in _SHARED:
        root = tmp_path_factory.getbasetemp() / "pmm-app-cache" / "home"
        store = make_test_cache(root)
        built = add_real_models(store, root.parent / (root.name + "-data") / "manifest.csv")
        _SHARED.update(root=root, has_real=len(built) >= 2)
    return _SHARED["root"], _SHARED["has_real"]


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--real", action="store_true", help="also build real models on tiny-real (~30 s)")
    a = ap.parse_args()
    s = make_test_cache(Path(a.root), a.per_class)
    if a.real:
        print("real models:", add_real_models(s, Path(a.root).parent / (Path(a.root).name + "-data") / "manifest.csv"))
    print(s.models(DATASET)[["model", "family", "val_accuracy", "test_accuracy"]])


# ----------------------------------------------------------------------------- a live server
def cli_env(home: Path, **extra: str) -> dict:
    """The environment of a CLI or server subprocess on the store ``home``."""
    env = dict(os.environ, PINTEREST_MM_HOME=str(home), STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
               PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(home: Path, log_path: Path, *extra_args: str):
    """``streamlit run app.py`` on a free loopback port; yields (url, Popen)."""
    port = free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP_REPO / "app.py"), "--server.port", str(port),
         "--server.headless", "true", "--server.fileWatcherType", "none",
         "--server.address", "127.0.0.1", *extra_args],
        cwd=APP_REPO, env=cli_env(home), stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited early; see {log_path}")
            if time.time() > deadline:
                pytest.fail("streamlit did not become healthy in 60 s")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
