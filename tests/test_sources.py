"""Tests of the manifest sources: the embedded openclipart demo and the H&M importer."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image, ImageDraw

from pinterest_mm.data.sources import hm
from tools.demo_data import openclipart
from tools.demo_data.openclipart import CategorySpec, ClipMeta

REPO = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO / "pinterest_mm" / "demo_data"
HM_DIR = REPO.parent / "shared" / "data" / "hm"


def _forms(word: str) -> set[str]:
    """A word with a trailing s added and removed: enough to test the leak check."""
    return {word, word + "s", word + "es", word.removesuffix("s"), word.removesuffix("es")}


def _label_words(category: str, board: str) -> set[str]:
    """Words that would give a pin's label away: its category's words, its top folder's."""
    top = board.split("/")[0].lower()
    raw = re.findall(r"[a-z]+", category.lower()) + [top] + top.split("_")
    return set().union(*(_forms(w) for w in raw if w not in {"and", "&"}))


# --------------------------------------------------------------------- the committed demo


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return pd.read_csv(DEMO_DIR / "manifest.csv", dtype=str, keep_default_na=False)


def test_demo_has_10_or_more_categories_of_40_to_100(demo: pd.DataFrame) -> None:
    counts = demo["category"].value_counts()
    assert len(counts) >= 10
    assert counts.between(40, 100).all(), counts.to_dict()


def test_demo_manifest_columns_and_ids(demo: pd.DataFrame) -> None:
    assert list(demo.columns) == openclipart.MANIFEST_COLUMNS
    assert demo["pin_id"].is_unique
    assert (demo["description"].str.strip() != "").all()
    assert (demo["board"] != "").all()


def test_demo_images_exist_rgb_and_small(demo: pd.DataFrame) -> None:
    for rel in demo["image"]:
        path = DEMO_DIR / rel
        assert path.is_file(), rel
        with Image.open(path) as im:
            assert im.mode == "RGB", rel
            assert max(im.size) <= 256, rel


def test_demo_total_size_at_most_25_mb() -> None:
    total = sum(p.stat().st_size for p in DEMO_DIR.rglob("*") if p.is_file())
    assert total <= 25 * 2**20


def test_demo_descriptions_do_not_name_their_category(demo: pd.DataFrame) -> None:
    for row in demo.itertuples():
        tokens = set(re.findall(r"[a-z0-9]+", row.description.lower()))
        leaked = tokens & _label_words(row.category, row.board)
        assert not leaked, (row.pin_id, row.category, leaked)


