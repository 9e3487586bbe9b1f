"""Computed results the pages show: fusion comparisons, agreement, calibration, the thesis
report and user profiles, cached per dataset cache version (``Store.version``).

Every function composes :mod:`pinterest_mm` functions (fusion registry, metrics, thesis,
users) over the cached :func:`pinterest_mm.ui.data.outputs`.
"""

from __future__ import annotations

import json

import streamlit as st

from .. import compare
from ..compare import RECOMMENDED
from ..outputs import Outputs
from .data import fuse_cached, fused, method_fields, outputs, safe_error, thesis_selection


def default_config(out: Outputs, method: str, setting=None) -> dict:
    """The config a method runs with here: the view's setting, else the thesis defaults.

    ``models`` is explicit (the thesis selection when the setting names none; the recommended
    ``ensemble`` then chooses among every built model, as the report does); for
    MM / lambda the setting's l / lambda is fixed when set, else chosen on validation.
    """
    fields = method_fields(method)
    cfg: dict = {}
    s = setting
    if method == "lambda":
        if s is not None and s.image_model in out.models:
            cfg["image_model"] = s.image_model
        if s is not None and s.text_model in out.models:
            cfg["text_model"] = s.text_model
        if s is not None and s.method == "lambda" and s.lam is not None:
            cfg["lam"] = float(s.lam)
        return cfg
    if method == RECOMMENDED and not (s is not None and s.models):
        return cfg  # the recommended ensemble chooses among every built model, as in the report
    if "models" in fields:
        models = list(s.models) if s is not None and s.models else thesis_selection(out)
        cfg["models"] = tuple(m for m in models if m in out.models)
    if method == "mm" and s is not None and s.method == "mm" and s.l is not None:
        cfg["l"] = float(s.l)
    return cfg


def current_fusion(dataset: str, ver: str, setting):
    """The FusionResult of the view's setting (method, models, l / lambda)."""
    out = outputs(dataset, ver)
    return fuse_cached(dataset, ver, setting.method, **default_config(out, setting.method, setting))


def _fit_all(dataset: str, ver: str, methods: tuple[str, ...]) -> tuple[dict, dict]:
    """(method -> FusionResult, method -> error message) with the default configs."""
    out = outputs(dataset, ver)
    fitted, errors = {}, {}
    for m in methods:
        try:
            fitted[m] = fuse_cached(dataset, ver, m, **default_config(out, m))
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:  # a method that cannot run here says why
            errors[m] = safe_error(exc)
    return fitted, errors


@st.cache_data(max_entries=32, show_spinner=False)
def compare_methods(dataset: str, ver: str, split: str, methods: tuple[str, ...], n_boot: int = 1000) -> dict:
    """:func:`pinterest_mm.compare.compare_methods` of every method (settings chosen on
    validation, default configs), plus ``errors`` (method -> message) for those that failed."""
    fitted, errors = _fit_all(dataset, ver, methods)
    return {**compare.compare_methods(outputs(dataset, ver), fitted, split, n_boot), "errors": errors}


@st.cache_data(max_entries=32, show_spinner=False)
def agreement_matrix(dataset: str, ver: str, split: str, models: tuple[str, ...]) -> dict:
    """:func:`pinterest_mm.compare.agreement_matrix` (cached)."""
    return compare.agreement_matrix(outputs(dataset, ver), split, list(models))


@st.cache_data(max_entries=32, show_spinner=False)
def calibrations(dataset: str, ver: str, split: str, methods: tuple[str, ...]) -> dict:
    """:func:`pinterest_mm.compare.calibrations` of the methods that can run (cached)."""
    fitted, _ = _fit_all(dataset, ver, methods)
    return compare.calibrations(outputs(dataset, ver), split, fitted)


@st.cache_data(max_entries=8, show_spinner=False)
def thesis_report(dataset: str, ver: str, methods: tuple[str, ...], feature_cross_pairs: str = "top2") -> dict:
    """``pinterest_mm.thesis.thesis_report`` (tables + claims), cached per cache version."""
    from .. import thesis

    rep = thesis.thesis_report(outputs(dataset, ver), version=ver, methods=list(methods),
                               feature_cross_pairs=feature_cross_pairs)
    rep["text"] = thesis.format_thesis_report(rep)
    return rep


def setting_config_json(dataset: str, ver: str, setting) -> str:
    """The view setting's fusion config as a JSON string (a cache key)."""
    out = outputs(dataset, ver)
    cfg = default_config(out, setting.method, setting)
    return json.dumps({k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}, sort_keys=True)


@st.cache_resource(max_entries=16, show_spinner=False)
def user_report(dataset: str, ver: str, method: str, config_json: str, splits: tuple[str, ...],
                mode: str = "mean", k: int = 3, min_pins: int = 1):
    """``pinterest_mm.users.user_report`` of a fusion's probabilities (cached); users with
    fewer than ``min_pins`` pins in ``splits`` are left out."""
    from ..users import user_report as _report

    r = fused(dataset, ver, method, config_json)
    return _report(outputs(dataset, ver), {"val": r.val_probs, "test": r.test_probs},
                   splits=splits, mode=mode, k=k, min_pins=min_pins)


@st.cache_resource(max_entries=16, show_spinner=False)
def topk_interests(dataset: str, ver: str, method: str, config_json: str):
    """:func:`pinterest_mm.topk_interests.topk_report` of a fusion's val and test probabilities
    (cached per fusion setting; a ValueError is raised, not cached)."""
    from ..topk_interests import topk_report

    r = fused(dataset, ver, method, config_json)
    return topk_report(outputs(dataset, ver), {"val": r.val_probs, "test": r.test_probs})


@st.cache_data(max_entries=8, show_spinner=False)
def unknown_words(dataset: str, ver: str) -> dict:
    """:func:`pinterest_mm.coverage.dataset_coverage` (model -> unknown-word counts and warning), cached."""
    from ..coverage import dataset_coverage
    from .data import get_store

    return dataset_coverage(get_store(), dataset)


@st.cache_data(max_entries=8, show_spinner=False)
def repeats(dataset: str, ver: str, k: int, methods: tuple[str, ...], _on_progress=None) -> dict:
    """:func:`pinterest_mm.repeats.run_repeats` with K re-splits, cached per cache version
    (``_on_progress(done, k, message)`` is called while it runs; not part of the key)."""
    from ..repeats import RepeatConfig, run_repeats
    from .data import get_store

    return run_repeats(get_store(), dataset, RepeatConfig(repeats=k, methods=methods),
                       outputs=outputs(dataset, ver), on_progress=_on_progress)
