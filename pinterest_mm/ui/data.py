"""Cached loaders around :mod:`pinterest_mm`: every page reads data through these.

Arrays and frames are cached with ``st.cache_data`` / ``st.cache_resource`` keyed on the
dataset's :meth:`Store.version`, so they load once and reload by themselves after an import
or a build. Models (predictors) are ``st.cache_resource`` with ``max_entries``. Nothing here
imports torch; :func:`predictor` imports the build module lazily (Predict page only).
"""

from __future__ import annotations

import atexit
import functools
import gc
import io
import json
from pathlib import Path

import pandas as pd
import streamlit as st

from .. import metrics, stats
from ..config import home
from ..data import counts
from ..errors import one_line
from ..outputs import Outputs, load_outputs
from ..store import Store

THUMB_PX = 160


# ----------------------------------------------------------------------------- store
def store_root() -> Path:
    """The store folder (``$PINTEREST_MM_HOME``, default ``artifacts/``)."""
    return home()


@st.cache_resource(max_entries=4, show_spinner=False)
def _store(root: str, exists: bool) -> Store | None:
    if not exists:
        return None
    return Store(root, read_only=True)


def get_store() -> Store | None:
    """The store opened read-only, or None when no store file exists yet."""
    root = store_root()
    return _store(str(root), (root / "store.duckdb").exists())


@st.cache_data(ttl=5, show_spinner=False)
def _dataset_names(root: str, exists: bool) -> list[str]:
    store = _store(root, exists)
    return [] if store is None else store.dataset_names()


def dataset_names() -> list[str]:
    """Imported dataset names ([] for an empty or missing store)."""
    root = store_root()
    return _dataset_names(str(root), (root / "store.duckdb").exists())


def _store_stamp(root: Path) -> tuple[int, ...]:
    """Inode, mtime and size of the store file and of its write-ahead log.

    Every commit (an import, a model saved by a build) changes one of them; reading them
    costs microseconds, where opening the store for :meth:`Store.version` costs tens of
    milliseconds and, under load, was a fifth of the server's work (tests/reliability/test_load.py).
    """
    stamp: list[int] = []
    for name in ("store.duckdb", "store.duckdb.wal"):
        try:
            s = (root / name).stat()
            stamp += [s.st_ino, s.st_mtime_ns, s.st_size]
        except OSError:
            stamp += [0, 0, 0]
    return tuple(stamp)


@st.cache_data(max_entries=64, show_spinner=False)
def _version(root: str, dataset: str, stamp: tuple[int, ...]) -> str:
    store = _store(root, True)
    return store.version(dataset)


def version(dataset: str) -> str:
    """The dataset's cache version (changes after an import or a build); asked of the store
    only when its files changed since the last answer."""
    root = store_root()
    if not (root / "store.duckdb").exists():
        return "missing"
    return _version(str(root), dataset, _store_stamp(root))


# ----------------------------------------------------------------------------- tables
@st.cache_data(max_entries=16, show_spinner=False)
def dataset_info(dataset: str, ver: str) -> dict:
    """``Store.dataset_info`` (JSON-able parts)."""
    info = get_store().dataset_info(dataset)
    return {k: (str(v) if k == "created_at" else v) for k, v in info.items()}


@st.cache_data(max_entries=8, show_spinner="Loading pins ...")
def pins(dataset: str, ver: str) -> pd.DataFrame:
    """All kept pins of a dataset (``Store.pins``)."""
    return get_store().pins(dataset)


@st.cache_data(max_entries=8, show_spinner=False)
def manifest_rows(dataset: str, ver: str) -> pd.DataFrame:
    """Every manifest row with its fate (``Store.manifest_rows``)."""
    return get_store().manifest_rows(dataset)


@st.cache_data(max_entries=8, show_spinner=False)
def import_report(dataset: str, ver: str) -> pd.DataFrame:
    """The import report (``Store.import_report``)."""
    return get_store().import_report(dataset)


@st.cache_data(max_entries=8, show_spinner=False)
def models_table(dataset: str, ver: str) -> pd.DataFrame:
    """One row per built model (``Store.models``)."""
    return get_store().models(dataset)


@st.cache_resource(max_entries=4, show_spinner="Loading the probability cache ...")
def outputs(dataset: str, ver: str) -> Outputs:
    """Every model's cached probabilities (:func:`pinterest_mm.outputs.load_outputs`)."""
    return load_outputs(get_store(), dataset)


