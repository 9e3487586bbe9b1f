"""Plotly figure builders. Each takes computed arrays or results and only draws."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

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


_LEGEND_BELOW = dict(orientation="h", yanchor="top", y=-0.22, x=0.0, xanchor="left", font=dict(size=11))


def _layout(fig: go.Figure, title: str, height: int = 380, **kw) -> go.Figure:
    legend = kw.pop("legend", dict(orientation="v", x=1.01, xanchor="left", y=1.0, yanchor="top",
                                   font=dict(size=11)))
    fig.update_layout(
        title=dict(text=title, x=0.0, font=dict(size=15)),
        height=height, margin=dict(l=10, r=10, t=45, b=10), legend=legend, **kw,
    )
    return fig


def before_after_bars(df: pd.DataFrame, title: str, label: str = "category") -> go.Figure:
    """Grouped horizontal bars of ``before`` and ``after`` counts per ``label``.

    Args:
        df: Columns ``label``, ``before``, ``after``.
    """
    df = df.sort_values("before")
    fig = go.Figure([
        go.Bar(y=df[label], x=df["before"], name="before cleaning", orientation="h", marker_color="#bbbbbb"),
        go.Bar(y=df[label], x=df["after"], name="after cleaning", orientation="h", marker_color="#1f77b4"),
    ])
    return _layout(fig, title, height=max(300, 22 * len(df) + 120), barmode="group",
                   xaxis_title="pins")


def topk_figure(
    curves: Mapping[str, Sequence[float]],
    families: Mapping[str, str] | None = None,
    title: str = "Top-k accuracy",
    bold: Sequence[str] = (),
) -> go.Figure:
    """Top-k accuracy lines, k = 1..len(curve); colour by family, ``bold`` names thick."""
    fig = go.Figure()
    seen: dict[str, int] = {}
    free = 0
    for name, curve in curves.items():
        fam = (families or {}).get(name)
        if fam is None:  # no family: a fusion method, own colour
            color, dash = _PALETTE[free % len(_PALETTE)], "solid"
            free += 1
        else:
            i = seen.get(fam, 0)
            seen[fam] = i + 1
            color, dash = FAMILY_COLORS.get(fam, "#7f7f7f"), _DASH[i % len(_DASH)]
        k = np.arange(1, len(curve) + 1)
        fig.add_trace(go.Scatter(
            x=k, y=list(curve), mode="lines+markers", name=name,
            line=dict(color=color, width=4 if name in bold else 2, dash="solid" if name in bold else dash),
        ))
    fig.update_layout(showlegend=True)
    fig.update_xaxes(title="k", dtick=1)
    fig.update_yaxes(title="top-k accuracy", range=[0, 1.02])
    if len(curves) > 3:
        return _layout(fig, title, height=380 + 18 * ((len(curves) + 1) // 2), legend=_LEGEND_BELOW)
    return _layout(fig, title)


def accuracy_bars(df: pd.DataFrame, title: str = "Accuracy per model") -> go.Figure:
    """Grouped bars of validation and test accuracy; ``df`` has model, val/test accuracy."""
    fig = go.Figure([
        go.Bar(x=df["model"], y=df["val accuracy"], name="validation", marker_color="#9ecae1"),
        go.Bar(x=df["model"], y=df["test accuracy"], name="test", marker_color="#08519c"),
    ])
    fig.update_yaxes(title="accuracy", range=[0, 1])
    return _layout(fig, title, barmode="group")


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
    fig = go.Figure(go.Heatmap(
        z=z, x=list(x), y=list(y), colorscale=colorscale, zmin=0, zmax=zmax,
        texttemplate="%{z:" + fmt + "}", hovertemplate="%{y} / %{x}: %{z:" + fmt + "}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=height or max(320, 26 * len(y) + 140))


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
    """
    C = len(classes)
    z = np.asarray(cm, dtype=float)
    fmt = "d" if normalize == "none" else ".2f"
    text = [[("" if v == 0 else (f"{int(v)}" if fmt == "d" else f"{v:.2f}")) for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=z, x=list(range(C)), y=list(range(C)), colorscale="Blues", zmin=0,
        text=text, texttemplate="%{text}", hoverinfo="skip", showscale=False,
    ))
    ti, pj = np.meshgrid(np.arange(C), np.arange(C), indexing="ij")
    custom = np.stack([ti.ravel(), pj.ravel()], 1)
    fig.add_trace(go.Scatter(
        x=pj.ravel(), y=ti.ravel(), mode="markers",
        marker=dict(size=max(8, int(360 / max(C, 1))), color="rgba(0,0,0,0)", symbol="square"),
        customdata=custom,
        hovertext=[f"true {classes[a]} → predicted {classes[b]}: {text[a][b] or 0}" for a, b in custom],
        hoverinfo="text", showlegend=False, name="cells",
    ))
    if selected is not None:
        a, b = selected
        fig.add_shape(type="rect", x0=b - 0.5, x1=b + 0.5, y0=a - 0.5, y1=a + 0.5,
                      line=dict(color="#d62728", width=3))
    short = [c if len(c) <= 18 else c[:17] + "…" for c in classes]
    fig.update_xaxes(title="predicted", tickmode="array", tickvals=list(range(C)), ticktext=short,
                     tickangle=-45, range=[-0.5, C - 0.5], showgrid=False, zeroline=False)
    fig.update_yaxes(title="true", tickmode="array", tickvals=list(range(C)), ticktext=short,
                     range=[C - 0.5, -0.5], showgrid=False, zeroline=False)
    return _layout(fig, title, height=max(380, 24 * C + 180), clickmode="event+select",
                   dragmode=False)


