"""Plotly figure builders. Each takes computed arrays or results and only draws.

Every figure is built in one go, ``go.Figure(data=[trace dicts], layout=layout dict)``:
plotly validates it once. Building it step by step (``add_trace``, ``update_layout``,
``update_xaxes``, ``add_vline``) validates again at each step and cost 2-3 times as much,
which matters on the Fusion lab, where a slider move redraws four figures.

Every label is text: category, user and model names come from data, and plotly renders a
subset of HTML in labels, so :func:`_figure` escapes titles, trace names, category axes, tick,
bar and hover texts and annotations (:func:`pinterest_mm.ui.text.plotly_text`). Builders pass
raw strings; templates (``hovertemplate``, ``texttemplate``) are code and left alone.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .text import plotly_text

FAMILY_COLORS = {
    "image": "#1f77b4",
    "word_embedding": "#2ca02c",
    "transformer": "#9467bd",
    "other": "#8c564b",
    "fusion": "#d62728",
}
_DASH = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
_PALETTE = ["#d62728", "#ff7f0e", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#8c564b",
            "#1f77b4", "#2ca02c", "#9467bd"]

_LEGEND_RIGHT = dict(orientation="v", x=1.01, xanchor="left", y=1.0, yanchor="top", font=dict(size=11))
_LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.22, x=0.0, xanchor="left", font=dict(size=11))


_TRACE_TEXT = ("name", "x", "y", "text", "hovertext")


def _as_text(v):
    """Escape a label or a list of labels; numbers and arrays pass unchanged."""
    if isinstance(v, str):
        return plotly_text(v)
    if isinstance(v, (list, tuple)) and v and any(isinstance(x, str) for x in v):
        return [plotly_text(x) if isinstance(x, str) else x for x in v]
    return v


def _safe_trace(trace: dict) -> dict:
    return {k: (_as_text(v) if k in _TRACE_TEXT else v) for k, v in trace.items()}


def _safe_layout(layout: dict) -> dict:
    """Axis titles and tick texts and annotation texts of ``layout``, escaped."""
    out = dict(layout)
    for k, v in layout.items():
        if k.startswith(("xaxis", "yaxis")) and isinstance(v, dict):
            axis = dict(v)
            if "ticktext" in axis:
                axis["ticktext"] = _as_text(list(axis["ticktext"]))
            if isinstance(axis.get("title"), str):
                axis["title"] = plotly_text(axis["title"])
            out[k] = axis
    if "annotations" in layout:
        out["annotations"] = [{**a, "text": _as_text(a.get("text", ""))} for a in layout["annotations"]]
    return out


def _figure(traces: list[dict], title: str, height: int = 380, **layout) -> go.Figure:
    """One figure from trace dicts (each with its ``type``) and layout keywords; every label
    in them is escaped (shown as text, not HTML)."""
    layout.setdefault("legend", _LEGEND_RIGHT)
    return go.Figure(data=[_safe_trace(t) for t in traces], layout=dict(
        title=dict(text=plotly_text(title), x=0.0, font=dict(size=15)),
        height=height, margin=dict(l=10, r=10, t=45, b=10), **_safe_layout(layout),
    ))


def before_after_bars(df: pd.DataFrame, title: str, label: str = "category") -> go.Figure:
    """Grouped horizontal bars of ``before`` and ``after`` counts per ``label``.

    Args:
        df: Columns ``label``, ``before``, ``after``.
    """
    df = df.sort_values("before")
    y = df[label].tolist()
    return _figure([
        dict(type="bar", y=y, x=df["before"].tolist(), name="before cleaning", orientation="h",
             marker_color="#bbbbbb"),
        dict(type="bar", y=y, x=df["after"].tolist(), name="after cleaning", orientation="h",
             marker_color="#1f77b4"),
    ], title, height=max(300, 22 * len(df) + 120), barmode="group", xaxis=dict(title="pins"))


def series_colors(names: Sequence[str], taken: Sequence[str] = ()) -> dict[str, str]:
    """One distinct colour per name (fusion methods), none of them in ``taken`` (family colours in
    the same chart); the same names get the same colours on every chart of a page."""
    import plotly.colors as pc

    pool = [c for c in dict.fromkeys(_PALETTE + list(pc.qualitative.Dark24)) if c.lower() not in
            {t.lower() for t in taken}]
    return {n: pool[i % len(pool)] for i, n in enumerate(names)}


def topk_figure(
    curves: Mapping[str, Sequence[float]],
    families: Mapping[str, str] | None = None,
    title: str = "Top-k accuracy",
    bold: Sequence[str] = (),
    colors: Mapping[str, str] | None = None,
) -> go.Figure:
    """Top-k accuracy lines, k = 1..len(curve); colour by family, ``bold`` names thick.

    Lines without a family (fusion methods) take ``colors[name]``, else a palette colour that no
    family line of the chart uses.
    """
    traces = []
    seen: dict[str, int] = {}
    fams = {(families or {}).get(n) for n in curves} - {None}
    free_colors = series_colors([n for n in curves if (families or {}).get(n) is None],
                                [FAMILY_COLORS.get(f, "#7f7f7f") for f in fams])
    for name, curve in curves.items():
        fam = (families or {}).get(name)
        if fam is None:  # no family: a fusion method, own colour
            color, dash = (colors or {}).get(name, free_colors[name]), "solid"
        else:
            i = seen.get(fam, 0)
            seen[fam] = i + 1
            color, dash = FAMILY_COLORS.get(fam, "#7f7f7f"), _DASH[i % len(_DASH)]
        traces.append(dict(
            type="scatter", x=list(range(1, len(curve) + 1)), y=[float(v) for v in curve],
            mode="lines+markers", name=name,
            line=dict(color=color, width=4 if name in bold else 2, dash="solid" if name in bold else dash),
        ))
    axes = dict(xaxis=dict(title="k", dtick=1), yaxis=dict(title="top-k accuracy", range=[0, 1.02]),
                showlegend=True)
    if len(curves) > 3:
        return _figure(traces, title, height=380 + 18 * ((len(curves) + 1) // 2), legend=_LEGEND_BELOW,
                       **axes)
    return _figure(traces, title, **axes)


def interval_error(df: pd.DataFrame, split: str) -> dict | None:
    """Plotly ``error_y`` of ``{split} accuracy`` from its ``95% low`` / ``95% high`` columns, or None."""
    lo, hi, v = f"{split} accuracy 95% low", f"{split} accuracy 95% high", f"{split} accuracy"
    if lo not in df or hi not in df:
        return None
    return dict(type="data", symmetric=False, array=(df[hi] - df[v]).clip(lower=0).tolist(),
                arrayminus=(df[v] - df[lo]).clip(lower=0).tolist(), color="#444", thickness=1.2, width=4)


def accuracy_bars(df: pd.DataFrame, title: str = "Accuracy per model") -> go.Figure:
    """Grouped bars of validation and test accuracy; ``df`` has model, val/test accuracy and,
    when present, their Wilson 95 % bounds (``val accuracy 95% low`` ...) drawn as error bars."""
    x = df["model"].tolist()
    return _figure([
        dict(type="bar", x=x, y=df["val accuracy"].tolist(), name="validation", marker_color="#9ecae1",
             error_y=interval_error(df, "val")),
        dict(type="bar", x=x, y=df["test accuracy"].tolist(), name="test", marker_color="#08519c",
             error_y=interval_error(df, "test")),
    ], title, barmode="group", yaxis=dict(title="accuracy (bars: Wilson 95 % interval)", range=[0, 1]))


def heatmap(
    mat: np.ndarray | pd.DataFrame,
    x: Sequence[str],
    y: Sequence[str],
    title: str,
    zmax: float | None = None,
    fmt: str = ".2f",
    colorscale: str = "Blues",
    height: int | None = None,
) -> go.Figure:
    """An annotated heatmap (rows ``y``, columns ``x``)."""
    z = np.asarray(mat, dtype=float)
    return _figure([dict(
        type="heatmap", z=z, x=list(x), y=list(y), colorscale=colorscale, zmin=0, zmax=zmax,
        texttemplate="%{z:" + fmt + "}", hovertemplate="%{y} / %{x}: %{z:" + fmt + "}<extra></extra>",
    )], title, height=height or max(320, 26 * len(y) + 140), yaxis=dict(autorange="reversed"))


def confusion_figure(
    cm: np.ndarray,
    classes: Sequence[str],
    normalize: str,
    title: str,
    selected: tuple[int, int] | None = None,
) -> go.Figure:
    """Confusion matrix (rows true, columns predicted) with a clickable point per cell.

    Plotly heatmaps emit no selection events in Streamlit, so an invisible marker sits on
    every cell; its ``customdata`` is (true, predicted) class index.

    Args:
        cm: (C, C) counts or shares, rows true class, columns predicted class.
        selected: (true, predicted) cell outlined in red.
    """
    C = len(classes)
    z = np.asarray(cm, dtype=float)
    fmt = "d" if normalize == "none" else ".2f"
    text = [[("" if v == 0 else (f"{int(v)}" if fmt == "d" else f"{v:.2f}")) for v in row] for row in z]
    ti, pj = np.meshgrid(np.arange(C), np.arange(C), indexing="ij")
    custom = np.stack([ti.ravel(), pj.ravel()], 1)
    shapes = []
    if selected is not None:
        a, b = selected
        shapes.append(dict(type="rect", x0=b - 0.5, x1=b + 0.5, y0=a - 0.5, y1=a + 0.5,
                           line=dict(color="#d62728", width=3)))
    short = [c if len(c) <= 18 else c[:17] + "…" for c in classes]
    ticks = dict(tickmode="array", tickvals=list(range(C)), ticktext=short, showgrid=False, zeroline=False)
    return _figure([
        dict(type="heatmap", z=z, x=list(range(C)), y=list(range(C)), colorscale="Blues", zmin=0,
             text=text, texttemplate="%{text}", hoverinfo="skip", showscale=False),
        dict(type="scatter", x=pj.ravel(), y=ti.ravel(), mode="markers",
             marker=dict(size=max(8, int(360 / max(C, 1))), color="rgba(0,0,0,0)", symbol="square"),
             customdata=custom,
             hovertext=[f"true {classes[a]} → predicted {classes[b]}: {text[a][b] or 0}" for a, b in custom],
             hoverinfo="text", showlegend=False, name="cells"),
    ], title, height=max(380, 24 * C + 180), clickmode="event+select", dragmode=False, shapes=shapes,
        xaxis=dict(title="predicted", tickangle=-45, range=[-0.5, C - 0.5], **ticks),
        yaxis=dict(title="true", range=[C - 0.5, -0.5], **ticks))


def weights_bar(weights: Mapping[str, float], families: Mapping[str, str], title: str) -> go.Figure:
    """One bar per model weight, coloured by family."""
    names = list(weights)
    values = [float(weights[n]) for n in names]
    return _figure([dict(
        type="bar", x=names, y=values,
        marker_color=[FAMILY_COLORS.get(families.get(n, "other"), "#7f7f7f") for n in names],
        text=[f"{v:.3f}" for v in values], textposition="outside",
    )], title, height=320, yaxis=dict(title="weight", range=[0, max(0.05, max(values + [0.0]) * 1.2)]))


def grid_figure(
    xs: Sequence[float],
    val: Sequence[float],
    test: Sequence[float] | None,
    chosen: float | None,
    current: float | None,
    knob: str,
    title: str,
) -> go.Figure:
    """Accuracy against the fusion knob (l or lambda); chosen-on-validation value starred,
    the ``current`` value a dotted vertical line."""
    xs = list(xs)
    traces = [dict(type="scatter", x=xs, y=list(val), mode="lines+markers", name="validation",
                   line=dict(color="#9ecae1"))]
    if test is not None:
        traces.append(dict(type="scatter", x=xs, y=list(test), mode="lines+markers", name="test",
                           line=dict(color="#08519c")))
    if chosen is not None and chosen in xs:
        traces.append(dict(type="scatter", x=[chosen], y=[val[xs.index(chosen)]], mode="markers+text",
                           name="chosen on validation", marker=dict(symbol="star", size=16, color="#d62728"),
                           text=["chosen on val"], textposition="top center"))
    shapes = []
    if current is not None:
        shapes.append(dict(type="line", x0=current, x1=current, xref="x", y0=0, y1=1, yref="y domain",
                           line=dict(color="#555", dash="dot")))
    return _figure(traces, title, height=300, shapes=shapes, xaxis=dict(title=knob),
                   yaxis=dict(title="accuracy", range=[0, 1.08]))


def method_bars(df: pd.DataFrame, title: str, ref: float | None = None) -> go.Figure:
    """Validation and test accuracy per method (thesis Fig. 4.4); ``ref`` = best single (test).

    The test values are written inside the bars (rotated), and the reference line is named in the
    title, so no label meets the line, an error bar or another label.
    """
    x, test = df["method"].tolist(), df["test accuracy"].tolist()
    shapes = []
    if ref is not None:
        shapes.append(dict(type="line", y0=ref, y1=ref, yref="y", x0=0, x1=1, xref="x domain",
                           line=dict(color="#333", dash="dash")))
        title = f"{title} · dashed line: best single model, test {ref:.3f}"
    return _figure([
        dict(type="bar", x=x, y=df["val accuracy"].tolist(), name="validation", marker_color="#9ecae1",
             error_y=interval_error(df, "val")),
        dict(type="bar", x=x, y=test, name="test", marker_color="#d62728",
             text=[f"{v:.3f}" for v in test], textposition="inside", insidetextanchor="middle",
             textangle=-90, textfont=dict(color="white"), error_y=interval_error(df, "test")),
    ], title, barmode="group", height=400, shapes=shapes,
        yaxis=dict(title="accuracy (bars: Wilson 95 % interval)", range=[0, 1.05]))


def reliability_figure(cals: Mapping[str, object], title: str, colors: Mapping[str, str] | None = None) -> go.Figure:
    """Reliability diagrams: mean confidence vs accuracy per bin (``metrics.Calibration``);
    ``colors`` gives a name its colour (the page's other charts use the same)."""
    traces = [dict(type="scatter", x=[0, 1], y=[0, 1], mode="lines", name="perfect",
                   line=dict(color="#999", dash="dash"))]
    for name, cal in cals.items():
        count = np.asarray(cal.count)
        ok = count > 0
        traces.append(dict(
            type="scatter", x=np.asarray(cal.confidence)[ok], y=np.asarray(cal.accuracy)[ok],
            mode="lines+markers", name=f"{name} (ECE {cal.ece:.3f})",
            marker=dict(size=5 + 10 * np.sqrt(count[ok] / max(1, count.max()))),
            **({"line": dict(color=colors[name])} if colors and name in colors else {}),
        ))
    return _figure(traces, title, height=420 + 18 * ((len(cals) + 2) // 2), legend=_LEGEND_BELOW,
                   xaxis=dict(title="confidence", range=[0, 1.02]),
                   yaxis=dict(title="accuracy", range=[0, 1.02]))


def profile_bars(classes: Sequence[str], true_share: Sequence[float], pred_share: Sequence[float],
                 title: str) -> go.Figure:
    """A user's interest profile: share of pins per class, true vs predicted."""
    y = list(classes)
    return _figure([
        dict(type="bar", y=y, x=list(true_share), name="true", orientation="h", marker_color="#2ca02c"),
        dict(type="bar", y=y, x=list(pred_share), name="predicted", orientation="h", marker_color="#ff7f0e"),
    ], title, height=max(300, 24 * len(classes) + 120), barmode="group",
        xaxis=dict(title="share of the user's pins"), yaxis=dict(autorange="reversed"))


def votes_figure(votes: Mapping[str, Sequence[tuple[str, float]]], title: str,
                 families: Mapping[str, str] | None = None) -> go.Figure:
    """Each model's top-k classes as horizontal bars, one row of bars per model.

    Args:
        votes: Model name to [(class, probability), ...] (best first).
    """
    traces = []
    for name, items in votes.items():
        items = list(items)
        fam = (families or {}).get(name, "fusion")
        traces.append(dict(
            type="bar", y=[f"{name} · {c}" for c, _ in items], x=[float(p) for _, p in items],
            orientation="h", name=name, marker_color=FAMILY_COLORS.get(fam, "#7f7f7f"),
            text=[f"{p:.2f}" for _, p in items], textposition="outside",
        ))
    n = sum(len(v) for v in votes.values())
    return _figure(traces, title, height=max(260, 22 * n + 120), showlegend=False,
                   xaxis=dict(title="probability", range=[0, 1.1]), yaxis=dict(autorange="reversed"))


def share_bar(parts: Mapping[str, float], title: str) -> go.Figure:
    """A single stacked bar of shares (e.g. image vs text weight of the fusion)."""
    colors = {"image": FAMILY_COLORS["image"], "text": FAMILY_COLORS["word_embedding"]}
    return _figure([
        dict(type="bar", y=[""], x=[v], name=f"{k} {v:.0%}", orientation="h", marker_color=colors.get(k),
             text=[f"{k} {v:.0%}"], textposition="inside")
        for k, v in parts.items()
    ], title, height=150, barmode="stack", showlegend=False, xaxis=dict(range=[0, 1], tickformat=".0%"))


def histogram(values: Sequence[float], title: str, xtitle: str) -> go.Figure:
    """A histogram of per-item values (e.g. per-user accuracy)."""
    return _figure([dict(type="histogram", x=list(values), nbinsx=20, marker_color="#1f77b4")], title,
                   height=300, xaxis=dict(title=xtitle), yaxis=dict(title="count"))


def training_curve_figure(curve, title: str) -> go.Figure:
    """A :class:`~pinterest_mm.curves.TrainingCurve`: accuracies on the left axis, a train
    loss (when recorded) on the right; the kept x (chosen C, best epoch) as a star."""
    traces = []
    for i, (name, ys) in enumerate(curve.series.items()):
        loss = "loss" in name
        traces.append(dict(type="scatter", x=list(curve.x), y=list(ys), mode="lines+markers", name=name,
                           yaxis="y2" if loss else "y", line=dict(color="#ff7f0e" if loss else "#08519c",
                                                                 dash="dot" if loss else "solid")))
    first = next(iter(curve.series.items()), None)
    if first is not None and curve.chosen is not None and curve.chosen in curve.x:
        traces.append(dict(type="scatter", x=[curve.chosen], y=[first[1][list(curve.x).index(curve.chosen)]],
                           mode="markers", name="kept", marker=dict(symbol="star", size=16, color="#d62728")))
    ticks = dict(tickmode="array", tickvals=list(curve.x), ticktext=[f"{v:g}" for v in curve.x])
    layout = dict(xaxis=dict(title=curve.x_title, type="log" if curve.log_x else "linear", **ticks),
                  yaxis=dict(title="accuracy"))
    if any("loss" in n for n in curve.series):
        layout["yaxis2"] = dict(title="mean train loss", overlaying="y", side="right", showgrid=False)
    return _figure(traces, title, height=320, legend=_LEGEND_BELOW, **layout)
