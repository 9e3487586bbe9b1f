"""The Users page's top-K interests section (seed 003 Table 1): one call, ``topk_section``.

The numbers come from :func:`pinterest_mm.topk_interests.topk_report`; this module only draws.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from ..topk_interests import VARIANTS, TopKReport
from . import results
from .text import md_text, plotly_text

_COLORS = {"fused": "#1f77b4", "fused + history": "#d62728"}


def topk_figure(rep: TopKReport) -> go.Figure:
    """F1 (solid) and hit rate with its 95 % Wilson interval (dotted) against K, per variant."""
    traces = []
    for v in VARIANTS:
        t = rep.table[rep.table["variant"] == v]
        k = t["K"].tolist()
        traces.append(dict(type="scatter", x=k, y=t["f1"].tolist(), mode="lines+markers",
                           name=plotly_text(f"{v}: F1"), line=dict(color=_COLORS[v])))
        traces.append(dict(type="scatter", x=k, y=t["hit_rate"].tolist(), mode="lines+markers",
                           name=plotly_text(f"{v}: hit rate"), line=dict(color=_COLORS[v], dash="dot"),
                           error_y=dict(type="data", symmetric=False,
                                        array=(t["hit_high"] - t["hit_rate"]).tolist(),
                                        arrayminus=(t["hit_rate"] - t["hit_low"]).tolist())))
    return go.Figure(data=traces, layout=dict(
        title=dict(text="Top-K interests per test user: F1 and hit rate", x=0.0, font=dict(size=15)),
        height=380, margin=dict(l=10, r=10, t=45, b=10), xaxis=dict(title="K", dtick=1),
        yaxis=dict(title="score", range=[0, 1.05]),
    ))


def topk_section(dataset: str, ver: str, method: str, config_json: str) -> None:
    """Draw 003's top-K interests of the test users from a fusion setting's predictions
    (computed once per setting: :func:`.results.topk_interests`, cached)."""
    st.subheader("Top-K interests (seed 003)")
    try:
        rep = results.topk_interests(dataset, ver, method, config_json)
    except ValueError as exc:
        st.info(md_text(str(exc), 400))
        return
    cols = st.columns(3)
    for col, v in zip(cols, VARIANTS):
        b = rep.best[v]
        col.metric(f"Best F1, {v}", f"{b['f1']:.3f}", help=f"at K = {int(b['K'])}")
    cols[2].metric("History weight a", f"{rep.alpha:g}", help="chosen on the validation users")
    st.caption(f"Each of {rep.n_users} test users is recommended the K categories with the highest mean "
               "fused probability over their test pins (fused), or that mean mixed with the category "
               f"shares of their train pins (fused + history, weight a = {rep.alpha:g}, chosen on "
               f"{rep.n_users_val} validation users). Truth: the categories of their test pins. "
               "Precision = hits / K, recall = hits / true categories, hit rate = at least one hit, "
               "F1 of the mean precision and recall (as 003 Table 1).")
    st.plotly_chart(topk_figure(rep), key="topk_interests")
    fmt = {c: st.column_config.NumberColumn(format="%.3f")
           for c in ("hit_rate", "hit_low", "hit_high", "precision", "recall", "f1")}
    st.dataframe(rep.table, hide_index=True, column_config=fmt)
