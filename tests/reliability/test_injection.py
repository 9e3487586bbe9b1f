"""Content injection: names from a dataset and values from a link are shown as text.

A dataset whose category and user names are Markdown and HTML (an image fetched from an
attacker's URL, a red "session expired" with a "log in again" link, ``<b>``/``<a href>``,
maths, a spreadsheet formula) and links whose query string carries the same are run through
every page with ``streamlit.testing``. Every element that renders Markdown (markdown,
captions, alerts, headings, metric and widget labels, image captions) must hold no active
syntax, and every plotly figure must hold its labels as HTML entities. The Predict page's
upload limits come last: a 1 x 100,000 px image and an over-limit file each get one message.
"""

from __future__ import annotations

import io
import json
import re

import pandas as pd
import pytest
from PIL import Image

from conftest import TINY_CONFIG
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.store import Store
from pinterest_mm.ui import predict
from pinterest_mm.ui.text import clip, md_text, plotly_text

from .conftest import REPO

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest

EVIL = "http://evil.example"
CATEGORIES = {  # tiny dataset's class -> its hostile name
    "Animals": f"![pic]({EVIL}/cat.png) Animals",
    "Food and drink": f":red[Session expired] [log in again]({EVIL}/login)",
    "Gardening": f'<b>Bold</b> <a href="{EVIL}">Garden</a>',
    "Sports": "$x^2$ Sports & www.evil.example",
    "Technology": "=cmd|' /C calc'!A0 *Tech* `code`",
}
USERS = {
    "u0": f"[log in again]({EVIL}/login)",
    "u1": f"![u]({EVIL}/u.png)",
    "u2": ":red[alert] <b>u2</b>",
    "u3": f"$x$ {EVIL}/auto",
}
# Markdown that would render as something else than its characters: images, links, colour
# directives, HTML, maths, autolinks. Our own page text uses none of it.
ACTIVE = re.compile(r"!\[|\]\(|:[a-z]+\[|<[A-Za-z/!?]|\$|https?:|www\.|^\s*[=#>]")
ESCAPED = re.compile(r"\\[!-/:-@\[-`{-~]")  # a backslash-escaped ASCII punctuation character
TAG = re.compile(r"<[A-Za-z/!?]")
TEMPLATES = {"hovertemplate", "texttemplate"}  # plotly code written by us, not labels


def active_syntax(md: str) -> list[str]:
    """The active Markdown constructs left in ``md`` once escaped characters are set aside."""
    return ACTIVE.findall(ESCAPED.sub("\x00", md))


def unescape(md: str) -> str:
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", md)


def markdown_sources(at) -> list[str]:
    """Every string the page hands to Streamlit's Markdown renderer."""
    out = []
    for el in at._tree:
        proto, kind = getattr(el, "proto", None), getattr(el, "type", "")
        if proto is None:
            continue
        if kind in ("markdown", "caption", "divider", "latex", "title", "header", "subheader",
                    "error", "warning", "info", "success"):
            out.append(proto.body)
        elif kind == "metric":
            out.append(proto.label)
        elif kind == "image":
            out.extend(i.caption for i in proto.imgs)
        for attr in ("label", "help"):  # widget labels and help texts are Markdown too
            if kind not in ("metric",) and hasattr(proto, attr) and isinstance(getattr(proto, attr), str):
                out.append(getattr(proto, attr))
    return [s for s in out if s]


