"""Text helpers of the openclipart demo: slugs, category words and pin descriptions.

Holds the word lists (:data:`NOISE_WORDS`, :data:`STOPWORDS`), the words that give a
category's label away (:func:`word_forms`, :func:`category_words`, :func:`is_banned`), the
cleaning of metadata text (:func:`clean_text`, :func:`clean_author`), the description of a pin
(:func:`build_description`, :func:`count_content_words`) and :func:`slugify`.
"""

from __future__ import annotations

import html
import re

from pinterest_mm.data.clean import clean_words
from .clip_categories import CategorySpec
from .clip_files import ClipMeta

# Words that carry no meaning in the clip-art metadata (packaging artefacts).
NOISE_WORDS = frozenset({"hash", "unsorted", "clipart", "openclipart", "svg", "png", "inkscape"})
# Function words: never treated as category words.
STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it its of on or the this to with".split()
)
# A banned word this long or longer also bans the words it starts ("music" -> "musical").
MIN_PREFIX_LEN = 4

_WORD_RE = re.compile(r"\w+")
_HASH_RE = re.compile(r"HASH\(0x[0-9a-fA-F]+\)|\b0x[0-9a-fA-F]+\b")
_EMAIL_RE = re.compile(r"\S+@\S+")
_URL_RE = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)
_ANGLE_RE = re.compile(r"<[^>]*>")


def slugify(text: str) -> str:
    """Lower-case ``text`` and turn every run of non-alphanumerics into one hyphen.

    Args:
        text: Any string.

    Returns:
        The slug, e.g. ``"Cars & motorcycles"`` -> ``"cars-motorcycles"``.
    """
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def word_forms(word: str) -> set[str]:
    """Return ``word`` with its simple singular and plural forms (lower-case).

    Args:
        word: One word.

    Returns:
        A set such as ``{"animal", "animals"}`` or ``{"holiday", "holidays"}``.
    """
    w = word.lower()
    forms = {w, w + "s", w + "es"}
    if w.endswith("ies"):
        forms.add(w[:-3] + "y")
    if w.endswith("es"):
        forms.add(w[:-2])
    if w.endswith("s"):
        forms.add(w[:-1])
    if w.endswith("y"):
        forms.add(w[:-1] + "ies")
    return {f for f in forms if f}


def category_words(spec: CategorySpec) -> frozenset[str]:
    """Words that give away ``spec``'s label: its name and its folders' names.

    Folder paths contribute each component whole (``signs_and_symbols``) and split on ``_``/``-``;
    function words such as "and" are left out.

    Args:
        spec: The category.

    Returns:
        Lower-case words, with singular and plural forms.
    """
    raw = _WORD_RE.findall(spec.name.lower()) + [w.lower() for w in spec.extra_words]
    for folder in spec.folders:
        for part in folder.lower().split("/"):
            raw.append(part)
            raw.extend(re.split(r"[_\-]+", part))
    words: set[str] = set()
    for w in raw:
        if w and w not in STOPWORDS:
            words |= word_forms(w)
    return frozenset(words)


def is_banned(token: str, banned: frozenset[str]) -> bool:
    """Tell whether ``token`` is, or starts with, a banned word.

    Args:
        token: A word token.
        banned: Lower-case banned words (see :func:`category_words`).

    Returns:
        True for an exact match (case-insensitive), or when the token starts with a banned word
        of at least ``MIN_PREFIX_LEN`` letters ("musicstuff", "gardening").
    """
    t = token.lower()
    if t in banned:
        return True
    return any(len(b) >= MIN_PREFIX_LEN and t.startswith(b) for b in banned)


def clean_text(text: str, banned: frozenset[str] = frozenset()) -> str:
    """Remove metadata junk and banned words from a piece of text.

    Unescapes HTML entities; drops ``HASH(0x...)`` / ``0x...`` artefacts, e-mail addresses, URLs,
    noise words (``hash``, ``unsorted``...) and banned words; turns underscores into spaces
    (``north_america``); collapses white space and trims punctuation left dangling at either end.

    Args:
        text: Raw text.
        banned: Words to remove (case-insensitive, see :func:`is_banned`).

    Returns:
        The cleaned text, possibly ''.
    """
    text = html.unescape(text or "")
    for pattern in (_HASH_RE, _URL_RE, _EMAIL_RE, _ANGLE_RE):
        text = pattern.sub(" ", text)
    whole = [w for w in _WORD_RE.findall(text) if "_" in w and is_banned(w, banned)]
    for word in whole:  # e.g. the folder name "signs_and_symbols" itself
        text = text.replace(word, " ")
    text = text.replace("_", " ")

    def _drop(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.lower() in NOISE_WORDS or is_banned(token, banned):
            return ""
        return token

    text = _WORD_RE.sub(_drop, text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"([,.;:!?])(?:\s*[,.;:!?])+", r"\1", text)
    text = text.strip(" ,.;:!?-_/")
    return text if re.search(r"[^\W\d_]", text) else ""


def build_description(meta: ClipMeta, banned: frozenset[str] = frozenset()) -> str:
    """Compose a pin description: title, description, then keywords, each cleaned.

    Titles of the form "Clipart by <author> - <file>" are dropped (in this collection they name
    another file, not the clip), and so is the author's name wherever it appears (it is the
    pin's user, not a description). A description equal to the title is not repeated; keywords
    are de-duplicated.

    Args:
        meta: The clip's metadata.
        banned: Words to remove (the category's own words).

    Returns:
        ``"Title. Description. kw1, kw2"`` with empty parts left out; '' if nothing is left.
    """
    title = "" if meta.title.lower().startswith("clipart by") else meta.title
    author = clean_author(meta.creator)
    author_re = re.compile(rf"\b{re.escape(author)}\b", re.IGNORECASE) if author else None

    def _clean(text: str) -> str:
        return clean_text(author_re.sub(" ", text) if author_re else text, banned)

    parts: list[str] = []
    for part in (title, meta.description):
        cleaned = _clean(part)
        if cleaned and cleaned.lower() not in (p.lower() for p in parts):
            parts.append(cleaned)
    keywords: list[str] = []
    for kw in meta.keywords:
        cleaned = _clean(kw)
        if cleaned and cleaned.lower() not in (k.lower() for k in keywords):
            keywords.append(cleaned)
    if keywords:
        parts.append(", ".join(keywords))
    return ". ".join(parts)


def count_content_words(text: str) -> int:
    """Count the words the importer keeps (no stop words, 2 to 20 characters).

    Args:
        text: A description.

    Returns:
        ``len(clean_words(text))``, the number the importer compares with ``--min-words``.
    """
    return len(clean_words(text))


def clean_author(name: str) -> str:
    """Tidy a ``dc:creator`` name: no e-mail addresses, URLs or ``HASH(...)`` artefacts.

    A bare e-mail address keeps its local part (``"jo@example.org"`` -> ``"jo"``).

    Args:
        name: Raw creator title.

    Returns:
        The cleaned name, '' when unknown.
    """
    name = html.unescape(name or "").strip()
    email = re.fullmatch(r"([^@\s]+)@\S+", name)
    if email:
        return email.group(1)
    for pattern in (_HASH_RE, _URL_RE, _EMAIL_RE, _ANGLE_RE):
        name = pattern.sub(" ", name)
    name = re.sub(r"\(\s*\)", " ", name)
    return re.sub(r"\s+", " ", name).strip(" ,;-")
