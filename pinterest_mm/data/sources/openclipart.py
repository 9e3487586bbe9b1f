"""Build the embedded demo dataset from Debian's public-domain Open Clip Art Library.

The Debian packages ``openclipart-svg`` and ``openclipart-png`` (version 0.18) install about
8,000 clips under ``/usr/share/openclipart/{svg,png}/<folder>/<name>.{svg,png}``. Each SVG carries
RDF / Dublin Core metadata (title, description, keywords, creator). This module maps clip-art
folders to Pinterest categories (thesis Table 3.1 names), draws a seeded sample per category and
writes a pin MANIFEST (one row per pin; the clip's author plays the part of the user who saved
it):

    out_dir/manifest.csv          pin_id, image, description, category, user_id, board
    out_dir/images/<slug>/<pin_id>.png   RGB thumbnails, at most ``thumb_px`` on the long side
    out_dir/ATTRIBUTION.md        licence, counts per category, authors

Descriptions are built from the SVG title, description and keywords, with the words of the
pin's own category (its name and the names of the folders mapped to it, singular and plural)
removed, so that the text does not simply spell out the label.

Usage::

    python -m pinterest_mm.data.sources.openclipart OUT_DIR [--root /usr/share/openclipart]
"""

from __future__ import annotations

import argparse
import html
import random
import re
import shutil
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import imagehash
import pandas as pd
from PIL import Image

from ..clean import HASH_SIZE, clean_words

DEFAULT_ROOT = Path("/usr/share/openclipart")
MANIFEST_NAME = "manifest.csv"
ATTRIBUTION_NAME = "ATTRIBUTION.md"
MANIFEST_COLUMNS = ["pin_id", "image", "description", "category", "user_id", "board"]


@dataclass(frozen=True)
class CategorySpec:
    """A Pinterest category and the openclipart folders whose clips it takes.

    Attributes:
        name: Category name (thesis Table 3.1 spelling).
        folders: Folder paths relative to ``svg/``; sub-folders are included unless a longer
            mapped or excluded folder claims them.
        extra_words: Further words that give the label away (removed from descriptions).
    """

    name: str
    folders: tuple[str, ...]
    extra_words: tuple[str, ...] = ()


CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec("Animals", ("animals",)),
    CategorySpec("Cars & motorcycles", ("transportation",)),
    CategorySpec("DIY crafts", ("tools",)),
    CategorySpec("Education", ("education", "office")),
    CategorySpec("Film music books", ("recreation/music", "education/books")),
    CategorySpec("Food and drink", ("food",)),
    CategorySpec("Gardening", ("plants",), extra_words=("garden",)),
    CategorySpec("Holiday events", ("recreation/holiday", "recreation/party")),
    CategorySpec(
        "Science & nature",
        (
            "science",
            "geography/astronomy",
            "signs_and_symbols/weather",
            "animals/dinosaurs",
            "people/bodypart",
        ),
    ),
    # "recreation" itself adds its loose clips (scuba tanks, darts, a runner... and a few
    # hobbies); its other sub-folders belong to other categories or are excluded.
    CategorySpec("Sports", ("recreation/sports", "recreation")),
    CategorySpec(
        "Technology",
        (
            "computer/hardware",
            "computer/network",
            "computer/connectors",
            "electronics",
            "office/telephone",
        ),
    ),
    CategorySpec(
        "Travel", ("geography", "transportation/boating", "transportation/aiga-symbols")
    ),
)
"""The default folder-to-category mapping (12 categories).

Two more were tried and left out for having fewer than 40 usable clips (distinct images,
descriptions of 4 or more words): "Architecture" (``buildings``: 30) and "Kids"
(``recreation/toys``, ``recreation/games``: 34 besides the balls it shares with "Sports").
"""

EXCLUDED_FOLDERS: tuple[str, ...] = (
    "recreation/art",
    "recreation/games",
    "recreation/religion",
    "recreation/toys",
    "tools/weapons",
    "transportation/roadsigns",
)
"""Folders left out although a mapped parent folder would include them."""

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
_NS_RE = re.compile(r"^\{[^}]*\}")


