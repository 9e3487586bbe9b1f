"""Computed results the pages show: fusion comparisons, agreement, calibration, the thesis
report and user profiles, cached per dataset cache version (``Store.version``).

Every function composes :mod:`pinterest_mm` functions (fusion registry, metrics, thesis,
users) over the cached :func:`pinterest_mm.ui.data.outputs`.
"""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from .. import metrics
from ..outputs import Outputs
from .data import best_single, fuse_cached, fused, method_fields, outputs, safe_error, thesis_selection


def default_config(out: Outputs, method: str, setting=None) -> dict:
    """The config a method runs with here: the view's setting, else the thesis defaults.

    ``models`` is always explicit (the thesis selection when the setting names none); for
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


def _short(chosen: dict) -> str:
    parts = []
    for k, v in chosen.items():
        if isinstance(v, float):
            parts.append(f"{k}={v:g}")
        elif isinstance(v, (str, int)):
            parts.append(f"{k}={v}")
        elif isinstance(v, list) and k == "models":
            parts.append(f"{len(v)} models")
    return ", ".join(parts)


@st.cache_data(max_entries=32, show_spinner=False)
def compare_methods(dataset: str, ver: str, split: str, methods: tuple[str, ...], n_boot: int = 1000) -> dict:
    """Every method (settings chosen on validation) vs the best single model on ``split``.

    Returns:
        ``table`` (records: method, chosen, val/test accuracy, accuracy on split, delta,
        McNemar p, bootstrap CI), ``topk`` (method -> curve on split), ``configs``
        (method -> config + chosen), ``errors`` (method -> message), ``best`` (model name).
    """
    out = outputs(dataset, ver)
    y = out.y[split]
    best = best_single(out)
    pb = out.probs[best][split]
    pred_b = pb.argmax(1)
    rows, topk, configs, errors = [], {}, {}, {}
    for m in methods:
        try:
            r = fuse_cached(dataset, ver, m, **default_config(out, m))
        except Exception as exc:
            errors[m] = safe_error(exc)
            continue
        p = r.val_probs if split == "val" else r.test_probs
        pred = p.argmax(1)
        mc = metrics.mcnemar(pred, pred_b, y)
        bs = metrics.paired_bootstrap(pred, pred_b, y, n_boot=n_boot)
        acc = metrics.accuracy(p, y)
        rows.append({
            "method": m, "chosen on validation": _short(r.chosen),
            "val accuracy": r.val_accuracy, "test accuracy": r.test_accuracy,
            f"{split} top-2": float(metrics.topk_curve(p, y, 2)[1]),
            f"Δ vs {best}": acc - metrics.accuracy(pb, y),
            "McNemar p": mc.p_value, "CI low": bs.low, "CI high": bs.high,
        })
        topk[m] = metrics.topk_curve(p, y).tolist()
        configs[m] = {"config": r.config, "chosen": r.chosen}
    return {"table": rows, "topk": topk, "configs": configs, "errors": errors, "best": best}


@st.cache_data(max_entries=32, show_spinner=False)
def agreement_matrix(dataset: str, ver: str, split: str, models: tuple[str, ...]) -> dict:
    """Pairwise share of pins both models get wrong, and share predicted identically."""
    out = outputs(dataset, ver)
    y = out.y[split]
    preds = {m: out.probs[m][split].argmax(1) for m in models}
    M = len(models)
    both_wrong, same = np.zeros((M, M)), np.zeros((M, M))
    for i, a in enumerate(models):
        for j, b in enumerate(models):
            ag = metrics.agreement(preds[a], preds[b], y)
            both_wrong[i, j] = ag.rates()["both_wrong"]
            same[i, j] = float((preds[a] == preds[b]).mean()) if len(y) else 0.0
    return {"both_wrong": both_wrong, "same": same}


@st.cache_data(max_entries=32, show_spinner=False)
def calibrations(dataset: str, ver: str, split: str, methods: tuple[str, ...]) -> dict:
    """Reliability data (``metrics.Calibration``) of the best single model and each method."""
    out = outputs(dataset, ver)
    y = out.y[split]
    best = best_single(out)
    res = {f"best single ({best})": metrics.calibration(out.probs[best][split], y, n_bins=10)}
    for m in methods:
        try:
            r = fuse_cached(dataset, ver, m, **default_config(out, m))
        except Exception:
            continue
        res[m] = metrics.calibration(r.val_probs if split == "val" else r.test_probs, y, n_bins=10)
    return res


@st.cache_data(max_entries=8, show_spinner=False)
def thesis_report(dataset: str, ver: str, methods: tuple[str, ...], feature_cross_pairs: str = "top2") -> dict:
    """``pinterest_mm.thesis.thesis_report`` (tables + claims), cached per cache version."""
    from .. import thesis

    rep = thesis.thesis_report(outputs(dataset, ver), version=ver, methods=list(methods),
                               feature_cross_pairs=feature_cross_pairs)
    try:
        rep["text"] = thesis.format_thesis_report(rep)
    except Exception:
        rep["text"] = ""
    return rep


def setting_config_json(dataset: str, ver: str, setting) -> str:
    """The view setting's fusion config as a JSON string (a cache key)."""
    out = outputs(dataset, ver)
    cfg = default_config(out, setting.method, setting)
    return json.dumps({k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}, sort_keys=True)


@st.cache_resource(max_entries=16, show_spinner=False)
def user_report(dataset: str, ver: str, method: str, config_json: str, splits: tuple[str, ...],
                mode: str = "mean", k: int = 3):
    """``pinterest_mm.users.user_report`` of a fusion's probabilities (cached)."""
    from ..users import user_report as _report

    r = fused(dataset, ver, method, config_json)
    return _report(outputs(dataset, ver), {"val": r.val_probs, "test": r.test_probs},
                   splits=splits, mode=mode, k=k)
