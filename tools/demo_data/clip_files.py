"""Reading one clip's files: the SVG's RDF metadata, the PNG's thumbnail and its fingerprint.

Holds :class:`ClipMeta` and :func:`read_svg_metadata` (title, description, keywords and creator
from an SVG's Dublin Core block), :func:`make_thumbnail` (a PNG composited on white and shrunk),
:func:`image_fingerprint` (the importer's duplicate key) and :func:`dir_size_bytes`.
"""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import imagehash
from PIL import Image

from pinterest_mm.data.clean import HASH_SIZE

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


def dir_size_bytes(path: Path) -> int:
    """Total size of all files under ``path``.

    Args:
        path: A folder.

    Returns:
        Size in bytes.
    """
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
