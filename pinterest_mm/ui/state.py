"""The view setting shared by every page, mirrored in the URL.

The setting lives in ``st.session_state`` under ``pmm_*`` keys (they survive page switches,
unlike widget keys). On a session's first run it is read from ``st.query_params``; every page
writes it back with :func:`sync_url`, so a copied link reopens the same view::

    ?dataset=demo&split=test&method=mm&l=2&models=a,b,c

plus the page's own selection (``&user=u1`` on Users, ``&cell=3-7`` in the Fusion lab's drill-down).

Widgets use ``w_*`` keys seeded from the ``pmm_*`` values (:func:`seed_widget`) and copy
their value back (:func:`remember`).

A link is someone else's text: values that must be one of a few (split, norm) are checked
here; dataset, method and model names are checked against what exists once the dataset is
known (:func:`check_link`), and unknown ones are dropped with a note. Every name is shown as
text (:func:`Setting.describe` escapes it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import streamlit as st

from .text import clip, md_text

SPLITS = ("test", "val")
NORMALIZE = ("true", "pred", "all", "none")
_KEYS = ("dataset", "split", "method", "l", "lambda", "models", "image_model", "text_model", "norm")
# One page's own selection, in the URL only while that page shows (see :func:`set_page_keys`):
# the Users page's ``user``, the Fusion lab drill-down's ``cell`` ("true-predicted" class indices).
PAGE_KEYS = ("user", "cell")
_PAGE = "_pmm_page_keys"
_INIT = "_pmm_init"
_LINK = "_pmm_link_unchecked"


@dataclass(frozen=True)
class Setting:
    """What a page shows.

    Attributes:
        dataset: Dataset name (None when the store is empty).
        split: ``test`` or ``val``.
        method: Fusion method name (registry), default ``mm``.
        l: MM's l; None = chosen on validation.
        lam: Lambda of lambda fusion; None = chosen on validation.
        models: Models fused; None = the thesis selection.
        image_model, text_model: The pair of lambda fusion; None = best on validation.
    """

    dataset: str | None
    split: str = "test"
    method: str = "mm"
    l: float | None = None
    lam: float | None = None
    models: tuple[str, ...] | None = None
    image_model: str | None = None
    text_model: str | None = None

    def describe(self) -> str:
        """One Markdown line naming the dataset, split and fusion setting (shown on every
        page); every name in it is escaped, so it displays as text."""
        return (f"Dataset **{md_text(self.dataset, 80)}** · split **{md_text(self.split, 10)}** · "
                f"fusion {md_text(self.fusion_text(), 1000)}")

    def fusion_text(self) -> str:
        """The fusion setting in plain words (not Markdown: escape it with ``md_text``),
        e.g. ``mm (l = 2; models: thesis selection)``."""
        if self.method == "mm":
            knob = "l chosen on validation" if self.l is None else f"l = {self.l:g}"
        elif self.method == "lambda":
            knob = "lambda chosen on validation" if self.lam is None else f"lambda = {self.lam:g}"
            pair = f"{self.image_model or 'best image'} + {self.text_model or 'best text'}"
            knob = f"{pair}, {knob}"
        else:
            knob = "settings chosen on validation"
        models = "thesis selection" if not self.models else ", ".join(self.models)
        if self.method == "ensemble" and not self.models:
            models = "every built model"
        if self.method == "lambda":
            models = ""
        return f"{self.method} ({knob}" + (f"; models: {models})" if models else ")")


def _parse_float(v: str | None, lo: float, hi: float) -> float | None:
    try:
        x = float(v) if v not in (None, "", "auto") else None
    except (TypeError, ValueError):
        return None
    if x is None or not math.isfinite(x):
        return None
    return min(max(x, lo), hi)


def init_state() -> None:
    """On a session's first run, read the setting from the URL into ``st.session_state``."""
    if st.session_state.get(_INIT):
        return
    qp = st.query_params
    st.session_state["pmm_dataset"] = qp.get("dataset")
    st.session_state["pmm_split"] = qp.get("split") if qp.get("split") in SPLITS else "test"
    st.session_state["pmm_method"] = qp.get("method") or "mm"
    st.session_state["pmm_l"] = _parse_float(qp.get("l"), 0.0, 20.0)
    st.session_state["pmm_lambda"] = _parse_float(qp.get("lambda"), 0.0, 1.0)
    models = [m for m in (qp.get("models") or "").split(",") if m]
    st.session_state["pmm_models"] = tuple(models[:32]) or None
    st.session_state["pmm_image_model"] = qp.get("image_model") or None
    st.session_state["pmm_text_model"] = qp.get("text_model") or None
    st.session_state["pmm_norm"] = qp.get("norm") if qp.get("norm") in NORMALIZE else "true"
    for key in PAGE_KEYS:  # checked by the page that uses it (it knows the users and classes)
        st.session_state[f"pmm_{key}"] = clip(qp.get(key), 200) if qp.get(key) else None
    st.session_state[_LINK] = True
    st.session_state[_INIT] = True


