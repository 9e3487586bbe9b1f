"""pinterest-mm lab: ``streamlit run app.py --server.fileWatcherType none``.

Pages live in ``pages/`` and are registered here with ``st.navigation``; each page file also
runs on its own (``AppTest.from_file("pages/3_fusion_lab.py")``). The store folder is
``$PINTEREST_MM_HOME`` (default ``artifacts/``).
"""

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent
PAGES = [  # (file, title, icon, url path)
    ("pages/1_overview.py", "Overview", ":material/dataset:", "overview"),
    ("pages/2_models.py", "Models", ":material/model_training:", "models"),
    ("pages/3_fusion_lab.py", "Fusion lab", ":material/tune:", "fusion"),
    ("pages/4_compare.py", "Compare", ":material/leaderboard:", "compare"),
    ("pages/5_users.py", "Users", ":material/group:", "users"),
    ("pages/6_predict.py", "Predict", ":material/image_search:", "predict"),
]

st.set_page_config(page_title="pinterest-mm lab", page_icon=":material/interests:", layout="wide")
nav = st.navigation(
    [
        st.Page(str(HERE / path), title=title, icon=icon, url_path=url, default=(i == 0))
        for i, (path, title, icon, url) in enumerate(PAGES)
    ]
)
nav.run()
