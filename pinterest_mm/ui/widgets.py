"""Page scaffolding and small widgets: the sidebar, messages, galleries, downloads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import pandas as pd
import streamlit as st

from . import data, state
from ..jsonable import to_json_lenient
from ..safecsv import safe_csv  # noqa: F401 - the pages' CSV downloads use widgets.safe_csv
from ..store import StoreError
from .text import md_text



@dataclass
class Page:
    """What a page needs: the store, dataset, its cache version and the view setting."""

    dataset: str
    ver: str
    setting: state.Setting

    @property
    def out(self):
        """The dataset's :class:`~pinterest_mm.outputs.Outputs` (cached)."""
        return data.outputs(self.dataset, self.ver)


def escape_md(text: str, limit: int = 300) -> str:
    """Text shown as-is inside markdown (:func:`pinterest_mm.ui.text.md_text`)."""
    return md_text(text, limit)


def empty_store(root) -> None:
    """Explain how to import a dataset (shown instead of an error on an empty store)."""
    st.info(f"No dataset has been imported into the store at `{root}` yet.")
    st.markdown("Import the embedded demo (and build its models), or your own pins, then reload:")
    st.code(
        "pinterest-mm demo                                   # demo data + models\n"
        "pinterest-mm import manifest.csv --name mypins      # your pins (see README: manifest)\n"
        "pinterest-mm build mypins                           # features -> classifiers -> probabilities\n"
        "streamlit run app.py --server.fileWatcherType none",
        language="bash",
    )
    st.caption("The store folder is `$PINTEREST_MM_HOME` (default `artifacts/`).")


def page(title: str, *, need_models: bool = True, split_choice: bool = True,
         url_keys: tuple[str, ...] = ()) -> Page:
    """Draw the title and sidebar; return the :class:`Page` or stop with a helpful message.

    Args:
        url_keys: The page's own selection kept in the URL (of :data:`state.PAGE_KEYS`).
    """
    st.set_page_config(page_title=f"{title} · pinterest-mm", layout="wide")
    state.init_state()
    state.set_page_keys(url_keys)
    st.title(title)
    try:
        return _page(need_models=need_models, split_choice=split_choice)
    except StoreError as exc:  # truncated, newer schema, locked: the message says what to do
        store_error(exc)


def store_error(exc: StoreError) -> None:
    """Show why the store cannot be read (and what to do) instead of a traceback; stop."""
    st.error(f"The store cannot be read. {exc}")  # our own message: code spans intended
    st.stop()


def _page(*, need_models: bool, split_choice: bool) -> Page:
    names = data.dataset_names()
    if not names:
        empty_store(data.store_root())
        st.stop()
    want = state.get("dataset")
    if want not in names:
        want = "demo" if "demo" in names else names[0]
        state.put("dataset", want)
    with st.sidebar:
        st.header("View")
        key = state.seed_widget("dataset", want)
        if st.session_state[key] not in names:
            st.session_state[key] = want
        st.selectbox("Dataset", names, key=key, on_change=state.remember, args=("dataset",),
                     help="Imported datasets in the store")
        if split_choice:
            key = state.seed_widget("split", state.get("split") or "test")
            st.radio("Split", state.SPLITS, key=key, horizontal=True, on_change=state.remember,
                     args=("split",), format_func=lambda s: {"test": "test", "val": "validation"}[s],
                     help="Settings are always chosen on validation; test is only scored.")
    dataset = state.get("dataset")
    ver = data.version(dataset)
    methods = data.fusion_methods()
    table = data.models_table(dataset, ver)
    dropped = state.check_link(names, methods, dict(zip(table["model"], table["modality"])))
    if state.get("method") not in methods:
        state.put("method", "mm")
    setting = state.current(dataset)
    with st.sidebar:
        chart_format_choice()
        st.caption(f"Store: `{data.store_root()}`")
        st.caption(f"Cache version: `{ver[:40]}`")
    if dropped:
        st.info("The link named what this store does not have, so it was left out: "
                + "; ".join(md_text(d) for d in dropped) + ".")
    if need_models and table.shape[0]:
        skipped = data.outputs(dataset, ver).skipped  # built on an earlier version: left out
        for why in skipped.values():
            st.warning(md_text(why, limit=None))
        if len(skipped) == table.shape[0]:
            st.caption(setting.describe())
            st.code(f"pinterest-mm build {dataset}", language="bash")
            state.sync_url(setting)
            st.stop()
    elif need_models:
        st.caption(setting.describe())
        st.warning(f"No model has been built for dataset **{md_text(dataset)}** yet.")
        st.code(f"pinterest-mm build {dataset}", language="bash")
        state.sync_url(setting)
        st.stop()
    state.sync_url(setting, state.get("norm"))
    return Page(dataset, ver, setting)