def weights_bar(weights: Mapping[str, float], families: Mapping[str, str], title: str) -> go.Figure:
    """One bar per model weight, coloured by family."""
    names = list(weights)
    fig = go.Figure(go.Bar(
        x=names, y=[weights[n] for n in names],
        marker_color=[FAMILY_COLORS.get(families.get(n, "other"), "#7f7f7f") for n in names],
        text=[f"{weights[n]:.3f}" for n in names], textposition="outside",
    ))
    top = max([weights[n] for n in names] + [0.0])
    fig.update_yaxes(title="weight", range=[0, max(0.05, top * 1.2)])
    return _layout(fig, title, height=320)


def grid_figure(
    xs: Sequence[float],
    val: Sequence[float],
    test: Sequence[float] | None,
    chosen: float | None,
    current: float | None,
    knob: str,
    title: str,
) -> go.Figure:
    """Accuracy against the fusion knob (l or lambda); chosen-on-validation value starred."""
    fig = go.Figure(go.Scatter(x=list(xs), y=list(val), mode="lines+markers", name="validation",
                               line=dict(color="#9ecae1")))
    if test is not None:
        fig.add_trace(go.Scatter(x=list(xs), y=list(test), mode="lines+markers", name="test",
                                 line=dict(color="#08519c")))
    if chosen is not None and chosen in list(xs):
        i = list(xs).index(chosen)
        fig.add_trace(go.Scatter(x=[chosen], y=[val[i]], mode="markers+text", name="chosen on validation",
                                 marker=dict(symbol="star", size=16, color="#d62728"),
                                 text=["chosen on val"], textposition="top center"))
    if current is not None:
        fig.add_vline(x=current, line=dict(color="#555", dash="dot"))
    fig.update_xaxes(title=knob)
    fig.update_yaxes(title="accuracy", range=[0, 1.08])
    return _layout(fig, title, height=300)


