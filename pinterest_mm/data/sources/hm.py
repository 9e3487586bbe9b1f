"""Turn the H&M product sample (photos, texts, categories, purchases) into a pin MANIFEST.

The H&M folder holds ``articles.csv`` (one row per article), ``transactions.csv`` (purchases:
``t_dat``, ``customer_id``, ``article_id``) and ``images/<article_id>.jpg``. A purchase plays
the part of a Pinterest "save": the manifest has one row per (article, customer) pair, with
``user_id`` = ``customer_id``; an article nobody bought gets one row with an empty ``user_id``.

The ``image`` column holds paths relative to the H&M folder (``images/<article_id>.jpg``), not
to the manifest's folder, so the importer must be told where the images are::

    python -m pinterest_mm.data.sources.hm HM_DIR --recipe hm-section --out hm_section.csv
    # then import hm_section.csv with --images-root HM_DIR --min-per-class 100 --max-per-class 100

Class filtering and drawing (keep classes with >= 100 articles, draw 100 of each) are left to
the importer (see :data:`RECIPES`); only articles whose image file is missing are dropped here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

MANIFEST_COLUMNS = ["pin_id", "image", "description", "category", "user_id"]

RECIPES: dict[str, dict[str, object]] = {
    "hm-section": {
        "label": "section_name",
        "summary": "label = section_name; 28 sections with >= 100 articles, 100 drawn from "
        "each (2,800 pins). Thesis-like: single image or word-vector models reach about "
        "0.45-0.55 accuracy, leaving room for fusion.",
        "import_options": {"min_per_class": 100, "max_per_class": 100},
    },
    "hm-25": {
        "label": "product_type_name",
        "summary": "label = product_type_name; 25 types with >= 100 articles, 100 drawn from "
        "each (2,500 pins). Easy for text: product names often contain the type (a label "
        "leak worth detecting and showing).",
        "import_options": {"min_per_class": 100, "max_per_class": 100},
    },
}
"""Each recipe's label column, a summary and the importer options it is meant to be used with."""


def read_articles(hm_dir: Path) -> pd.DataFrame:
    """Read ``articles.csv`` with every column as text (article ids keep their leading zeros).

    Args:
        hm_dir: The H&M folder.

    Returns:
        The articles, missing texts as ''.
    """
    return pd.read_csv(hm_dir / "articles.csv", dtype=str, keep_default_na=False)


def read_saves(hm_dir: Path) -> pd.DataFrame:
    """Read ``transactions.csv`` as distinct (article_id, customer_id) pairs.

    Args:
        hm_dir: The H&M folder.

    Returns:
        Columns ``article_id`` and ``customer_id``; repeated purchases collapsed; empty (with
        those columns) if the file is absent.
    """
    path = hm_dir / "transactions.csv"
    if not path.is_file():
        return pd.DataFrame(columns=["article_id", "customer_id"], dtype=str)
    tx = pd.read_csv(path, dtype=str, keep_default_na=False)
    tx = tx[(tx["article_id"] != "") & (tx["customer_id"] != "")]
    return tx[["article_id", "customer_id"]].drop_duplicates(ignore_index=True)


def build_description(prod_name: pd.Series, detail_desc: pd.Series) -> pd.Series:
    """``prod_name + ". " + detail_desc``, or just the name when there is no detail.

    Args:
        prod_name: Product names.
        detail_desc: Product descriptions ('' when missing).

    Returns:
        The pin descriptions.
    """
    name, detail = prod_name.str.strip(), detail_desc.str.strip()
    return (name + ". " + detail).where(detail != "", name)


def hm_manifest(hm_dir: Path, recipe: str) -> tuple[pd.DataFrame, int]:
    """Build the manifest rows of a recipe.

    Args:
        hm_dir: The H&M folder.
        recipe: A key of :data:`RECIPES`.

    Returns:
        The manifest (image paths relative to ``hm_dir``) and the number of articles dropped
        for a missing image file.

    Raises:
        KeyError: For an unknown recipe.
    """
    if recipe not in RECIPES:
        raise KeyError(f"unknown recipe {recipe!r}; choose from {sorted(RECIPES)}")
    hm_dir = Path(hm_dir)
    articles = read_articles(hm_dir)
    articles["image"] = "images/" + articles["article_id"] + ".jpg"
    has_image = articles["image"].map(lambda rel: (hm_dir / rel).is_file())
    n_missing = int((~has_image).sum())
    articles = articles[has_image]

    pins = pd.DataFrame(
        {
            "pin_id": articles["article_id"],
            "image": articles["image"],
            "description": build_description(articles["prod_name"], articles["detail_desc"]),
            "category": articles[str(RECIPES[recipe]["label"])].str.strip(),
        }
    )
    saves = read_saves(hm_dir).rename(columns={"article_id": "pin_id", "customer_id": "user_id"})
    rows = pins.merge(saves, on="pin_id", how="left", sort=False)
    rows["user_id"] = rows["user_id"].fillna("")
    rows = rows.sort_values(["pin_id", "user_id"], kind="stable", ignore_index=True)
    return rows[MANIFEST_COLUMNS], n_missing


def images_root_hint(hm_dir: Path) -> str:
    """The importer options this manifest needs.

    Args:
        hm_dir: The H&M folder.

    Returns:
        E.g. ``"--images-root /data/hm --min-per-class 100 --max-per-class 100"``.
    """
    return f"--images-root {Path(hm_dir).resolve()} --min-per-class 100 --max-per-class 100"


def write_hm_manifest(hm_dir: Path, recipe: str, out_path: Path) -> Path:
    """Write the manifest of a recipe to CSV (or Parquet when ``out_path`` ends in .parquet).

    Image paths are relative to ``hm_dir``: import the manifest with ``--images-root hm_dir``
    (printed, see :func:`images_root_hint`), and with ``--min-per-class 100
    --max-per-class 100`` to get the recipe's benchmark.

    Args:
        hm_dir: The H&M folder.
        recipe: ``"hm-section"`` or ``"hm-25"``.
        out_path: Where to write the manifest (parent folders are created).

    Returns:
        ``out_path``.
    """
    rows, n_missing = hm_manifest(hm_dir, recipe)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if out_path.suffix.lower() == ".parquet":
        rows.to_parquet(out_path, index=False)
    else:
        rows.to_csv(out_path, index=False)
    n_pins = rows["pin_id"].nunique()
    n_users = rows.loc[rows["user_id"] != "", "user_id"].nunique()
    print(
        f"{recipe}: {len(rows)} rows, {n_pins} pins, {n_users} users, "
        f"{rows['category'].nunique()} classes; {n_missing} articles dropped (image missing)"
    )
    return out_path


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m pinterest_mm.data.sources.hm HM_DIR --recipe R --out FILE``.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        Exit status 0.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("hm_dir", type=Path, help="folder with articles.csv and images/")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="hm-section")
    parser.add_argument("--out", type=Path, required=True, help="manifest to write (.csv)")
    args = parser.parse_args(argv)
    out = write_hm_manifest(args.hm_dir, args.recipe, args.out)
    print(f"Wrote {out}; import it with {images_root_hint(args.hm_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
