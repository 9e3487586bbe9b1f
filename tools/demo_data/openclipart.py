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

The build (candidate pins, duplicate images, the per-category sample, the files written) and
the command line live here; its parts live in sibling modules, whose public names this module
re-exports:

    clip_categories   CategorySpec, CATEGORIES, EXCLUDED_FOLDERS, folder_category, list_clips
    clip_files        ClipMeta, read_svg_metadata, make_thumbnail, image_fingerprint, ...
    clip_text         slugify, category_words, clean_text, build_description, clean_author, ...

Usage::

    python -m tools.demo_data.openclipart OUT_DIR [--root /usr/share/openclipart]
"""

from __future__ import annotations

import argparse
import random
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image

from .clip_categories import (
    CATEGORIES,
    EXCLUDED_FOLDERS,
    CategorySpec,
    folder_category,
    list_clips,
)
from .clip_files import (
    ClipMeta,
    dir_size_bytes,
    image_fingerprint,
    make_thumbnail,
    read_svg_metadata,
)
from .clip_text import (
    MIN_PREFIX_LEN,
    NOISE_WORDS,
    STOPWORDS,
    build_description,
    category_words,
    clean_author,
    clean_text,
    count_content_words,
    is_banned,
    slugify,
    word_forms,
)

__all__ = [
    "ATTRIBUTION_NAME",
    "CATEGORIES",
    "DEFAULT_ROOT",
    "EXCLUDED_FOLDERS",
    "MANIFEST_COLUMNS",
    "MANIFEST_NAME",
    "MIN_PREFIX_LEN",
    "NOISE_WORDS",
    "STOPWORDS",
    "CategorySpec",
    "ClipMeta",
    "build_demo",
    "build_description",
    "category_words",
    "clean_author",
    "clean_text",
    "collect_candidates",
    "count_content_words",
    "dir_size_bytes",
    "folder_category",
    "image_fingerprint",
    "is_banned",
    "list_clips",
    "main",
    "make_pin",
    "make_thumbnail",
    "read_svg_metadata",
    "resolve_duplicates",
    "select_categories",
    "slugify",
    "word_forms",
    "write_attribution",
]

DEFAULT_ROOT = Path("/usr/share/openclipart")
MANIFEST_NAME = "manifest.csv"
ATTRIBUTION_NAME = "ATTRIBUTION.md"
MANIFEST_COLUMNS = ["pin_id", "image", "description", "category", "user_id", "board"]


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
        "Built by `python -m tools.demo_data.openclipart`: PNGs were composited on",
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
    """Command line: ``python -m tools.demo_data.openclipart OUT_DIR``.

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
