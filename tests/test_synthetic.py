"""Synthetic datasets (``pinterest_mm.data.synthetic``), the generated test store and the
scale benchmark (``pinterest-mm bench scale``) on a small N."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pinterest_mm.bench_scale import STAGES, ScaleBenchConfig, format_scale_bench, run_scale_bench
from pinterest_mm.data.synthetic import (
    CATEGORIES, VOCABULARY, SyntheticConfig, class_style, synthetic_manifest, write_synthetic,
)
from pinterest_mm.data.synthetic_store import MODELS, TestStoreConfig, write_test_store
from pinterest_mm.store import Store


def test_manifest_is_deterministic_with_29_classes_and_500_users():
    a = synthetic_manifest(SyntheticConfig(n_pins=1_000, seed=3))
    b = synthetic_manifest(SyntheticConfig(n_pins=1_000, seed=3))
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(synthetic_manifest(SyntheticConfig(n_pins=1_000, seed=4)))
    pins = a.drop_duplicates("pin_id")
    assert len(pins) == 1_000 and pins["category"].nunique() == len(CATEGORIES) == 29
    assert a["user_id"].nunique() == 500 and len(a) > len(pins)  # some pins saved twice
    assert SyntheticConfig(n_pins=200_000).users == 2_000  # users grow with N
    for desc, cat in zip(pins["description"].head(200), pins["category"].head(200)):
        words = desc.lower().rstrip(".").split()
        assert sum(w in VOCABULARY[cat] for w in words) >= 3  # the class's own words


def test_images_are_small_distinct_and_carry_the_class(tmp_path):
    path = write_synthetic(tmp_path, SyntheticConfig(n_pins=600, workers=1))
    rows = pd.read_parquet(path).drop_duplicates("pin_id")
    files = [tmp_path / p for p in rows["image"]]
    assert all(f.stat().st_size < 4_000 for f in files)
    assert len({f.read_bytes() for f in files[:100]}) == 100  # every pin its own image
    # the class colour dominates the image's most saturated pixels
    for f, cat in list(zip(files, rows["category"]))[:40]:
        px = np.asarray(Image.open(f).convert("RGB"), np.float64).reshape(-1, 3)
        sat = px.max(1) - px.min(1)
        shape = px[sat > np.percentile(sat, 90)].mean(0)
        colour = np.array(class_style(CATEGORIES.index(cat))[0])
        assert np.abs(shape - colour).mean() < 40, (cat, shape, colour)


def test_bad_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 580 pins"):
        synthetic_manifest(SyntheticConfig(n_pins=100))
    with pytest.raises(ValueError, match="580 pins"):
        run_scale_bench(ScaleBenchConfig(pins=10))
    with pytest.raises(ValueError, match="Unknown engine"):
        run_scale_bench(ScaleBenchConfig(engine="spark"))
    with pytest.raises(ValueError, match="n_models"):
        write_test_store(tmp_path, TestStoreConfig(n_models=0))


def test_test_store_is_written_through_the_store(tmp_path):
    cfg = TestStoreConfig(name="t", n_test=2_000, n_val=1_000, n_train=300, n_users=400, n_models=3)
    write_test_store(tmp_path, cfg)
    store = Store(tmp_path, read_only=True)
    info = store.dataset_info("t")
    assert info["split_counts"] == {"test": 2_000, "train": 300, "val": 1_000}
    assert 300 < info["n_users"] <= 400
    models = store.models("t").set_index("model")
    assert list(models.index) == sorted(list(MODELS)[:3])
    acc = models["test_accuracy"]
    assert acc["synth-effnet-b"] > acc["synth-effnet-s"] > acc["synth-resnet"] > 1 / 29  # by strength
    probs = store.load_probs("t", "synth-resnet", "test")
    assert probs.shape == (2_000, 29) and np.allclose(probs.sum(1), 1, atol=1e-4)
    saves = store.saves("t").groupby("user_id").size()
    assert saves.min() < 5 < saves.max()  # long-tailed: the Users page's filter has work


@pytest.mark.slow
def test_scale_bench_runs_every_stage(tmp_path):
    res = run_scale_bench(ScaleBenchConfig(pins=600, models=("tfidf-lr",), keep=tmp_path))
    stages = {s["stage"]: s for s in res["stages"]}
    assert list(stages) == list(STAGES)
    for s in stages.values():
        assert s["seconds"] > 0 and s["peak_rss_mb"] > 50 and s["ms_per_pin"] == pytest.approx(
            s["seconds"] * 1000 / 600, rel=1e-3)
        # CPU time is measured (the interpreter's imports alone cost CPU) and reported per pin
        assert s["cpu_seconds"] > 0.05 and s["cpu_ms_per_pin"] == pytest.approx(s["cpu_seconds"] * 1000 / 600, rel=1e-3)
    assert res["total_cpu_seconds"] == pytest.approx(sum(s["cpu_seconds"] for s in res["stages"][1:]), abs=0.02)
    assert stages["import"]["extra"]["pins_kept"] == 600  # nothing dropped: no duplicate images
    assert stages["build"]["extra"]["tfidf-lr"]["status"] == "built"
    assert stages["build"]["extra"]["tfidf-lr"]["test_accuracy"] > 0.5
    assert stages["slider"]["extra"]["move_ms_median"] > 0
    assert (tmp_path / "home" / "store.duckdb").exists()  # --keep keeps the store
    assert "one slider move" in format_scale_bench(res)
