"""Users: true vs predicted interest profiles, best and worst predicted users, every user in
pages (10,000 users stay light), the selected user in the URL (``?user=...``)."""

import numpy as np
import streamlit as st

from pinterest_mm.ui import charts, data, results, state, widgets
from pinterest_mm.ui.interests import topk_section
from pinterest_mm.ui.text import md_text
from pinterest_mm.users import USER_ORDERS, user_pin_predictions

PAGE_SIZE = 25  # users per table page
PINS_PAGE = 16  # pins per gallery page

pg = widgets.page("Users", url_keys=("user",))
ds, ver, s = pg.dataset, pg.ver, pg.setting
out = pg.out
widgets.setting_caption(s)

if out.saves is None or out.saves.empty:
    st.info("This dataset has no users: the manifest had no user_id column.")
    st.stop()

c1, c2, c3, c4 = st.columns(4)
scope = c1.radio("Pins counted", ["this split", "validation + test"], horizontal=True,
                 help="A user's held-out pins: the split chosen in the sidebar, or both held-out splits.")
splits = (s.split,) if scope == "this split" else ("val", "test")
mode = c2.radio("Predicted profile", ["mean", "top1"], horizontal=True,
                format_func=lambda m: {"mean": "mean probabilities", "top1": "top-1 counts"}[m])
k = c3.slider("k (top-k interests)", 1, 5, 3)
min_pins = int(c4.number_input("Users with at least this many pins", min_value=1, max_value=10_000, value=5,
                               help="A profile from one or two pins says little; such users are left out."))

cfg = results.setting_config_json(ds, ver, s)
try:
    with st.spinner("Fusing and building user profiles ..."):
        rep = results.user_report(ds, ver, s.method, cfg, splits, mode, k, min_pins)
except Exception as exc:
    st.error(f"User profiles cannot be computed: {md_text(data.safe_error(exc), 600)}")
    st.stop()
if rep.table.empty and min_pins > 1:
    st.info(f"No user has {min_pins} or more pins in {', '.join(splits)}, so every user is shown.")
    min_pins = 1
    rep = results.user_report(ds, ver, s.method, cfg, splits, mode, k, min_pins)

sm = rep.summary
m = st.columns(4)
m[0].metric(f"Users with {min_pins}+ pins", f"{sm['n_users']:,}")
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

# ----------------------------------------------------------------------------- every user, in pages
st.subheader("Every user")
o1, o2 = st.columns([1, 2])
order = o1.selectbox("Order", USER_ORDERS, key="users_order",
                     format_func=lambda o: {"best": "best predicted first", "worst": "worst predicted first",
                                            "most_pins": "most pins first"}[o])
o2.text_input("Find a user id", key="users_find", max_chars=200,
              on_change=lambda: state.put("user", st.session_state["users_find"].strip() or state.get("user")))
table = rep.ordered(order)
start, stop = widgets.paginate(len(table), PAGE_SIZE, f"users_{order}_{min_pins}", "users")
page_rows = table.iloc[start:stop]
st.dataframe(page_rows, hide_index=True, column_config=fmt)

known = set(rep.table["user_id"].astype(str))
want = state.get("user")
if want is not None and str(want) not in known:
    st.info(f"User {md_text(want, 80)} (from the link or an earlier choice) has fewer than {min_pins} pins in "
            f"{', '.join(splits)} or is not in this dataset; showing another user.")
    want = None
options = page_rows["user_id"].astype(str).tolist()
current = str(want) if want is not None else options[0]
if current not in options:
    options = [current] + options
wkey = "w_user"
if st.session_state.get(wkey) not in options or st.session_state.get("_user_applied") != current:
    st.session_state[wkey] = current
user = st.selectbox("User", options, key=wkey, help="The users on this page of the table, and the one chosen")
st.session_state["_user_applied"] = user
state.put("user", user)
state.sync_url(state.current(ds), state.get("norm"))

u = [str(x) for x in rep.users].index(user)
shown = np.flatnonzero((rep.true[u] > 0) | (rep.pred[u] >= 0.02))
st.plotly_chart(charts.profile_bars([out.classes[i] for i in shown], rep.true[u][shown], rep.pred[u][shown],
                                    f"User {user}: true vs predicted interests"), key="profile")

r = data.fused(ds, ver, s.method, cfg)
mine = user_pin_predictions(out, {"val": r.val_probs, "test": r.test_probs}, user, splits)
st.markdown(f"**{md_text(user, 80)}'s pins in {', '.join(splits)}** ({len(mine):,})")
a, b = widgets.paginate(len(mine), PINS_PAGE, f"user_pins_{user}")
mine = mine.iloc[a:b]
extra = {pid: [f"predicted: {c} ({p:.2f})"] for pid, c, p in zip(mine["pin_id"], mine["category"], mine["probability"])}
pins = data.pins_by_pin_id(ds, ver)
widgets.pin_cards(pins.loc[mine["pin_id"]], extra=extra, max_pins=PINS_PAGE)

topk_section(ds, ver, s.method, cfg)  # seed 003: top-K interests of the test users