@dataclass(frozen=True)
class ClipMeta:
    """Metadata read from one SVG's RDF block.

    Attributes:
        title: ``dc:title`` of the work ('' when missing).
        description: ``dc:description`` ('' when missing).
        keywords: The ``rdf:li`` items of ``dc:subject``.
        creator: Title of the first ``dc:creator`` agent ('' when missing).
        links_external_image: The drawing embeds an ``<image>`` by a link to a file (not a
            ``data:`` URI); its PNG then shows a "Linked Image Not Found" placeholder.
    """

    title: str = ""
    description: str = ""
    keywords: tuple[str, ...] = ()
    creator: str = ""
    links_external_image: bool = False


# --------------------------------------------------------------------------- text helpers


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


# --------------------------------------------------------------------------- file helpers


def _local(tag: str) -> str:
    return _NS_RE.sub("", tag)


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def _href(element: ET.Element) -> str:
    return next((v for k, v in element.attrib.items() if _local(k) == "href"), "").strip()


def read_svg_metadata(svg_path: Path) -> ClipMeta:
    """Read title, description, keywords and creator from an SVG's RDF metadata.

    Also notes whether the drawing links an external image file (see :class:`ClipMeta`).

    Namespace prefixes are ignored (only local tag names are matched), and any missing field
    is returned empty.

    Args:
        svg_path: Path to an SVG file.

    Returns:
        The clip's metadata.

    Raises:
        ET.ParseError: If the file is not well-formed XML.
        OSError: If it cannot be read.
    """
    root = ET.parse(svg_path).getroot()
    links_external = any(
        _local(el.tag) == "image" and not _href(el).startswith("data:") for el in root.iter()
    )
    work = next((el for el in root.iter() if _local(el.tag) == "Work"), None)
    if work is None:
        return ClipMeta(links_external_image=links_external)

    def text_of(name: str) -> str:
        el = _child(work, name)
        return (el.text or "").strip() if el is not None else ""

    subject = _child(work, "subject")
    keywords: tuple[str, ...] = ()
    if subject is not None:
        items = [(li.text or "").strip() for li in subject.iter() if _local(li.tag) == "li"]
        if not items and subject.text:  # plain-text keywords
            items = re.split(r"[,;\s]+", subject.text)
        keywords = tuple(k for k in items if k)

    creator = ""
    creator_el = _child(work, "creator")
    if creator_el is not None:
        titles = [el for el in creator_el.iter() if _local(el.tag) == "title"]
        creator = (titles[0].text or "") if titles else "".join(creator_el.itertext())
    return ClipMeta(
        title=text_of("title"),
        description=text_of("description"),
        keywords=keywords,
        creator=creator.strip(),
        links_external_image=links_external,
    )


def make_thumbnail(png_path: Path, thumb_px: int = 256) -> Image.Image:
    """Open a PNG, composite any transparency on white and shrink it to fit ``thumb_px``.

    Args:
        png_path: Path to the PNG.
        thumb_px: Maximum size of the long side (images are never enlarged).

    Returns:
        An RGB image.
    """
    with warnings.catch_warnings():  # a few trusted clips are very large (about 170 Mpx)
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(png_path) as im:
            rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB")
    rgb.thumbnail((thumb_px, thumb_px), Image.Resampling.LANCZOS)
    return rgb


def image_fingerprint(image: Image.Image) -> str:
    """The importer's duplicate key: a 256-bit difference hash of the grayscale image.

    Args:
        image: A thumbnail.

    Returns:
        The hash in hex; equal hashes make the importer drop all but one of the images.
    """
    return str(imagehash.dhash(image.convert("L"), hash_size=HASH_SIZE))


def folder_category(
    folder: str,
    categories: tuple[CategorySpec, ...] = CATEGORIES,
    excluded: tuple[str, ...] = EXCLUDED_FOLDERS,
) -> CategorySpec | None:
    """Find the category of a folder: the longest mapped (or excluded) folder prefix wins.

    Args:
        folder: Folder path relative to ``svg/``, with ``/`` separators.
        categories: The mapping.
        excluded: Folders to leave out.

    Returns:
        The category, or None when the folder is unmapped or excluded.
    """
    best: tuple[int, CategorySpec | None] = (-1, None)
    candidates = [(f, spec) for spec in categories for f in spec.folders]
    candidates += [(f, None) for f in excluded]
    for prefix, spec in candidates:
        if folder == prefix or folder.startswith(prefix + "/"):
            if len(prefix) > best[0]:
                best = (len(prefix), spec)
    return best[1]