CHART_FORMATS = {"svg": "SVG (vector, for papers)", "png": "PNG (2x pixels)"}


def chart_config(name: str) -> dict:
    """The ``config`` of ``st.plotly_chart``: the chart's camera button in its top-right bar
    downloads it as SVG or PNG (the sidebar's choice), named ``name``; drawn in the browser,
    no image library needed."""
    fmt = st.session_state.get("pmm_chart_format") or "svg"
    slug = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in str(name))[:80] or "chart"
    return {"toImageButtonOptions": {"format": fmt, "filename": slug, "scale": 2 if fmt == "png" else 1},
            "displaylogo": False}


def chart_format_choice() -> None:
    """The sidebar's choice of chart download format (kept across pages)."""
    key = state.seed_widget("chart_format", st.session_state.get("pmm_chart_format") or "svg")
    st.radio("Chart downloads (camera button on each chart)", list(CHART_FORMATS), key=key,
             format_func=CHART_FORMATS.get, on_change=state.remember, args=("chart_format",))


def setting_caption(s: state.Setting) -> None:
    """State which dataset, split and fusion setting the page shows."""
    st.caption(s.describe())


def to_json_bytes(obj) -> bytes:
    """Pretty JSON bytes (numpy values converted)."""

    return json.dumps(obj, indent=2, default=to_json_lenient).encode()


def pin_cards(
    pins: pd.DataFrame,
    *,
    ncols: int = 4,
    extra: dict | None = None,
    max_pins: int = 24,
    text_chars: int = 160,
) -> None:
    """Pins as thumbnails with their description and class.

    Args:
        pins: Rows with ``image``, ``description``, ``category`` (and ``pin_id``).
        extra: pin_id -> list of extra plain lines shown under the pin.
    """
    pins = pins.head(max_pins)
    if pins.empty:
        st.caption("No pins.")
        return
    cols = st.columns(ncols)
    for i, (_, row) in enumerate(pins.iterrows()):
        with cols[i % ncols]:
            img = data.thumbnail(str(row["image"]))
            if img is not None:
                st.image(img, width="stretch")
            else:
                st.caption("(image unavailable)")
            st.markdown(f"**{escape_md(row['category'], 40)}** · {escape_md(row['pin_id'], 30)}")
            st.caption(escape_md(row["description"], text_chars))
            for line in (extra or {}).get(row["pin_id"], []):
                st.caption(escape_md(line, 200))


def page_bounds(n: int, page_size: int, page: int) -> tuple[int, int, int]:
    """(start, stop, number of pages) of page ``page`` (1-based, clamped) of ``n`` items."""
    pages = max(1, -(-n // max(1, page_size)))
    page = min(max(1, int(page)), pages)
    start = (page - 1) * page_size
    return start, min(n, start + page_size), pages


def paginate(n: int, page_size: int, key: str, what: str = "pins") -> tuple[int, int]:
    """A page chooser for ``n`` items shown ``page_size`` at a time; returns (start, stop).

    Nothing is drawn when everything fits on one page. The page number lives under widget
    key ``w_page_<key>`` and goes back to 1 when the list shrinks below it.
    """
    start, stop, pages = page_bounds(n, page_size, 1)
    if pages == 1:
        return start, stop
    wkey = f"w_page_{key}"
    if not 1 <= int(st.session_state.get(wkey, 1)) <= pages:
        st.session_state[wkey] = 1
    c1, c2 = st.columns([1, 3])
    page_no = c1.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key=wkey)
    start, stop, _ = page_bounds(n, page_size, page_no)
    c2.caption(f"{what} {start + 1:,}–{stop:,} of {n:,}")
    return start, stop


def model_multiselect(label: str, options: Sequence[str], default: Sequence[str], key: str,
                      help: str | None = None) -> list[str]:
    """A remembered multiselect of model names (setting key ``key``)."""
    current = [m for m in (state.get(key) or default) if m in options] or list(default)
    wkey = state.seed_widget(key, current)
    st.session_state[wkey] = [m for m in st.session_state[wkey] if m in options] or list(default)
    return st.multiselect(label, list(options), key=wkey, help=help)