def check_link(datasets: list[str], methods: list[str], models: dict[str, str]) -> list[str]:
    """Drop what the opening link named that does not exist here; return what was dropped.

    Runs once per session, on its first page run (later calls return ``[]``): the setting then holds only existing names, and the caller shows the list.

    Args:
        datasets: Dataset names in the store.
        methods: Registered fusion methods.
        models: The chosen dataset's models, name to modality (``image``/``text``).
    """
    if not st.session_state.get(_LINK):
        return []
    st.session_state[_LINK] = False
    dropped: list[str] = []
    if st.query_params.get("dataset") not in (None, "") and st.query_params.get("dataset") not in datasets:
        dropped.append(f"dataset {clip(st.query_params.get('dataset'), 60)}")
    if get("method") not in methods:
        dropped.append(f"fusion method {clip(get('method'), 60)}")
        put("method", "mm")
    names = tuple(get("models") or ())
    unknown = [m for m in names if m not in models]
    if unknown:
        dropped.append("model" + ("s " if len(unknown) > 1 else " ") +
                       ", ".join(clip(m, 60) for m in unknown[:5]) + (" ..." if len(unknown) > 5 else ""))
        put("models", tuple(m for m in names if m in models) or None)
    for key, modality in (("image_model", "image"), ("text_model", "text")):
        if get(key) is not None and models.get(get(key)) != modality:
            dropped.append(f"{modality} model {clip(get(key), 60)}")
            put(key, None)
    return dropped


def get(key: str, default=None):
    """Return a remembered setting value (``pmm_<key>``)."""
    return st.session_state.get(f"pmm_{key}", default)


def put(key: str, value) -> None:
    """Remember a setting value (``pmm_<key>``)."""
    st.session_state[f"pmm_{key}"] = value


def seed_widget(key: str, value) -> str:
    """Seed widget key ``w_<key>`` with ``value`` unless the widget holds a value; return it."""
    wkey = f"w_{key}"
    if wkey not in st.session_state:
        st.session_state[wkey] = value
    return wkey


def remember(key: str) -> None:
    """Copy widget ``w_<key>``'s value into the setting (use as ``on_change``)."""
    st.session_state[f"pmm_{key}"] = st.session_state.get(f"w_{key}")


def follow_selection(key: str, selection: tuple):
    """Return the remembered knob ``key`` (l, lambda) for the models of ``selection``.

    A knob value belongs to the selection it was set for (by the user or a link): when the
    selection changes, it is dropped (None: chosen on validation again). The first call of a
    session adopts the selection as it is, so a link's ``l`` with its ``models`` holds.
    """
    seen = f"_pmm_{key}_selection"
    if seen in st.session_state and st.session_state[seen] != tuple(selection):
        put(key, None)
    st.session_state[seen] = tuple(selection)
    return get(key)


def current(dataset: str | None) -> Setting:
    """Return the remembered :class:`Setting` for ``dataset``."""
    models = get("models")
    return Setting(
        dataset=dataset,
        split=get("split") or "test",
        method=get("method") or "mm",
        l=get("l"),
        lam=get("lambda"),
        models=tuple(models) if models else None,
        image_model=get("image_model"),
        text_model=get("text_model"),
    )


def url_params(s: Setting, norm: str | None = None) -> dict[str, str]:
    """The query parameters that reproduce ``s``."""
    out: dict[str, str] = {}
    if s.dataset:
        out["dataset"] = s.dataset
    out["split"] = s.split
    out["method"] = s.method
    if s.method == "mm" and s.l is not None:
        out["l"] = f"{s.l:g}"
    if s.method == "lambda":
        if s.lam is not None:
            out["lambda"] = f"{s.lam:g}"
        if s.image_model:
            out["image_model"] = s.image_model
        if s.text_model:
            out["text_model"] = s.text_model
    if s.models and s.method != "lambda":
        out["models"] = ",".join(s.models)
    if norm:
        out["norm"] = norm
    return out


def set_page_keys(keys: tuple[str, ...]) -> None:
    """Declare which of :data:`PAGE_KEYS` the page now running keeps in the URL (from the
    setting's ``pmm_<key>``); the others are left out of the URL (``widgets.page`` calls this)."""
    st.session_state[_PAGE] = tuple(k for k in keys if k in PAGE_KEYS)


def parse_cell(value: str | None, n_classes: int) -> tuple[int, int] | None:
    """The (true, predicted) class indices of a ``cell`` URL value ``"3-7"``, or None when it
    is not two class indices below ``n_classes``."""
    try:
        a, b = (int(v) for v in str(value).split("-"))
    except (TypeError, ValueError):
        return None
    return (a, b) if 0 <= a < n_classes and 0 <= b < n_classes else None


def sync_url(s: Setting, norm: str | None = None) -> None:
    """Write the setting (and the running page's own keys, :func:`set_page_keys`) into
    ``st.query_params`` (only when it changed)."""
    want = url_params(s, norm)
    for key in st.session_state.get(_PAGE, ()):
        if get(key) not in (None, ""):
            want[key] = str(get(key))
    have = {k: st.query_params.get(k) for k in (*_KEYS, *PAGE_KEYS) if k in st.query_params}
    if have != want:
        st.query_params.from_dict(want)
