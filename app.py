"""pinterest-mm lab, the home page: ``streamlit run app.py``.

The pages live in ``pages/`` (Streamlit's multipage folder: file ``3_Fusion_lab.py`` is the
page "Fusion lab" at ``/Fusion_lab``). Every page runs on its own too
(``AppTest.from_file("pages/3_Fusion_lab.py")``). The store folder is ``$PINTEREST_MM_HOME``
(default ``artifacts/``).
"""

import streamlit as st

from pinterest_mm.ui import data, widgets
from pinterest_mm.ui.text import md_text

PAGES = [  # (file, what it shows)
    ("pages/1_Overview.py", "dataset size, pins per category before and after cleaning, the import report, a gallery"),
    ("pages/2_Models.py", "every model's accuracy, hyperparameters, build time, top-k curves by family, per-class F1"),
    ("pages/3_Fusion_lab.py", "MM and lambda fusion live: sliders, top-k, weights, confusion matrix, the pins behind a cell"),
    ("pages/4_Compare.py", "every fusion method side by side, significance, agreement, calibration, the thesis's claims"),
    ("pages/5_Users.py", "each user's true vs predicted interest profile, best and worst predicted users"),
    ("pages/6_Predict.py", "drop in a pin image and/or a description: each model's vote and the fused prediction"),
    ("pages/7_Search.py", "users, images and texts in one space: search by text or image, a user's nearest pins, a map"),
]

pg = widgets.page("pinterest-mm lab", need_models=False, split_choice=False)
st.markdown(
    "Predict users' interests from multimodal pins (an image plus its text): the thesis's "
    "**Mix-Modality** late fusion and more, computed from every model's cached probabilities."
)
info = data.dataset_info(pg.dataset, pg.ver)
models = data.models_table(pg.dataset, pg.ver)
split = info["split_counts"]
cols = st.columns(4)
cols[0].metric("Pins", f"{int(info['n_pins']):,}")
cols[1].metric("Classes", int(info["n_classes"]))
cols[2].metric("Users", f"{int(info['n_users']):,}")
cols[3].metric("Models built", len(models))
st.caption(f"Dataset **{md_text(pg.dataset)}** · train / val / test = {split.get('train', 0)} / "
           f"{split.get('val', 0)} / {split.get('test', 0)} pins")
if models.empty:
    st.warning(f"No model has been built for **{md_text(pg.dataset)}** yet.")
    st.code(f"pinterest-mm build {pg.dataset}", language="bash")

st.subheader("Pages")
for path, what in PAGES:
    st.page_link(path, label=f"**{path.split('_', 1)[1][:-3].replace('_', ' ')}**: {what}")
