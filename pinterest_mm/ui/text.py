"""Text from data or from a link, shown as text: never as Markdown, never as plotly HTML.

Category, user and pin names come from an imported manifest and the view setting from the
URL; both are someone else's text. Streamlit renders Markdown (GitHub-flavoured, plus
``:red[...]`` colour directives, ``$...$`` maths, emoji and autolinks) in ``st.markdown``,
captions, alerts, metric and widget labels and image captions; plotly renders a subset of
HTML (``<b>``, ``<a href>``, ``<br>`` ...) in trace names, tick labels, hover text, titles
and annotations. Every such value goes through one of the two functions below.
"""

from __future__ import annotations

import html
import re
import string

# CommonMark lets a backslash escape any ASCII punctuation, and the escaped character is shown
# as itself. Escaping all of it covers every construct: emphasis (* _ ~), code (`), links and
# images ([ ] ( ) !), HTML and autolinks (< > and "http:", "www." via ":" and "."), headings,
# lists and tables (# - + . ) |), entities (&), maths ($) and directives (:red[...]).
_MD_ACTIVE = re.compile("([" + re.escape(string.punctuation) + "])")
# Line breaks would start new blocks (headings, lists, quotes); other control characters are noise.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def clip(text: object, limit: int | None) -> str:
    """``str(text)`` cut to ``limit`` characters (the last one an ellipsis)."""
    text = str(text)
    if limit is not None and len(text) > limit:
        return text[: max(0, limit - 1)] + "…"
    return text


def md_text(text: object, limit: int | None = 300) -> str:
    """``text`` to place inside Markdown so that it is displayed literally, on one line.

    Every ASCII punctuation character is backslash-escaped and control characters (line
    breaks included) become spaces, so no Markdown, HTML, link, image, maths or colour
    directive can form, whatever the text holds. Strings longer than ``limit`` are cut.
    """
    return _MD_ACTIVE.sub(r"\\\1", _CONTROL.sub(" ", clip(text, limit)))


def plotly_text(text: object, limit: int | None = None) -> str:
    """``text`` for a plotly label (trace name, tick, hover, title, annotation): ``&``, ``<``
    and ``>`` become HTML entities, which plotly displays as the characters themselves."""
    return html.escape(clip(text, limit), quote=False)
