"""The folder-to-category mapping of the openclipart demo, and the clips it selects.

Holds :class:`CategorySpec`, the default mapping :data:`CATEGORIES` (12 Pinterest categories,
thesis Table 3.1 names), the folders left out (:data:`EXCLUDED_FOLDERS`), and the two functions
that apply a mapping: :func:`folder_category` (one folder) and :func:`list_clips` (a whole
``svg/`` tree).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
