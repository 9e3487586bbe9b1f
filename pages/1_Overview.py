"""Overview: the dataset, its cleaning (thesis Fig. 3.3, 3.5, 3.6), the import report, pins."""

import streamlit as st

from pinterest_mm.data.importer import format_report
from pinterest_mm.ui import charts, data, widgets
from pinterest_mm.ui.text import md_text

pg = widgets.page("Overview", need_models=False, split_choice=False)
ds, ver = pg.dataset, pg.ver
st.caption(f"Dataset **{md_text(ds)}** · all splits · no fusion on this page")

info = data.dataset_info(ds, ver)
counts = info.get("split_counts") or {}
c = st.columns([1, 1, 1, 1.6, 1])
c[0].metric("Pins kept", f"{int(info['n_pins']):,}")
c[1].metric("Classes", int(info["n_classes"]))
c[2].metric("Users", int(info["n_users"]))
c[3].metric("Train / val / test", "/".join(str(counts.get(s, 0)) for s in ("train", "val", "test")))
c[4].metric("Models built", data.models_table(ds, ver).shape[0])

cats = data.category_counts(ds, ver)
left, right = st.columns(2)
with left:
    st.plotly_chart(
        charts.before_after_bars(cats, "Pins per category, before and after cleaning (Fig. 3.3 / 3.5)"),
        key="cats",
    )
with right:
    users = data.user_table(ds, ver)
    if users.empty:
        st.info("This dataset has no users (the manifest has no user_id column).")
    else:
        user = st.selectbox("User", users["user_id"].astype(str).tolist(),
                            help="Users with the most kept pins first")
        st.plotly_chart(
            charts.before_after_bars(data.user_category_counts(ds, ver, user),
                                     f"User {user}: pins per category before and after (Fig. 3.6)"),
            key="user_cats",
        )

st.subheader("Import report")
report = data.import_report(ds, ver)
with st.expander("As printed by `pinterest-mm import`"):
    st.code(format_report(report), language=None)
st.dataframe(report, hide_index=True, height=280)
st.dataframe(data.drop_reasons(ds, ver), hide_index=True)

st.subheader("Pins per category")
pins = data.pins(ds, ver)
classes = sorted(pins["category"].unique().tolist())
col, n_col = st.columns([3, 1])
cat = col.selectbox("Category", classes, key="gallery_cat")
n = n_col.slider("Pins shown", 4, 24, 8, step=4)
with st.spinner("Loading thumbnails ..."):
    widgets.pin_cards(pins[pins["category"] == cat], max_pins=n)