def list_clips(
    openclipart_root: Path,
    categories: tuple[CategorySpec, ...] = CATEGORIES,
    excluded: tuple[str, ...] = EXCLUDED_FOLDERS,
) -> dict[str, list[Path]]:
    """Group the SVG files under ``openclipart_root/svg`` by category.

    Args:
        openclipart_root: Folder holding ``svg/`` and ``png/``.
        categories: The mapping.
        excluded: Folders to leave out.

    Returns:
        Category name -> sorted SVG paths (categories without clips are absent).
    """
    svg_root = openclipart_root / "svg"
    clips: dict[str, list[Path]] = {}
    for svg in sorted(svg_root.rglob("*.svg")):
        folder = svg.parent.relative_to(svg_root).as_posix()
        spec = folder_category(folder, categories, excluded)
        if spec is not None:
            clips.setdefault(spec.name, []).append(svg)
    return clips


def dir_size_bytes(path: Path) -> int:
    """Total size of all files under ``path``.

    Args:
        path: A folder.

    Returns:
        Size in bytes.
    """
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- the build


@dataclass
class _Pin:
    """A candidate pin: its manifest row (id and image path filled in last) and its PNG."""

    row: dict[str, str]
    png: Path
    fingerprint: str


def _unique_id(base: str, used: set[str]) -> str:
    """Return ``base``, or ``base-2``, ``base-3``... if taken, and mark it as used."""
    pin_id, n = base or "clip", 2
    while pin_id in used:
        pin_id, n = f"{base}-{n}", n + 1
    used.add(pin_id)
    return pin_id


def write_attribution(out_dir: Path, manifest: pd.DataFrame) -> Path:
    """Write ``ATTRIBUTION.md``: licence, source, counts per category and authors.

    Args:
        out_dir: The dataset folder.
        manifest: The manifest rows.

    Returns:
        Path of the file written.
    """
    lines = [
        "# Demo dataset: attribution",
        "",
        "The images and texts of this demo come from the **Open Clip Art Library**, as packaged",
        "by Debian (`openclipart-svg` and `openclipart-png`, version 0.18). Every clip was",
        "dedicated to the **public domain** by its author under the Creative Commons Public",
        "Domain Dedication (the forerunner of CC0; see `/usr/share/doc/openclipart-svg/copyright`",
        "on a Debian system), so it may be copied, modified and redistributed without",
        "restriction. The authors are listed below with thanks.",
        "",
        "Built by `python -m pinterest_mm.data.sources.openclipart`: PNGs were composited on",
        "white and shrunk to thumbnails; descriptions were built from each SVG's title,",
        "description and keywords, without the words of the pin's own category and without the",
        "author's name. The `user_id` of a pin is the clip's author; the `board` is its clip-art",
        "folder.",
        "",
        "## Pins per category",
        "",
        "| Category | Pins |",
        "|---|---:|",
    ]
    for category, n in manifest["category"].value_counts().sort_index().items():
        lines.append(f"| {category} | {n} |")
    lines += [f"| **Total** | **{len(manifest)}** |", "", "## Authors", "", "| Author | Pins |",
              "|---|---:|"]
    authors = manifest["user_id"].replace("", "(unknown)").value_counts()
    for author, n in sorted(authors.items(), key=lambda kv: (-kv[1], kv[0].lower())):
        lines.append(f"| {author.replace('|', '/')} | {n} |")
    path = out_dir / ATTRIBUTION_NAME
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_pin(
    svg: Path, openclipart_root: Path, spec: CategorySpec, *, thumb_px: int, min_words: int
) -> _Pin | str:
    """Turn one clip into a candidate pin.

    Args:
        svg: The clip's SVG file.
        openclipart_root: Folder holding ``svg/`` and ``png/``.
        spec: The clip's category.
        thumb_px: Maximum long side of the thumbnail (used for the duplicate fingerprint).
        min_words: Fewest content words in the description.

    Returns:
        The pin, or the reason to skip the clip.
    """
    rel = svg.relative_to(openclipart_root / "svg")
    png = openclipart_root / "png" / rel.with_suffix(".png")
    if not png.is_file():
        return "no PNG"
    try:
        meta = read_svg_metadata(svg)
        thumb = make_thumbnail(png, thumb_px)
    except (OSError, ET.ParseError, ValueError, Image.DecompressionBombError) as err:
        print(f"  skip unreadable {rel}: {err}")
        return "unreadable"
    if meta.links_external_image:
        return "linked image not found"
    description = build_description(meta, category_words(spec))
    if not description:
        return "empty description"
    if count_content_words(description) < min_words:
        return f"description under {min_words} words"
    row = {
        "pin_id": slugify(svg.stem),
        "image": "",
        "description": description,
        "category": spec.name,
        "user_id": clean_author(meta.creator),
        "board": rel.parent.as_posix(),
    }
    return _Pin(row=row, png=png, fingerprint=image_fingerprint(thumb))