def method_bars(df: pd.DataFrame, title: str, ref: float | None = None) -> go.Figure:
    """Validation and test accuracy per method (thesis Fig. 4.4); ``ref`` = best single."""
    fig = go.Figure([
        go.Bar(x=df["method"], y=df["val accuracy"], name="validation", marker_color="#9ecae1"),
        go.Bar(x=df["method"], y=df["test accuracy"], name="test", marker_color="#d62728",
               text=[f"{v:.3f}" for v in df["test accuracy"]], textposition="outside"),
    ])
    if ref is not None:
        fig.add_hline(y=ref, line=dict(color="#333", dash="dash"),
                      annotation_text="best single model (test)", annotation_position="top left")
    fig.update_yaxes(title="accuracy", range=[0, 1.05])
    return _layout(fig, title, barmode="group", height=400)


def reliability_figure(cals: Mapping[str, object], title: str) -> go.Figure:
    """Reliability diagrams: mean confidence vs accuracy per bin (``metrics.Calibration``)."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect",
                               line=dict(color="#999", dash="dash")))
    for name, cal in cals.items():
        ok = np.asarray(cal.count) > 0
        fig.add_trace(go.Scatter(
            x=np.asarray(cal.confidence)[ok], y=np.asarray(cal.accuracy)[ok], mode="lines+markers",
            name=f"{name} (ECE {cal.ece:.3f})", marker=dict(size=5 + 10 * np.sqrt(
                np.asarray(cal.count)[ok] / max(1, np.asarray(cal.count).max()))),
        ))
    fig.update_xaxes(title="confidence", range=[0, 1.02])
    fig.update_yaxes(title="accuracy", range=[0, 1.02])
    return _layout(fig, title, height=420 + 18 * ((len(cals) + 2) // 2), legend=_LEGEND_BELOW)


def profile_bars(classes: Sequence[str], true_share: Sequence[float], pred_share: Sequence[float],
                 title: str) -> go.Figure:
    """A user's interest profile: share of pins per class, true vs predicted."""
    fig = go.Figure([
        go.Bar(y=list(classes), x=list(true_share), name="true", orientation="h", marker_color="#2ca02c"),
        go.Bar(y=list(classes), x=list(pred_share), name="predicted", orientation="h", marker_color="#ff7f0e"),
    ])
    fig.update_xaxes(title="share of the user's pins")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=max(300, 24 * len(classes) + 120), barmode="group")


def votes_figure(votes: Mapping[str, Sequence[tuple[str, float]]], title: str,
                 families: Mapping[str, str] | None = None) -> go.Figure:
    """Each model's top-k classes as horizontal bars, one row of bars per model.

    Args:
        votes: Model name to [(class, probability), ...] (best first).
    """
    fig = go.Figure()
    for name, items in votes.items():
        items = list(items)
        fam = (families or {}).get(name, "fusion")
        fig.add_trace(go.Bar(
            y=[f"{name} · {c}" for c, _ in items], x=[p for _, p in items], orientation="h",
            name=name, marker_color=FAMILY_COLORS.get(fam, "#7f7f7f"),
            text=[f"{p:.2f}" for _, p in items], textposition="outside",
        ))
    n = sum(len(v) for v in votes.values())
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title="probability", range=[0, 1.1])
    return _layout(fig, title, height=max(260, 22 * n + 120), showlegend=False)


def share_bar(parts: Mapping[str, float], title: str) -> go.Figure:
    """A single stacked bar of shares (e.g. image vs text weight of the fusion)."""
    colors = {"image": FAMILY_COLORS["image"], "text": FAMILY_COLORS["word_embedding"]}
    fig = go.Figure([
        go.Bar(y=[""], x=[v], name=f"{k} {v:.0%}", orientation="h", marker_color=colors.get(k),
               text=[f"{k} {v:.0%}"], textposition="inside")
        for k, v in parts.items()
    ])
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    return _layout(fig, title, height=150, barmode="stack", showlegend=False)


def histogram(values: Sequence[float], title: str, xtitle: str) -> go.Figure:
    """A histogram of per-item values (e.g. per-user accuracy)."""
    fig = go.Figure(go.Histogram(x=list(values), nbinsx=20, marker_color="#1f77b4"))
    fig.update_xaxes(title=xtitle)
    fig.update_yaxes(title="count")
    return _layout(fig, title, height=300)
