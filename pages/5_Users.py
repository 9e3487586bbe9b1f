"""Users: true vs predicted interest profiles, best and worst predicted users."""

import numpy as np
import streamlit as st

from pinterest_mm.ui import charts, data, results, widgets
from pinterest_mm.ui.interests import topk_section
from pinterest_mm.ui.text import md_text
from pinterest_mm.users import user_pin_predictions

pg = widgets.page("Users")
ds, ver, s = pg.dataset, pg.ver, pg.setting
out = pg.out
widgets.setting_caption(s)

if out.saves is None or out.saves.empty:
    st.info("This dataset has no users: the manifest had no user_id column.")
    st.stop()

c1, c2, c3 = st.columns(3)
scope = c1.radio("Pins counted", ["this split", "validation + test"], horizontal=True,
                 help="A user's held-out pins: the split chosen in the sidebar, or both held-out splits.")
splits = (s.split,) if scope == "this split" else ("val", "test")
mode = c2.radio("Predicted profile", ["mean", "top1"], horizontal=True,
                format_func=lambda m: {"mean": "mean probabilities", "top1": "top-1 counts"}[m])
k = c3.slider("k (top-k interests)", 1, 5, 3)

cfg = results.setting_config_json(ds, ver, s)
try:
    with st.spinner("Fusing and building user profiles ..."):
        rep = results.user_report(ds, ver, s.method, cfg, splits, mode, k)
except Exception as exc:
    st.error(f"User profiles cannot be computed: {md_text(data.safe_error(exc), 600)}")
    st.stop()

sm = rep.summary
m = st.columns(4)
m[0].metric("Users", sm["n_users"])
m[1].metric(f"Mean top-{k} interest recall", f"{sm['mean_topk_recall']:.3f}")
m[2].metric("Mean interest-set F1", f"{sm['mean_f1']:.3f}")
m[3].metric("Mean Jensen-Shannon distance", f"{sm['mean_js_distance']:.3f}")
st.caption(f"Interest sets: categories with at least {sm['threshold']:.0%} of the user's pins "
           f"(true) or of the predicted profile; splits: {', '.join(splits)}.")

left, right = st.columns(2)
fmt = {c: st.column_config.NumberColumn(format="%.3f") for c in ("topk_recall", "js_distance", "precision", "recall", "f1")}
with left:
    st.markdown("**Best predicted users**")
    st.dataframe(rep.best(10), hide_index=True, column_config=fmt)
with right:
    st.markdown("**Worst predicted users**")
    st.dataframe(rep.worst(10), hide_index=True, column_config=fmt)
st.plotly_chart(charts.histogram(rep.table["f1"], "Interest-set F1 per user", "F1"), key="hist")

users = rep.table["user_id"].astype(str).tolist()
user = st.selectbox("User", users, help="Best predicted first")
u = [str(x) for x in rep.users].index(user)
shown = np.flatnonzero((rep.true[u] > 0) | (rep.pred[u] >= 0.02))
st.plotly_chart(charts.profile_bars([out.classes[i] for i in shown], rep.true[u][shown], rep.pred[u][shown],
                                    f"User {user}: true vs predicted interests"), key="profile")

r = data.fused(ds, ver, s.method, cfg)
mine = user_pin_predictions(out, {"val": r.val_probs, "test": r.test_probs}, user, splits)
extra = {pid: [f"predicted: {c} ({p:.2f})"] for pid, c, p in zip(mine["pin_id"], mine["category"], mine["probability"])}
pins = data.pins(ds, ver)
st.markdown(f"**{md_text(user, 80)}'s pins in {', '.join(splits)}** ({len(mine)})")
widgets.pin_cards(pins[pins["pin_id"].isin(mine["pin_id"])], extra=extra, max_pins=16)

topk_section(out, r)  # seed 003: top-K interests of the test users