@st.cache_resource(max_entries=16, show_spinner=False)
def pins_by_split(dataset: str, ver: str, split: str) -> pd.DataFrame:
    """Pins of one split in ``split_row`` order (index = split_row).

    Shared by every session without a copy (a slider move reads it): treat it as read-only,
    select rows (``.loc``, ``.head``) to get a frame of your own.
    """
    df = pins(dataset, ver)
    return df[df["split"] == split].sort_values("split_row").set_index("split_row", drop=False)


@st.cache_resource(max_entries=8, show_spinner=False)
def pins_by_pin_id(dataset: str, ver: str) -> pd.DataFrame:
    """Every kept pin indexed by ``pin_id`` (a page's pins are looked up, never filtered from
    all of them). Shared without a copy: treat it as read-only."""
    return pins(dataset, ver).set_index("pin_id", drop=False)


# ----------------------------------------------------------------------------- fusion
def thesis_selection(out: Outputs) -> list[str]:
    """:func:`pinterest_mm.fusion.select.thesis_selection`."""
    from ..fusion.select import thesis_selection as _selection

    return _selection(out)


@st.cache_data(max_entries=32, show_spinner=False)
def definitions(dataset: str, ver: str) -> dict:
    """:func:`pinterest_mm.compare.definitions`: best single model, pairs, MM selection, with rules."""
    from ..compare import definitions as _definitions

    return _definitions(outputs(dataset, ver))


def usable_models(out: Outputs, family: str | None = None, modality: str | None = None) -> list[str]:
    """Models with val + test probabilities, best validation accuracy first."""
    from ..fusion.select import usable_models as _usable

    return _usable(out, family, modality)


def fusion_methods() -> list[str]:
    """Registered fusion methods, ``mm`` and ``lambda`` first."""
    from ..fusion.registry import list_methods

    order = {"mm": 0, "lambda": 1}
    return sorted(list_methods(), key=lambda n: (order.get(n, 2), n))


def method_info(method: str) -> tuple[str, str]:
    """(description, kind) of a registered fusion method (KeyError for an unknown one)."""
    from ..fusion.registry import get_method

    m = get_method(method)
    return m.description, m.kind


@st.cache_resource(max_entries=16, show_spinner=False)
def fusion_stack(dataset: str, ver: str, models: tuple[str, ...], split: str):
    """The (M, n, C) stack of one selection and split, prepared once for the live sliders."""
    from ..fusion.live import FusionStack

    return FusionStack.from_outputs(outputs(dataset, ver), list(models), split)


@st.cache_resource(max_entries=64, show_spinner=False)
def fused(dataset: str, ver: str, method: str, config_json: str):
    """:func:`pinterest_mm.fusion.fuse` with settings chosen on validation (cached)."""
    from ..fusion.registry import fuse

    return fuse(outputs(dataset, ver), method, version=ver, **json.loads(config_json))


def fuse_cached(dataset: str, ver: str, method: str, **config):
    """Like :func:`fused` with keyword config (None values dropped)."""
    cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items() if v is not None}
    return fused(dataset, ver, method, json.dumps(cfg, sort_keys=True))


# ----------------------------------------------------------------------------- metrics
@st.cache_data(max_entries=32, show_spinner=False)
def single_model_table(dataset: str, ver: str) -> pd.DataFrame:
    """Per model: family, modality, val/test accuracy with Wilson 95 % bounds, chosen params, build time.

    Ordered by validation accuracy, ties by name (the best single model rule)."""
    out = outputs(dataset, ver)
    rows = []
    for name, info in out.models.items():
        params = {k: v for k, v in (info.params or {}).items() if not isinstance(v, (list, dict))}
        vlo, vhi = stats.accuracy_interval(info.val_accuracy, len(out.y["val"]))
        tlo, thi = stats.accuracy_interval(info.test_accuracy, len(out.y["test"]))
        rows.append({
            "model": name, "family": info.family, "modality": info.modality,
            "val accuracy": info.val_accuracy, "val accuracy 95% low": vlo, "val accuracy 95% high": vhi,
            "test accuracy": info.test_accuracy, "test accuracy 95% low": tlo, "test accuracy 95% high": thi,
            "cv score": info.cv_score, "build s": info.seconds,
            "hyperparameters": json.dumps(params, default=str)[:300],
        })
    df = pd.DataFrame(rows)
    order = sorted(range(len(df)), key=lambda i: (-df["val accuracy"].iloc[i], df["model"].iloc[i]))
    return df.iloc[order].reset_index(drop=True)