def collect_candidates(
    openclipart_root: Path,
    categories: tuple[CategorySpec, ...],
    *,
    thumb_px: int,
    min_words: int,
    skipped: Counter[str],
) -> dict[str, list[_Pin]]:
    """Make a candidate pin of every usable clip, one image per category.

    Args:
        openclipart_root: Folder holding ``svg/`` and ``png/``.
        categories: The mapping.
        thumb_px: Maximum long side of the thumbnails.
        min_words: Fewest content words in a description.
        skipped: Counts of skip reasons, updated in place.

    Returns:
        Category name -> candidate pins in file order (a category's repeated images dropped).
    """
    clips = list_clips(openclipart_root, categories)
    candidates: dict[str, list[_Pin]] = {}
    for spec in categories:
        pins: list[_Pin] = []
        seen: set[str] = set()
        for svg in clips.get(spec.name, []):
            pin = make_pin(svg, openclipart_root, spec, thumb_px=thumb_px, min_words=min_words)
            if isinstance(pin, str):
                skipped[pin] += 1
            elif pin.fingerprint in seen:
                skipped["duplicate image"] += 1
            else:
                seen.add(pin.fingerprint)
                pins.append(pin)
        candidates[spec.name] = pins
    return candidates


def resolve_duplicates(candidates: dict[str, list[_Pin]]) -> dict[str, list[_Pin]]:
    """Keep an image found in several categories in only one: the one with the fewest pins.

    This is the thesis's balancing rule for duplicated images, applied greedily: categories
    start with their unshared images, then each shared image (in order of first appearance)
    goes to whichever of its categories has the fewest so far (ties: the one listed first).

    Args:
        candidates: Category name -> candidate pins (each image once per category).

    Returns:
        The candidates with every image in a single category.
    """
    holders: dict[str, list[str]] = {}
    for name, pins in candidates.items():
        for pin in pins:
            holders.setdefault(pin.fingerprint, []).append(name)
    counts = Counter({name: 0 for name in candidates})
    owner: dict[str, str] = {}
    for fingerprint, names in holders.items():
        if len(names) == 1:
            owner[fingerprint] = names[0]
            counts[names[0]] += 1
    order = list(candidates)
    for fingerprint, names in holders.items():
        if len(names) > 1:
            best = min(names, key=lambda n: (counts[n], order.index(n)))
            owner[fingerprint] = best
            counts[best] += 1
    return {
        name: [pin for pin in pins if owner[pin.fingerprint] == name]
        for name, pins in candidates.items()
    }


def select_categories(
    candidates: dict[str, list[_Pin]], per_category_min: int
) -> dict[str, list[_Pin]]:
    """Resolve duplicates and drop categories under ``per_category_min``, until stable.

    A dropped category gives its shared images back to the others, hence the loop.

    Args:
        candidates: Category name -> candidate pins (each image once per category).
        per_category_min: Fewest pins a category needs to be kept.

    Returns:
        The kept categories' pins, every image in a single category.
    """
    active = {name: pins for name, pins in candidates.items() if pins}
    while True:
        resolved = resolve_duplicates(active)
        small = [name for name, pins in resolved.items() if len(pins) < per_category_min]
        if not small:
            return resolved
        for name in small:
            print(f"  drop category {name!r}: {len(resolved[name])} pins < {per_category_min}")
            del active[name]