def figure_strings(at) -> list[tuple[str, str]]:
    """(key, string) of every string in every plotly figure of the page."""
    found: list[tuple[str, str]] = []

    def walk(v, key=""):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, k)
        elif isinstance(v, list):
            for x in v:
                walk(x, key)
        elif isinstance(v, str):
            found.append((key, v))

    for el in at._tree:
        if getattr(el, "type", "") == "plotly_chart":
            spec = json.loads(el.proto.spec)
            walk({"data": spec.get("data"), "layout": spec.get("layout")})
    return found


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A store holding dataset ``evil`` (hostile category and user names) with six models."""
    from app_fixtures import add_synth_models
    from conftest import make_tiny_manifest

    folder = tmp_path_factory.mktemp("inject")
    manifest = make_tiny_manifest(folder, per_class=14)
    df = pd.read_csv(manifest)
    df["category"] = df["category"].map(lambda c: CATEGORIES.get(c, c))
    df["user_id"] = df["user_id"].map(lambda u: USERS.get(u, u))
    df.to_csv(manifest, index=False)
    store = Store(folder / "home")
    import_manifest(store, manifest, "evil", TINY_CONFIG.__class__(
        cleaning=TINY_CONFIG.cleaning.__class__(min_per_class=5, max_per_class=100)), progress=False)
    assert set(CATEGORIES.values()) <= set(store.classes("evil"))  # stored verbatim
    add_synth_models(store, "evil")
    return folder / "home"


def _page(script: str, query: dict | None = None):
    at = AppTest.from_file(str(REPO / script), default_timeout=120)
    at.query_params["dataset"] = "evil"
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at


def _check_page(at, where: str, shown: list[str]) -> None:
    """No exception; no active Markdown anywhere; plotly labels escaped. Collects what the
    page showed of the hostile names (unescaped) into ``shown``."""
    assert not at.exception, (where, [e.message for e in at.exception])
    for md in markdown_sources(at):
        assert not active_syntax(md), (where, md, active_syntax(md))
        shown.append(unescape(md))
    for key, text in figure_strings(at):
        if key in TEMPLATES:
            continue
        assert not TAG.search(text), (where, key, text)
        shown.append(text)


def test_hostile_names_are_text_on_every_page(hostile, monkeypatch):
    """Check every page, with hostile users and categories selected, renders their names as
    text: escaped in Markdown, entities in plotly, and actually shown (not dropped)."""
    monkeypatch.setenv("PINTEREST_MM_HOME", str(hostile))
    shown: list[str] = []
    for script in ("app.py", "pages/2_Models.py", "pages/4_Compare.py"):
        at = _page(script)
        at.run()
        _check_page(at, script, shown)

    at = _page("pages/1_Overview.py")
    at.run()
    for user in USERS.values():
        next(s for s in at.selectbox if s.label == "User").set_value(user).run()  # before/after chart
        _check_page(at, f"overview {user}", shown)
    for cat in CATEGORIES.values():
        at.selectbox(key="gallery_cat").set_value(cat).run()  # the gallery's pin cards
        _check_page(at, f"overview {cat}", shown)

    at = _page("pages/3_Fusion_lab.py")
    at.run()
    _check_page(at, "fusion lab", shown)
    for cat in CATEGORIES.values():  # the drill-down's caption and cards for every class
        at.selectbox(key="w_cell_true").set_value(cat).run()
        _check_page(at, f"fusion lab {cat}", shown)
    at.selectbox(key="w_method").set_value("equal").run()  # a static view's captions
    _check_page(at, "fusion lab equal", shown)

    at = _page("pages/5_Users.py")
    at.run()
    user_box = next(s for s in at.selectbox if s.label == "User")
    present = [u for u in USERS.values() if u in user_box.options]  # users with held-out pins
    assert len(present) >= 2, user_box.options
    for user in present:
        user_box.set_value(user).run()
        _check_page(at, f"users {user}", shown)
        user_box = next(s for s in at.selectbox if s.label == "User")

    at = _page("pages/6_Predict.py")
    at.run()
    example = next(s for s in at.selectbox if s.label == "Example (test split)")
    pins = Store(hostile, read_only=True).pins("evil")
    pid = pins[(pins["split"] == "test") & (pins["category"] == CATEGORIES["Food and drink"])]["pin_id"].iloc[0]
    example.set_value(pid).run()
    next(b for b in at.button if b.label == "Use this example").click().run()
    _check_page(at, "predict example", shown)

    everything = "\n".join(shown)
    for name in [*CATEGORIES.values(), *USERS.values()]:
        assert name in everything or plotly_text(name) in everything, name  # shown, as text


@pytest.mark.parametrize("query", [
    {"models": f"![x]({EVIL}/q.png),synth-bert", "method": ":red[Session expired]",
     "image_model": "<b>img</b>", "text_model": f"[log in again]({EVIL}/login)"},
    {"dataset": f":red[Session expired, log in again]({EVIL}/login)", "models": "$x$,<i>m</i>"},
    {"method": "lambda", "image_model": f"![x]({EVIL}/i.png)", "text_model": "synth-glove"},
])
@pytest.mark.parametrize("script", ["pages/5_Users.py", "pages/6_Predict.py", "pages/3_Fusion_lab.py"])
def test_crafted_links_are_validated_and_shown_as_text(hostile, monkeypatch, script, query):
    """Check a link's unknown dataset, method and model names are dropped with a note that
    shows them as text, the known ones kept, and no Markdown from the link is rendered."""
    monkeypatch.setenv("PINTEREST_MM_HOME", str(hostile))
    at = _page(script, query)
    at.run()
    _check_page(at, script, [])
    notes = [i.value for i in at.info if "left out" in i.value]
    assert len(notes) == 1, [i.value for i in at.info]
    for key in ("models", "image_model", "text_model", "method", "dataset"):
        values = (query.get(key) or "").split(",") if key == "models" else [query.get(key) or ""]
        for value in values:
            if value and not value.startswith("synth-") and value != "lambda":
                assert md_text(clip(value, 60), None) in notes[0], (value, notes)
    models = at.session_state["pmm_models"]
    assert models in (None, ("synth-bert",)), models
    assert at.session_state["pmm_method"] in ("mm", "lambda")
    assert at.session_state["pmm_image_model"] in (None, "synth-img-a", "synth-img-b")  # not the link's
    if "text_model" in query and query["text_model"] == "synth-glove":
        assert at.session_state["pmm_text_model"] == "synth-glove"  # a known one is kept


def test_md_text_escapes_every_active_construct():
    """Check the helper on each construct, and that unescaping gives the text back."""
    for raw in [*CATEGORIES.values(), *USERS.values(), "a\\b", "1. list", "- item", "# head",
                "| a | b |", "~~x~~", "__x__", "www.evil.example", "x@evil.example", "&lt;b&gt;",
                "line\nbreak", ":material/home: :smile:"]:
        md = md_text(raw, None)
        assert not active_syntax(md), (raw, md)
        assert unescape(md) == raw.replace("\n", " ")
    assert plotly_text('<a href="x">&</a>') == '&lt;a href="x"&gt;&amp;&lt;/a&gt;'


def test_every_chart_builder_shows_labels_as_text():
    """Check each builder of ``ui/charts.py``, fed hostile names everywhere a name goes,
    gives a figure whose labels are entities (no tag plotly would render) and still name them."""
    import numpy as np

    from pinterest_mm.metrics import calibration
    from pinterest_mm.ui import charts

    names = list(CATEGORIES.values())
    n = len(names)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"category": names, "before": range(n), "after": range(n)})
    accs = pd.DataFrame({"model": names, "val accuracy": [0.5] * n, "test accuracy": [0.6] * n})
    y = rng.integers(0, n, 50)
    p = rng.dirichlet(np.ones(n), 50)
    figures = [
        charts.before_after_bars(frame, f"User {names[2]}"),
        charts.topk_figure({m: [0.5, 0.7] for m in names}, {names[0]: "image"}, names[3], bold=[names[1]]),
        charts.accuracy_bars(accs, names[2]),
        charts.heatmap(np.ones((n, n)), names, names, names[2]),
        charts.confusion_figure(np.ones((n, n)), names, "true", names[2], (0, 1)),
        charts.weights_bar(dict.fromkeys(names, 0.2), {}, names[2]),
        charts.grid_figure([1, 2], [0.5, 0.6], [0.5, 0.6], 1, 2, names[2], names[2]),
        charts.method_bars(accs.rename(columns={"model": "method"}), names[2], ref=0.5),
        charts.reliability_figure({m: calibration(p, y) for m in names}, names[2]),
        charts.profile_bars(names, [0.2] * n, [0.2] * n, f"User {USERS['u2']}"),
        charts.votes_figure({m: [(c, 0.5) for c in names] for m in names[:2]}, names[2]),
        charts.share_bar({"image": 0.4, "text": 0.6}, names[2]),
        charts.histogram([0.1, 0.5], names[2], names[2]),
    ]
    for fig in figures:
        found: list[tuple[str, str]] = []

        def walk(v, key=""):
            if isinstance(v, dict):
                for k, x in v.items():
                    walk(x, k)
            elif isinstance(v, (list, tuple)):
                for x in v:
                    walk(x, key)
            elif isinstance(v, str):
                found.append((key, v))

        spec = json.loads(fig.to_json())
        walk({"data": spec["data"], "layout": spec["layout"]})
        bad = [(k, t) for k, t in found if k not in TEMPLATES and TAG.search(t)]
        assert not bad, (fig.layout.title.text, bad)
        assert any(plotly_text(names[2])[:30] in t for _, t in found), fig.layout.title.text


# ----------------------------------------------------------------------------- Predict uploads
def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 60)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


@pytest.mark.parametrize("name, data, expect", [
    ("1x100000", _png(1, 100_000), "each side may be at most 16,384 pixels"),
    ("100000x1", _png(100_000, 1), "each side may be at most 16,384 pixels"),
    ("20.5 MB", b"\x89PNG" + b"\x00" * 20_499_996, "(20.5 MB): upload an image of at most 20 MB"),
    ("16384x1", _png(predict.MAX_SIDE, 1), None),  # long and thin, within the limits: shown
    ("1x16384", _png(1, predict.MAX_SIDE), None),
])
def test_predict_page_gives_one_message_for_a_bad_upload(hostile, monkeypatch, name, data, expect):
    """Check a too-long side and an over-limit file get one clear message (no traceback,
    no internal path), and a long thin image within the limits is shown."""
    monkeypatch.setenv("PINTEREST_MM_HOME", str(hostile))
    at = _page("pages/6_Predict.py")
    at.run()
    at.file_uploader[0].set_value((f"{name}.png", data, "image/png")).run()
    assert not at.exception, (name, [e.message for e in at.exception])
    errors = [e.value for e in at.error]
    images = [el for el in at._tree if getattr(el, "type", "") == "image"]
    if expect is None:
        assert not errors and images, errors
        return
    assert len(errors) == 1 and md_text(expect, None) in errors[0], errors
    assert "/" not in unescape(errors[0]).replace(" / ", "") and not images


def test_upload_limit_is_one_limit():
    """Check the uploader, the server and the reader use one limit and say it the same way."""
    import tomllib

    cfg = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert predict.MAX_UPLOAD_BYTES == predict.MAX_UPLOAD_MB * 1_000_000  # the browser's MB
    assert cfg["server"]["maxUploadSize"] * 1024 * 1024 >= predict.MAX_UPLOAD_BYTES  # server's MiB
    assert cfg["server"]["maxUploadSize"] == predict.MAX_UPLOAD_MB
    assert "max_upload_size=predict.MAX_UPLOAD_MB" in (REPO / "pages" / "6_Predict.py").read_text()
    over = predict.read_image(b"\x89PNG" + b"\x00" * predict.MAX_UPLOAD_BYTES)
    assert over.image is None and f"at most {predict.MAX_UPLOAD_MB} MB" in over.message, over.message
    assert f"at most {predict.MAX_UPLOAD_MB} MB" in predict.LIMITS_TEXT
