"""Search: users, images and texts in one space (seed 001). Type a text or drop an image to
find the nearest pins and users; pick a user to see the pins closest to them, their nearest
users and their interests; a 2-D map of pins and users.

Every name from the data (categories, user ids, descriptions) is shown as text
(``st.text``/``st.dataframe``) or HTML-escaped inside plotly, never as Markdown.
"""

import pandas as pd
import plotly.express as px
import streamlit as st

from pinterest_mm.embed.search import default_space, map_caption, space_label, space_stamps
from pinterest_mm.predict import MAX_TEXT_CHARS
from pinterest_mm.ui import data, predict, widgets
from pinterest_mm.ui.text import plotly_text

THUMBS = 6


esc = plotly_text  # plotly labels: <, > and & as entities


@st.cache_resource(max_entries=8, show_spinner="Loading the joint space ...")
def context(dataset: str, ver: str, tag: str, stamp: int):
    from pinterest_mm.embed.search import load_context

    return load_context(data.get_store(), dataset, tag)


@st.cache_resource(max_entries=2, show_spinner="Loading the image model ...")
def image_encoder(image_model: str):
    from pinterest_mm.embed.search import image_encoder as make

    enc = make(image_model)
    data.freeze_long_lived()
    return enc


@st.cache_data(max_entries=8, show_spinner="Drawing the map ...")
def pin_map(dataset: str, ver: str, tag: str, stamp: int) -> pd.DataFrame:
    from pinterest_mm.embed.search import map_2d

    return map_2d(context(dataset, ver, tag, stamp))


def thumbs(table: pd.DataFrame, n: int = THUMBS, mark: str | None = None) -> None:
    cols = st.columns(n)
    for col, (_, row) in zip(cols, table.head(n).iterrows()):
        with col:
            img = data.thumbnail(str(row["image"]))
            if img is not None:
                st.image(img, width="stretch")
            st.text(f"{row['category']}\n{row['similarity']:.3f}" + (f"\n{mark}" if mark and row.get("own_save") else ""))


def pins_frame(table: pd.DataFrame) -> None:
    st.dataframe(table.drop(columns=["image"]), hide_index=True, width="stretch",
                 column_config={"description": st.column_config.TextColumn(width="large")})


pg = widgets.page("Search", need_models=False, split_choice=False)
ds, ver = pg.dataset, pg.ver
avail = space_stamps(data.get_store(), ds)
if not avail:
    st.info("No joint space has been trained for this dataset yet. It needs the image features of "
            "a built image model (default effnet-lite0); then train the spaces from the command line:")
    st.code(f"pinterest-mm build {ds} --models effnet-lite0,glove-6b-50\npinterest-mm embed {ds}", language="bash")
    st.stop()
tags = list(avail)
with st.sidebar:
    tag = st.selectbox("Joint space", tags, index=tags.index(default_space(tags)), format_func=space_label,
                       help="embed-L1-L2: trained with lambda1 (text-user) = L1, lambda2 (image-text) = L2, "
                            "image-user 1 - L1 - L2 (seed 001, eq. 1); -minilm: texts encoded by the frozen "
                            "MiniLM (`pinterest-mm embed --text-encoder minilm`)")
stamp = avail[tag]
try:
    ctx = context(ds, ver, tag, stamp)
except FileNotFoundError as exc:
    st.warning(data.safe_error(exc))
    st.stop()
sp = ctx.space
st.caption(f"Space {tag}: {ctx.caption}")
if not ctx.has_users:
    st.info("This dataset has no users (no saves with a user_id), so only image<->text search is shown; "
            "the nearest users, the user view and users on the map are hidden.")

tab_search, tab_user, tab_map = st.tabs(["Search", "A user", "Map"])

with tab_search:
    c1, c2 = st.columns(2)
    with c1:
        query = st.text_input("Text", key="search_text", max_chars=MAX_TEXT_CHARS,
                              placeholder="e.g. summer dress with flowers")
    with c2:
        up = st.file_uploader("or an image (PNG, JPEG or WebP)", type=["png", "jpg", "jpeg", "webp"],
                              key="search_image", max_upload_size=20)
    u = predict.read_image(up.getvalue()) if up is not None else None
    if u is not None and u.image is None:
        st.warning(u.message)
    res = ctx.query(query, u.image if u is not None else None,
                    image_encoder=lambda: image_encoder(sp.config["image_model"]), k=12)
    for msg in res.warnings:
        st.warning(msg)
    if not res.empty:
        st.caption(res.caption)
        st.subheader("Nearest pins")
        thumbs(res.pins)
        pins_frame(res.pins)
        if ctx.has_users:
            st.subheader("Nearest users")
            st.dataframe(res.users, hide_index=True, width="stretch")
    else:
        st.caption("Type a text or drop an image to search the space.")

with tab_user:
    if not ctx.has_users:
        st.caption("No users in this dataset.")
    else:
        n_saves = dict(ctx.users_by_saves())
        user = st.selectbox("User", list(n_saves), key="search_user",
                            format_func=lambda x: f"{x} ({n_saves[x]} saves)")
        pins, near = ctx.user_view(user, k=12)
        c1, c2 = st.columns([2, 1])
        with c1:
            st.subheader("Pins closest to this user")
            st.caption("own save: the user saved this pin (any split)")
            thumbs(pins, mark="own save")
            pins_frame(pins)
        with c2:
            st.subheader("Interest profile")
            prof = ctx.profile(user)
            st.dataframe(prof.rename_axis("category").reset_index(), hide_index=True, width="stretch",
                         column_config={"share": st.column_config.ProgressColumn(format="%.2f", min_value=0, max_value=1)})
            st.subheader("Nearest users")
            st.dataframe(near, hide_index=True, width="stretch")

with tab_map:
    m = pin_map(ds, ver, tag, stamp)
    shown = m.assign(category=m["category"].map(esc), name=m["name"].map(esc), text=m["text"].map(esc))
    fig = px.scatter(shown, x="x", y="y", color="category", symbol="kind", hover_name="name",
                     hover_data={"text": True, "kind": True, "x": False, "y": False},
                     symbol_map={"pin": "circle", "user": "diamond"}, opacity=0.75, height=620)
    fig.update_traces(marker={"size": 6})
    fig.update_layout(xaxis_title="PCA 1", yaxis_title="PCA 2", legend_title_text="category, kind")
    st.plotly_chart(fig, width="stretch")
    st.caption(map_caption(m))