def build_demo(
    out_dir: Path,
    openclipart_root: Path = DEFAULT_ROOT,
    *,
    per_category_max: int = 80,
    thumb_px: int = 256,
    seed: int = 0,
    per_category_min: int = 40,
    min_words: int = 4,
    max_total_mb: float = 25.0,
    categories: tuple[CategorySpec, ...] = CATEGORIES,
) -> Path:
    """Build the demo pin dataset from an openclipart tree.

    Every clip of a mapped folder is made a candidate unless its PNG is missing, a file cannot
    be read, it links an external image (its PNG shows a placeholder), or its cleaned
    description has fewer than ``min_words`` content words (the importer drops those anyway).
    Repeated images (same grayscale difference hash, as the importer checks) are kept once, in
    the category with the fewest pins; a category left with fewer than ``per_category_min`` is
    dropped. Each category's candidates are then shuffled with a seeded generator and the first
    ``per_category_max`` kept. ``out_dir/images`` is replaced.

    Args:
        out_dir: Output folder (created).
        openclipart_root: Folder holding ``svg/`` and ``png/``.
        per_category_max: Most pins per category.
        thumb_px: Maximum long side of the thumbnails.
        seed: Seed of the per-category shuffles.
        per_category_min: Fewest pins a category needs to be kept.
        min_words: Fewest content words in a description (see :func:`count_content_words`).
        max_total_mb: Size limit of the whole output folder, in MiB.
        categories: The folder-to-category mapping.

    Returns:
        Path of ``manifest.csv``.

    Raises:
        FileNotFoundError: If ``openclipart_root/svg`` does not exist.
        RuntimeError: If no pin was produced or the output exceeds ``max_total_mb``.
    """
    openclipart_root, out_dir = Path(openclipart_root), Path(out_dir)
    if not (openclipart_root / "svg").is_dir():
        raise FileNotFoundError(f"no svg/ folder under {openclipart_root}")
    skipped: Counter[str] = Counter()
    candidates = collect_candidates(
        openclipart_root, categories, thumb_px=thumb_px, min_words=min_words, skipped=skipped
    )
    selected = select_categories(candidates, per_category_min)
    skipped["duplicate image"] += sum(
        len(candidates[name]) - len(pins) for name, pins in selected.items()
    )
    used_ids: set[str] = set()
    kept: list[_Pin] = []
    for spec in categories:
        pins = list(selected.get(spec.name, []))
        random.Random(f"{seed}:{spec.name}").shuffle(pins)
        for pin in pins[:per_category_max]:
            pin.row["pin_id"] = _unique_id(pin.row["pin_id"], used_ids)
            pin.row["image"] = f"images/{slugify(spec.name)}/{pin.row['pin_id']}.png"
            kept.append(pin)
    if not kept:
        raise RuntimeError(f"no pins built from {openclipart_root}")

    manifest = _write_dataset(out_dir, kept, thumb_px)
    write_attribution(out_dir, manifest)
    _report(manifest, skipped, out_dir, max_total_mb)
    return out_dir / MANIFEST_NAME


def _write_dataset(out_dir: Path, pins: list[_Pin], thumb_px: int) -> pd.DataFrame:
    """Write the thumbnails (replacing ``out_dir/images``) and ``manifest.csv``."""
    images_dir = out_dir / "images"
    if images_dir.exists():
        shutil.rmtree(images_dir)
    for pin in pins:
        path = out_dir / pin.row["image"]
        path.parent.mkdir(parents=True, exist_ok=True)
        make_thumbnail(pin.png, thumb_px).save(path, format="PNG", optimize=True)
    manifest = pd.DataFrame([pin.row for pin in pins], columns=MANIFEST_COLUMNS)
    manifest.to_csv(out_dir / MANIFEST_NAME, index=False)
    return manifest


def _report(manifest: pd.DataFrame, skipped: Counter[str], out_dir: Path, max_mb: float) -> None:
    """Print counts per category, skip reasons and the size; enforce the size limit."""
    print("Pins per category:")
    for category, n in manifest["category"].value_counts().sort_index().items():
        print(f"  {category:<22} {n:>4}")
    print(f"  {'total':<22} {len(manifest):>4}   users: {manifest['user_id'].nunique()}")
    print(f"Skipped {sum(skipped.values())} clips: {dict(skipped) or 'none'}")
    size_mb = dir_size_bytes(out_dir) / 2**20
    print(f"Dataset size: {size_mb:.1f} MiB (limit {max_mb:g} MiB) in {out_dir}")
    if size_mb > max_mb:
        raise RuntimeError(f"dataset is {size_mb:.1f} MiB, over the {max_mb:g} MiB limit")


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m pinterest_mm.data.sources.openclipart OUT_DIR``.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        Exit status 0.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="output folder")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="openclipart folder")
    parser.add_argument("--per-category-max", type=int, default=80)
    parser.add_argument("--per-category-min", type=int, default=40)
    parser.add_argument("--thumb-px", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = build_demo(
        args.out_dir,
        args.root,
        per_category_max=args.per_category_max,
        per_category_min=args.per_category_min,
        thumb_px=args.thumb_px,
        seed=args.seed,
    )
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