def test_demo_attribution_lists_every_category() -> None:
    text = (DEMO_DIR / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "public domain" in text.lower()
    demo = pd.read_csv(DEMO_DIR / "manifest.csv", dtype=str, keep_default_na=False)
    for category, n in demo["category"].value_counts().items():
        assert f"| {category} | {n} |" in text


# --------------------------------------------------------------------- text cleaning


def test_word_forms_singular_and_plural() -> None:
    assert {"animal", "animals"} <= openclipart.word_forms("Animals")
    assert {"holiday", "holidays"} <= openclipart.word_forms("holiday")
    assert {"berry", "berries"} <= openclipart.word_forms("berries")


def test_category_words_from_name_and_folders() -> None:
    spec = CategorySpec("Science & nature", ("science", "signs_and_symbols/weather"))
    words = openclipart.category_words(spec)
    assert {"science", "nature", "natures", "weather", "signs_and_symbols", "symbol"} <= words
    assert "and" not in words and "&" not in words


def test_clean_text_removes_category_words_case_insensitively() -> None:
    banned = openclipart.category_words(CategorySpec("Animals", ("animals",)))
    assert openclipart.clean_text("A cute Animal with ANIMALS around", banned) == (
        "A cute with around"
    )


def test_clean_text_removes_prefixed_words_and_junk() -> None:
    banned = openclipart.category_words(CategorySpec("Film music books", ("recreation/music",)))
    text = "Guitar &amp; musicstuff HASH(0x89cb06c) see http://x.org/a by jo@example.org"
    assert openclipart.clean_text(text, banned) == "Guitar & see by"
    assert openclipart.clean_text("hash, unsorted") == ""
    assert openclipart.clean_text("Fried Eggs (B and W)") == "Fried Eggs (B and W)"
    assert openclipart.clean_text("north_america") == "north america"


def test_build_description_combines_and_cleans_parts() -> None:
    meta = ClipMeta(
        title="Red Apple",
        description="A shiny red apple, healthy food.",
        keywords=("food", "fruit", "apple", "Fruit", "Jane Doe"),
        creator="Jane Doe",
    )
    banned = openclipart.category_words(CategorySpec("Food and drink", ("food",)))
    assert openclipart.build_description(meta, banned) == (
        "Red Apple. A shiny red apple, healthy. fruit, apple"
    )


def test_build_description_drops_clipart_by_titles_and_can_be_empty() -> None:
    meta = ClipMeta(title="Clipart by Nicu Buculei - antenna", keywords=("hash", "computer"))
    banned = openclipart.category_words(CategorySpec("Technology", ("computer",)))
    assert openclipart.build_description(meta, banned) == ""


def test_clean_author() -> None:
    assert openclipart.clean_author("zazou (shockwavedj@example.es)") == "zazou"
    assert openclipart.clean_author("fudriot@example.ch") == "fudriot"
    assert openclipart.clean_author("HASH(0x89c79d4)") == ""
    assert openclipart.clean_author(" Gerald G. ") == "Gerald G."


def test_folder_category_longest_prefix_and_exclusions() -> None:
    cats = (CategorySpec("Travel", ("geography",)), CategorySpec("Science", ("geography/astro",)))
    assert openclipart.folder_category("geography/maps", cats, ()).name == "Travel"
    assert openclipart.folder_category("geography/astro/moon", cats, ()).name == "Science"
    assert openclipart.folder_category("geography/x", cats, ("geography/x",)) is None
    assert openclipart.folder_category("food", cats, ()) is None


# --------------------------------------------------------------------- a tiny openclipart tree

SVG_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:cc="http://web.resource.org/cc/"
     xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" width="10" height="10">
  <metadata><rdf:RDF><cc:Work rdf:about="">{fields}</cc:Work></rdf:RDF></metadata>
  {body}
</svg>
"""


def _svg(title: str = "", desc: str = "", keywords: tuple[str, ...] = (), creator: str = "",
         body: str = "") -> str:
    fields = ""
    if title:
        fields += f"<dc:title>{title}</dc:title>"
    if desc:
        fields += f"<dc:description>{desc}</dc:description>"
    if keywords:
        items = "".join(f"<rdf:li>{k}</rdf:li>" for k in keywords)
        fields += f"<dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject>"
    if creator:
        fields += f"<dc:creator><cc:Agent><dc:title>{creator}</dc:title></cc:Agent></dc:creator>"
    return SVG_TEMPLATE.format(fields=fields, body=body)


def _png(path: Path, shape: int) -> None:
    """A transparent 100 x 60 PNG with a shape that differs by ``shape`` (distinct hashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGBA", (100, 60), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    for i in range(shape + 1):
        x = 5 + 17 * i
        draw.rectangle((x, 5 + 3 * i, x + 8, 50 - 2 * i), fill=(200, 30 * i % 255, 40, 255))
    draw.ellipse((60 - 4 * shape, 10, 95, 20 + 6 * shape), fill=(20, 90, 200, 255))
    im.save(path)


def _clip(root: Path, folder: str, name: str, svg_text: str, shape: int | None) -> None:
    svg = root / "svg" / folder / f"{name}.svg"
    svg.parent.mkdir(parents=True, exist_ok=True)
    svg.write_text(svg_text, encoding="utf-8")
    if shape is not None:
        _png(root / "png" / folder / f"{name}.png", shape)


TINY_CATEGORIES = (
    CategorySpec("Animals", ("animals",)),
    CategorySpec("Food and drink", ("food",)),
)


@pytest.fixture()
def tiny_tree(tmp_path: Path) -> Path:
    root = tmp_path / "openclipart"
    text = "A friendly cartoon {} sitting under a tall green tree"
    _clip(root, "animals", "cat_jane", _svg("Cat", text.format("cat"), ("animal", "cat", "pet"),
                                           "Jane Doe"), 0)
    _clip(root, "animals/birds", "owl_bob", _svg("Owl", text.format("owl"), ("bird", "animals"),
                                                "Bob Roe"), 1)
    _clip(root, "animals", "dog_jane", _svg("Dog", text.format("dog"), ("dog",), "Jane Doe"), 2)
    _clip(root, "animals", "no_png", _svg("Fox", text.format("fox"), ("fox",), "Bob Roe"), None)
    _clip(root, "animals", "only_label", _svg("Animal", "", ("animals",), "Bob Roe"), 3)
    _clip(root, "animals", "same_image", _svg("Cow", text.format("cow"), ("cow",), "Bob Roe"), 0)
    _clip(root, "food", "pie_ann", _svg("Cherry pie", "A warm cherry pie on a plate with a fork",
                                        ("food", "dessert"), "Ann Poe"), 4)
    _clip(root, "food", "tea_ann", _svg("Tea", "A hot cup of green tea and a small spoon",
                                        ("drink", "tea"), "Ann Poe"), 5)
    _clip(root, "food", "broken", "<svg><metadata>", 6)
    return root


def test_build_demo_on_tiny_tree(tiny_tree: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    manifest_path = openclipart.build_demo(
        out, tiny_tree, thumb_px=32, per_category_min=1, categories=TINY_CATEGORIES
    )
    assert manifest_path == out / "manifest.csv"
    m = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
    assert list(m.columns) == openclipart.MANIFEST_COLUMNS
    assert sorted(m["pin_id"]) == ["cat-jane", "dog-jane", "owl-bob", "pie-ann", "tea-ann"]
    assert m.groupby("category").size().to_dict() == {"Animals": 3, "Food and drink": 2}
    by_id = m.set_index("pin_id")
    assert by_id.loc["owl-bob", "board"] == "animals/birds"
    assert by_id.loc["owl-bob", "user_id"] == "Bob Roe"
    assert by_id.loc["cat-jane", "image"] == "images/animals/cat-jane.png"
    assert by_id.loc["cat-jane", "description"].startswith("Cat. A friendly cartoon cat")
    assert by_id.loc["pie-ann", "description"] == (
        "Cherry pie. A warm cherry pie on a plate with a fork. dessert"
    )
    for row in m.itertuples():
        tokens = set(re.findall(r"[a-z]+", row.description.lower()))
        assert not tokens & _label_words(row.category, row.board)
        with Image.open(out / row.image) as im:
            assert im.mode == "RGB" and max(im.size) == 32
            assert im.getpixel((0, 0)) == (255, 255, 255)  # transparency on white
    attribution = (out / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "| Animals | 3 |" in attribution and "| Jane Doe | 2 |" in attribution
    printed = capsys.readouterr().out
    for reason in ("no PNG", "unreadable", "empty description", "duplicate image"):
        assert reason in printed


def test_build_demo_is_deterministic_and_capped(tiny_tree: Path, tmp_path: Path) -> None:
    kwargs = dict(per_category_max=2, per_category_min=1, seed=3, categories=TINY_CATEGORIES)
    a = pd.read_csv(openclipart.build_demo(tmp_path / "a", tiny_tree, **kwargs))
    b = pd.read_csv(openclipart.build_demo(tmp_path / "b", tiny_tree, **kwargs))
    pd.testing.assert_frame_equal(a, b)
    assert a.groupby("category").size().to_dict() == {"Animals": 2, "Food and drink": 2}


def test_build_demo_drops_small_categories_and_checks_size(tiny_tree: Path,
                                                           tmp_path: Path) -> None:
    path = openclipart.build_demo(tmp_path / "c", tiny_tree, per_category_min=3,
                                  categories=TINY_CATEGORIES)
    assert set(pd.read_csv(path)["category"]) == {"Animals"}
    with pytest.raises(RuntimeError, match="limit"):
        openclipart.build_demo(tmp_path / "d", tiny_tree, per_category_min=1,
                               max_total_mb=0.0001, categories=TINY_CATEGORIES)


def test_openclipart_main(tiny_tree: Path, tmp_path: Path) -> None:
    # The default mapping also maps the tiny tree's "animals" and "food" folders.
    args = [str(tmp_path / "e"), "--root", str(tiny_tree), "--per-category-min", "1"]
    assert openclipart.main(args + ["--thumb-px", "32"]) == 0
    m = pd.read_csv(tmp_path / "e" / "manifest.csv")
    assert set(m["category"]) == {"Animals", "Food and drink"}
    with pytest.raises(RuntimeError, match="no pins"):  # the default minimum (40) drops both
        openclipart.main([str(tmp_path / "f"), "--root", str(tiny_tree)])


# --------------------------------------------------------------------- H&M


def _write_fake_hm(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    pd.DataFrame(
        {
            "article_id": ["0100000001", "0100000002", "0200000003"],
            "prod_name": ["Basic tee", "Slim jeans", "Wool hat"],
            "product_type_name": ["T-shirt", "Trousers", "Hat/beanie"],
            "section_name": ["Womens Basics", "Denim Men", "Kids Accessories"],
            "detail_desc": ["Top in soft cotton jersey.", "", "Knitted hat in wool."],
        }
    ).to_csv(root / "articles.csv", index=False)
    for article_id in ["0100000001", "0100000002"]:  # no image for 0200000003
        Image.new("RGB", (8, 8), "gray").save(root / "images" / f"{article_id}.jpg")
    pd.DataFrame(
        {
            "t_dat": ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"],
            "customer_id": ["c1", "c1", "c2", "c3"],
            "article_id": ["0100000001", "0100000001", "0100000001", "0200000003"],
        }
    ).to_csv(root / "transactions.csv", index=False)
    return root


def test_hm_manifest_rows_users_and_missing_images(tmp_path: Path, capsys) -> None:
    hm_dir = _write_fake_hm(tmp_path / "hm")
    out = hm.write_hm_manifest(hm_dir, "hm-section", tmp_path / "out" / "m.csv")
    m = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(m.columns) == hm.MANIFEST_COLUMNS
    assert m[["pin_id", "user_id"]].values.tolist() == [
        ["0100000001", "c1"],  # two purchases by c1: one save
        ["0100000001", "c2"],
        ["0100000002", ""],  # never bought: one row, no user
    ]
    assert set(m["image"]) == {"images/0100000001.jpg", "images/0100000002.jpg"}
    assert all((hm_dir / rel).is_file() for rel in m["image"])
    assert m["category"].tolist() == ["Womens Basics", "Womens Basics", "Denim Men"]
    assert m["description"].tolist()[0] == "Basic tee. Top in soft cotton jersey."
    assert m["description"].tolist()[2] == "Slim jeans"
    printed = capsys.readouterr().out
    assert "1 articles dropped" in printed


def test_hm_recipes_pick_their_label(tmp_path: Path) -> None:
    hm_dir = _write_fake_hm(tmp_path / "hm")
    rows, n_missing = hm.hm_manifest(hm_dir, "hm-25")
    assert n_missing == 1
    assert rows.drop_duplicates("pin_id")["category"].tolist() == ["T-shirt", "Trousers"]
    for recipe in ("hm-section", "hm-25"):
        assert hm.RECIPES[recipe]["import_options"] == {"min_per_class": 100,
                                                        "max_per_class": 100}
    with pytest.raises(KeyError):
        hm.hm_manifest(hm_dir, "hm-colour")


def test_hm_main_and_parquet(tmp_path: Path) -> None:
    hm_dir = _write_fake_hm(tmp_path / "hm")
    assert hm.main([str(hm_dir), "--recipe", "hm-25", "--out", str(tmp_path / "m.csv")]) == 0
    csv = pd.read_csv(tmp_path / "m.csv", dtype=str, keep_default_na=False)
    path = hm.write_hm_manifest(hm_dir, "hm-25", tmp_path / "m.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(path).fillna(""), csv)


@pytest.mark.skipif(not HM_DIR.is_dir(), reason="../shared/data/hm is not available")
@pytest.mark.parametrize(("recipe", "n_classes"), [("hm-section", 28), ("hm-25", 25)])
def test_hm_real_data(recipe: str, n_classes: int) -> None:
    rows, n_missing = hm.hm_manifest(HM_DIR, recipe)
    assert n_missing == 0
    pins = rows.drop_duplicates("pin_id")
    assert len(pins) == 11_800
    assert pins["pin_id"].str.fullmatch(r"0\d{9}").all()  # leading zeros kept
    assert (pins["category"].value_counts() >= 100).sum() == n_classes
    users = rows.loc[rows["user_id"] != "", "user_id"]
    assert users.nunique() == 1_037
    assert (rows["user_id"] == "").sum() == 11_800 - 4_116  # articles never bought
    assert not rows.duplicated(["pin_id", "user_id"]).any()
