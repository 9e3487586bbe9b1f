"""Pins in any language: splitting unspaced scripts, the script mix, a Chinese dataset end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import TINY_CLASSES, TINY_CONFIG, draw_pin_image
from pinterest_mm.build import build
from pinterest_mm.data import scripts
from pinterest_mm.data.clean import clean_words
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.data.scripts import char_bigrams, script_mix, script_of
from pinterest_mm.store import Store

# The tiny dataset's six classes with Chinese words of their own, and shared filler words.
ZH_WORDS = {
    "Animals": ["小狗", "猫咪", "宠物", "毛发", "爪子", "小猫"],
    "Food and drink": ["披萨", "蛋糕", "食谱", "酱汁", "晚餐", "烘焙"],
    "Gardening": ["郁金香", "种子", "土壤", "堆肥", "花园", "开花"],
    "Sports": ["足球", "进球", "球队", "比赛", "跑步", "体育场"],
    "Technology": ["电脑", "电路", "代码", "机器人", "软件", "芯片"],
    "Travel": ["海滩", "护照", "航班", "酒店", "岛屿", "旅行"],
}
ZH_FILLER = ["可爱", "想法", "周末", "灵感", "颜色", "简单", "明亮", "现代"]


def make_chinese_manifest(folder: Path, per_class: int = 24, seed: int = 0) -> Path:
    """Tiny images with Chinese descriptions written without spaces (3 class words + filler)."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for ci, (cat, (color, shape, _)) in enumerate(TINY_CLASSES.items()):
        for j in range(per_class):
            pin_id = f"zh{ci}_{j:03d}"
            draw_pin_image(color, shape, rng, size=48).save(folder / f"images/{pin_id}.png")
            words = list(rng.choice(ZH_WORDS[cat], 3, replace=False)) + list(
                rng.choice(ZH_FILLER, int(rng.integers(2, 5)), replace=False))
            rng.shuffle(words)
            text = "".join(words[:2]) + "，" + "".join(words[2:]) + "。"
            rows.append(dict(pin_id=pin_id, image=f"images/{pin_id}.png", description=text,
                             category=cat, user_id=f"u{j % 4}", board=cat))
    path = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_chinese_is_split_into_words_and_english_keeps_its_rules():
    assert clean_words("漂亮的红色连衣裙，适合夏天") == ["漂亮", "的", "红色", "连衣裙", "适合", "夏天"]
    assert clean_words("The cat and a dog https://x.co/1") == ["cat", "dog"]  # English stop words, URL
    assert clean_words("Mix of english和中文") == ["mix", "english", "和", "中文"]


def test_japanese_and_thai_become_character_bigrams():
    assert clean_words("赤いドレス") == ["赤い", "いド", "ドレ", "レス"]
    assert clean_words("ขายดี") == ["ขา", "าย", "ยด", "ดี"]
    assert char_bigrams("猫") == ["猫"]


def test_chinese_without_jieba_falls_back_to_bigrams(monkeypatch):
    monkeypatch.setattr(scripts, "_jieba", lambda: None)
    assert clean_words("红色连衣裙") == ["红色", "色连", "连衣", "衣裙"]


def test_combining_marks_stay_inside_words():
    assert clean_words("हिन्दी भाषा") == ["हिन्दी", "भाषा"]


def test_script_detection_and_mix():
    assert [script_of(t) for t in ("红色的连衣裙", "赤いドレス", "a red dress", "ขายดี", "한국어 문장", "Привет", "", "123")] == [
        "Chinese", "Japanese", "Latin", "Thai", "Korean", "Cyrillic", "none", "none"]
    assert script_mix(["a b", "c d", "d e", "中文"]) == "Latin 75%, Chinese 25%"


@pytest.fixture(scope="module")
def zh_store(tmp_path_factory) -> tuple[Store, object]:
    manifest = make_chinese_manifest(tmp_path_factory.mktemp("zh_data"))
    store = Store(tmp_path_factory.mktemp("zh") / "store")
    assert TINY_CONFIG.cleaning.min_words == 4  # the thesis's default
    result = import_manifest(store, manifest, "zh", TINY_CONFIG, progress=False)
    return store, result


def test_chinese_dataset_imports_with_the_thesis_word_minimum(zh_store):
    store, result = zh_store
    assert result.n_pins == 6 * 24  # no pin lost to "too few words"
    steps = result.report.drop_duplicates("step").set_index("step")
    assert steps.loc["text scripts", "reason"] == "Chinese 100%"
    assert steps.loc["too few words", "dropped"] == 0
    words = store.pins("zh")["text_words"].str.split()
    assert words.map(len).min() >= 5 and "体育场" in set(words.sum())


def test_tfidf_models_learn_chinese_far_above_chance(zh_store):
    store, _ = zh_store
    results = build(store, "zh", ["tfidf-lr", "tfidf-svm"], progress=False)
    assert [r["status"] for r in results] == ["built", "built"]
    models = store.models("zh").set_index("model")
    for name in ("tfidf-lr", "tfidf-svm"):
        assert models.loc[name, "test_accuracy"] > 0.8, name  # chance: 1/6