@st.cache_data(max_entries=32, show_spinner=False)
def topk_curves(dataset: str, ver: str, split: str) -> dict[str, list[float]]:
    """Top-k (k = 1..10) of every single model on a split."""
    out = outputs(dataset, ver)
    return {
        m: metrics.topk_curve(p[split], out.y[split]).tolist()
        for m, p in out.probs.items() if split in p
    }


@st.cache_data(max_entries=32, show_spinner=False)
def per_class_f1(dataset: str, ver: str, split: str) -> pd.DataFrame:
    """F1 per class (rows) and model (columns) on a split."""
    out = outputs(dataset, ver)
    cols = {}
    for m, p in out.probs.items():
        if split in p:
            cols[m] = metrics.per_class(out.y[split], p[split].argmax(1), out.n_classes).f1
    return pd.DataFrame(cols, index=out.classes)


# ----------------------------------------------------------------------------- images
@st.cache_data(max_entries=4096, show_spinner=False)
def thumbnail(path: str, px: int = THUMB_PX) -> bytes | None:
    """A downsized JPEG of the image at ``path``, upright by its EXIF tag (None when unreadable)."""
    from PIL import Image

    from ..data.clean import upright

    try:
        with Image.open(path) as im:
            im.seek(0)
            im.draft("RGB", (px * 2, px * 2))
            im = upright(im)  # after draft: decodes at the reduced scale, then turns
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            im = im.convert("RGB")
            im.thumbnail((px, px))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=85)
            return buf.getvalue()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None  # missing, truncated, not an image, a decompression bomb


# ----------------------------------------------------------------------------- prediction
@st.cache_resource(max_entries=8, show_spinner="Loading the model ...")
def predictor(dataset: str, ver: str, model: str):
    """A model that predicts new pins (:func:`pinterest_mm.models.load_predictor`), cached."""
    # lazy: imports the model code (torch) only on the Predict page
    from ..models import load_predictor

    pred = load_predictor(get_store(), dataset, model)
    freeze_long_lived()
    return pred


def freeze_long_lived() -> None:
    """Move every object alive now (libraries, loaded models) out of the garbage collector's
    sight (``gc.freeze``). torch and a model add ~60k tracked objects: each automatic full
    collection then walks them, ~100 ms holding the GIL that every session shares. Objects
    created later are collected as usual; frozen ones are released at exit."""
    gc.freeze()
    _unfreeze_at_exit()


@functools.cache
def _unfreeze_at_exit() -> None:
    """Register, once, an unfreeze at exit, so exit-time cleanup sees them (no leak reports)."""
    atexit.register(gc.unfreeze)


def load_predictors(dataset: str, ver: str, models: list[str]) -> dict:
    """Model name to a cached predictor, or to the reason it cannot be loaded (str)."""
    from ..predict import load_predictors as _load

    return _load(models, lambda m: predictor(dataset, ver, m))


def safe_error(exc: BaseException) -> str:
    """A one-line message for an exception (no traceback)."""
    return one_line(exc)


# ----------------------------------------------------------------------------- overview counts
@st.cache_data(max_entries=8, show_spinner=False)
def category_counts(dataset: str, ver: str) -> pd.DataFrame:
    """:func:`pinterest_mm.data.counts.category_counts` of the dataset (cached)."""
    return counts.category_counts(manifest_rows(dataset, ver))


@st.cache_data(max_entries=8, show_spinner=False)
def user_table(dataset: str, ver: str) -> pd.DataFrame:
    """:func:`pinterest_mm.data.counts.user_table` of the dataset (cached)."""
    return counts.user_table(manifest_rows(dataset, ver))


@st.cache_data(max_entries=64, show_spinner=False)
def user_category_counts(dataset: str, ver: str, user: str) -> pd.DataFrame:
    """:func:`pinterest_mm.data.counts.user_category_counts` (cached)."""
    return counts.user_category_counts(manifest_rows(dataset, ver), user)


@st.cache_data(max_entries=8, show_spinner=False)
def drop_reasons(dataset: str, ver: str) -> pd.DataFrame:
    """:func:`pinterest_mm.data.counts.drop_reasons` of the dataset (cached)."""
    return counts.drop_reasons(manifest_rows(dataset, ver))


def method_fields(method: str) -> set[str]:
    """Config field names of a registered fusion method (KeyError for an unknown one)."""
    import dataclasses

    from ..fusion.registry import get_method

    return {f.name for f in dataclasses.fields(get_method(method).config_cls)}


def best_single(out: Outputs) -> str | None:
    """The single model with the best validation accuracy (ties: name)."""
    from ..compare import best_single as _best

    return _best(out)
