"""Tests of the fusion registry and methods."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from pinterest_mm import metrics
from pinterest_mm.bench import SynthModel, run_benchmarks, synthetic_outputs
from pinterest_mm.fusion import (
    FusionResult,
    cross_pool,
    cross_pool_explicit,
    fuse,
    list_methods,
    log_linear,
    mm_weights,
    optimize_weights,
    weighted_sum,
)
from pinterest_mm.fusion.live import FusionStack
from pinterest_mm.outputs import ModelInfo, Outputs

FAST_NET = {"max_epochs": 15, "patience": 3, "hidden": 16}


@pytest.fixture(scope="module")
def outs():
    return synthetic_outputs(n=(400, 200, 200), C=6, seed=1)


class FakeStore:
    """Stands in for Store's fusion cache."""

    def __init__(self):
        self.data, self.puts = {}, 0

    def version(self, dataset):
        return "v1"

    def put_fusion(self, dataset, key, config, result):
        self.puts += 1
        self.data[(dataset, key)] = result

    def get_fusion(self, dataset, key):
        return self.data.get((dataset, key))


def tiny_outputs(img_val, txt_val, y_val, img_test, txt_test, y_test):
    """Two-model Outputs from hand-written probabilities."""
    f = lambda a: np.asarray(a, np.float32)  # noqa: E731
    probs = {"img": {"val": f(img_val), "test": f(img_test)}, "txt": {"val": f(txt_val), "test": f(txt_test)}}
    y = {"train": np.zeros(0, int), "val": np.asarray(y_val), "test": np.asarray(y_test)}
    models = {"img": ModelInfo("img", "image", "image", 0, 0), "txt": ModelInfo("txt", "word_embedding", "text", 0, 0)}
    return Outputs("tiny", ["a", "b"], y, {s: np.arange(len(v)) for s, v in y.items()}, probs, models)


def test_registry_lists_every_method():
    """Check every method of the issue is registered and unknown names/keys raise."""
    expected = {"mm", "lambda", "equal", "best_single", "log_linear", "optimized", "stacking",
                "feature_cross", "gated", "concat_mlp", "attention_mlp"}
    assert expected <= set(list_methods())
    assert list_methods("l*") == ["lambda", "log_linear"]
    with pytest.raises(KeyError, match="known"):
        fuse(None, "nope")
    with pytest.raises(TypeError, match="unknown config keys"):
        fuse(None, "mm", lll=3)


def test_mm_weights_hand_computed():
    """Check eq. 3.4: accs (.5, .6), l=2 -> (1/(1+e^.2), e^.2/(1+e^.2))."""
    w = mm_weights([0.5, 0.6], 2)
    assert w == pytest.approx([1 / (1 + math.e**0.2), math.e**0.2 / (1 + math.e**0.2)])
    assert mm_weights([0.4, 0.4, 0.4], 5) == pytest.approx([1 / 3] * 3)


def test_weighted_sum_and_log_linear_hand_computed():
    """Check eq. 3.5 and the product of experts on two 1-pin models."""
    stack = np.array([[[0.5, 0.5]], [[0.9, 0.1]]], np.float32)
    np.testing.assert_allclose(weighted_sum(stack, [0.25, 0.75]), [[0.8, 0.2]], rtol=1e-6)
    # sqrt(.5*.9) : sqrt(.5*.1) = .6708 : .2236 -> .75 : .25
    np.testing.assert_allclose(log_linear(stack, [0.5, 0.5], eps=0), [[0.75, 0.25]], rtol=1e-5)


def test_fusion_stack_equals_reference():
    """Check FusionStack.fuse/evaluate equal weighted_sum + metrics, with ties and chunking."""
    rng = np.random.default_rng(0)
    stack = np.round(rng.random((3, 1000, 5)), 1).astype(np.float32)
    y = rng.integers(0, 5, 1000)
    w = np.array([0.2, 0.3, 0.5], np.float32)
    ref = weighted_sum(stack, w)
    for threads in (1, 2):
        fs = FusionStack(stack, y, threads=threads, chunk=96)
        np.testing.assert_allclose(fs.fuse(w), ref, rtol=1e-6)
        for ev in (fs.evaluate(w), fs.view(w)):
            np.testing.assert_allclose(ev.topk, metrics.topk_curve(ref, y, 10))
            np.testing.assert_array_equal(ev.confusion, metrics.confusion(y, ref.argmax(1), 5))
            assert ev.accuracy == pytest.approx(metrics.accuracy(ref, y))
        np.testing.assert_allclose(fs.view(w).fused, ref, rtol=1e-6)
        fs.close()


def test_a_live_view_fuses_once(monkeypatch):
    """Check ``FusionStack.view`` fuses every block once per move and scores what it fused."""
    rng = np.random.default_rng(1)
    stack = rng.random((4, 500, 6)).astype(np.float32)
    y = rng.integers(0, 6, 500)
    fs = FusionStack(stack, y, chunk=128)
    calls = []
    fuse_block = FusionStack._fuse_block
    monkeypatch.setattr(FusionStack, "_fuse_block", lambda self, w, i: calls.append(i) or fuse_block(self, w, i))
    w = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    view = fs.view(w)
    assert sorted(calls) == list(range(len(fs.blocks))) == [0, 1, 2, 3]
    ref = weighted_sum(stack, w)
    np.testing.assert_allclose(view.fused, ref, rtol=1e-6)
    np.testing.assert_array_equal(view.confusion, metrics.confusion(y, ref.argmax(1), 6))


def test_lambda_hand_computed():
    """Check lambda*b_img + (1-lambda)*b_txt and that lambda is chosen on validation.

    Val pin (label 0): img [.8,.2], txt [.3,.7]: lambda 0 or .3 -> wrong; .5, .7, 1 -> right.
    """
    o = tiny_outputs([[0.8, 0.2]], [[0.3, 0.7]], [0], [[0.6, 0.4]], [[0.2, 0.8]], [1])
    r = fuse(o, "lambda")
    assert r.chosen == {"lambda": 0.5, "image_model": "img", "text_model": "txt"}
    np.testing.assert_allclose(r.test_probs, [[0.4, 0.6]], rtol=1e-6)
    assert r.test_accuracy == 1.0 and r.weights == {"img": 0.5, "txt": 0.5}
    r = fuse(o, "lambda", lam=0.7)
    np.testing.assert_allclose(r.val_probs, [[0.65, 0.35]], rtol=1e-6)


def test_mm_equal_best_single(outs):
    """Check MM weights are softmax(acc*l) of the selected models and baselines are consistent."""
    r = fuse(outs, "mm")
    models = r.chosen["models"]
    assert set(models) == {"img_a", "img_b", "we_a", "we_b", "tr_a"}
    accs = [metrics.accuracy(outs.probs[m]["val"], outs.y["val"]) for m in models]
    assert list(r.weights.values()) == pytest.approx(mm_weights(accs, r.chosen["l"]).tolist())
    assert len(r.grid) == 5 and r.val_accuracy == max(g["val_accuracy"] for g in r.grid)
    assert len(r.test_topk) == 10 and r.test_topk[0] == pytest.approx(r.test_accuracy)
    r1 = fuse(outs, "mm", n_image=1, n_word_embedding=1, n_transformer=0, l=3.0)
    assert r1.chosen["models"] == ["img_a", "we_a"] and r1.chosen["l"] == 3.0
    eq = fuse(outs, "equal", models=("img_a", "we_a"))
    np.testing.assert_allclose(eq.test_probs, (outs.probs["img_a"]["test"] + outs.probs["we_a"]["test"]) / 2, rtol=1e-6)
    bs = fuse(outs, "best_single")
    best = max(outs.models, key=lambda m: metrics.accuracy(outs.probs[m]["val"], outs.y["val"]))
    assert bs.chosen["model"] == best


def _with_test_labels(o: Outputs, y_test) -> Outputs:
    return dataclasses.replace(o, y={**o.y, "test": np.asarray(y_test)})


@pytest.mark.parametrize("method,setting", [("mm", "l"), ("lambda", "lambda"), ("log_linear", "l")])
def test_leak_settings_chosen_on_validation_only(outs, method, setting):
    """Check the chosen setting ignores test labels that favour another setting."""
    base = fuse(outs, method)
    others = [g for g in base.grid if g["setting"][setting] != base.chosen[setting]]
    other = others[0]["setting"]
    # Test labels that make the *other* setting perfect on test.
    forced = fuse(outs, method, **({"l": other["l"]} if setting == "l" else {"lam": other["lambda"]}))
    leaky = _with_test_labels(outs, forced.test_probs.argmax(1))
    again = fuse(leaky, method)
    row = next(g for g in again.grid if g["setting"] == other)
    assert row["test_accuracy"] == 1.0
    assert again.chosen[setting] == base.chosen[setting]
    np.testing.assert_array_equal(again.val_probs, base.val_probs)


@pytest.mark.parametrize("method", ["mm", "lambda", "log_linear", "optimized", "best_single", "stacking", "equal"])
def test_leak_shuffled_test_labels_change_nothing_chosen(outs, method):
    """Check shuffling y['test'] leaves every chosen setting and the val predictions unchanged."""
    rng = np.random.default_rng(0)
    shuffled = _with_test_labels(outs, rng.permutation(outs.y["test"]))
    a, b = fuse(outs, method), fuse(shuffled, method)
    assert a.chosen == b.chosen
    np.testing.assert_allclose(a.val_probs, b.val_probs)
    np.testing.assert_allclose(a.test_probs, b.test_probs)


def test_optimized_weights_find_the_informative_model():
    """Check the simplex optimizer puts (almost) all weight on a perfect model."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    good = np.full((300, 3), 0.05, np.float32)
    good[np.arange(300), y] = 0.9
    noise = rng.dirichlet(np.ones(3), 300).astype(np.float32)
    w = optimize_weights(np.stack([noise, good]), y)
    assert w.sum() == pytest.approx(1.0) and w[1] > 0.95


def test_stacking_train_oof_and_val_crossfit(outs):
    """Check stacking trains on OOF train probs, and cross-fits on val when one model lacks them."""
    r = fuse(outs, "stacking", models=("img_a", "we_a"))
    assert r.chosen["trained_on"] == "train_oof" and r.test_probs.shape == (200, 6)
    r = fuse(outs, "stacking")  # includes the transformer, which has no train probs
    assert r.chosen["trained_on"] == "val_crossfit"
    assert r.val_accuracy > 0.3


def test_cross_pool_equals_explicit_outer_product():
    """Check the closed-form row/column max pooling equals the batched explicit outer product."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((50, 7)), rng.standard_normal((50, 5))
    np.testing.assert_allclose(cross_pool(a, b), cross_pool_explicit(a, b, batch=8), rtol=1e-6)


def test_feature_cross_runs(outs):
    """Check feature cross fits on the default pair with features."""
    r = fuse(outs, "feature_cross", c_grid=(0.1, 0.01), folds=3, max_iter=500)
    assert r.chosen["image_model"] == "img_a" and r.chosen["dim"] == 24 + 12
    assert r.val_probs.shape == (200, 6) and r.val_accuracy > 1 / 6


def test_feature_cross_needs_features(outs):
    """Check feature cross refuses a model without features."""
    with pytest.raises(ValueError, match="no cached features"):
        fuse(outs, "feature_cross", image_model="img_a", text_model="tr_a")


@pytest.mark.parametrize("method,kw", [("gated", {}), ("gated", {"gate_input": "features"}),
                                       ("concat_mlp", {"pca_dim": 4}), ("attention_mlp", {})])
def test_torch_methods(outs, method, kw):
    """Check the small torch fusions train, stay seeded, and return per-pin weights where promised."""
    r = fuse(outs, method, **FAST_NET, **kw)
    assert r.test_probs.shape == (200, 6)
    np.testing.assert_allclose(r.test_probs.sum(1), 1, atol=1e-4)
    if method in ("gated", "attention_mlp"):
        assert r.per_pin_weight.shape == (200,) and (0 <= r.per_pin_weight).all() and (r.per_pin_weight <= 1).all()
    if method == "gated":
        assert "tr_a" not in (r.chosen["image_model"], r.chosen["text_model"])  # no train probs
    again = fuse(outs, method, **FAST_NET, **kw)
    np.testing.assert_allclose(r.test_probs, again.test_probs, atol=1e-5)


def test_cache_by_config_key(outs):
    """Check results are cached by method + config + version and round-trip through JSON."""
    store = FakeStore()
    a = fuse(outs, "mm", store=store)
    b = fuse(outs, "mm", store=store)
    assert store.puts == 1 and a.key == b.key
    np.testing.assert_allclose(a.test_probs, b.test_probs)
    assert b.chosen == a.chosen and b.weights == pytest.approx(a.weights)
    c = fuse(outs, "mm", store=store, l=2.0)
    d = fuse(outs, "mm", store=store, version="v2")
    assert store.puts == 3 and len({a.key, c.key, d.key}) == 3
    r = FusionResult.from_json(a.to_json())
    assert r.summary() == a.summary()


def test_missing_family_is_skipped():
    """Check MM works without transformers and raises clearly with no usable model."""
    o = synthetic_outputs(n=(100, 50, 50), C=4, models=(SynthModel("i", "image", "image", 1.0),
                                                        SynthModel("t", "word_embedding", "text", 1.0)))
    assert fuse(o, "mm").chosen["models"] == ["i", "t"]
    with pytest.raises(ValueError, match="Unknown models"):
        fuse(o, "mm", models=("zzz",))


def test_bench_structure():
    """Check run_benchmarks returns the documented keys (tiny size)."""
    res = run_benchmarks(sizes=(2000,), repeats=2)
    row = res["benchmarks"][0]
    assert {"name", "n_pins", "n_models", "n_classes", "median_ms", "ratio_to_read"} <= set(row)
    assert row["n_models"] == 6 and row["n_classes"] == 29 and res["read_ratio_1m"] is None


def test_cache_in_real_store(outs, tmp_path):
    """Check a fused result round-trips through the DuckDB store's fusion cache."""
    from pinterest_mm.store import Store

    store = Store(tmp_path)
    a = fuse(outs, "lambda", store=store, version="x")
    b = fuse(outs, "lambda", store=store, version="x")
    assert b.key == a.key and b.chosen == a.chosen
    np.testing.assert_allclose(b.test_probs, a.test_probs)
    assert store.get_fusion(outs.dataset, a.key)["method"] == "lambda"


def test_drill_down_helpers():
    """Check the default confusion cell is the first wrong pin's, and the vote lines."""
    from pinterest_mm.compare import first_error_cell, vote_lines

    assert first_error_cell(np.array([0, 2, 1]), np.array([0, 1, 1])) == (1, 2)
    assert first_error_cell(np.array([0, 1]), np.array([0, 1])) == (0, 0)
    o = synthetic_outputs(n=(10, 6, 6), C=3, models=(SynthModel("a", "image", "image", 1.0),
                                                      SynthModel("b", "word_embedding", "text", 1.0)))
    fused = np.array([[0.1, 0.6, 0.3]] * 6, np.float32)
    lines = vote_lines(o, ["a", "b"], "test", np.array([4]), fused, k=2)
    pa = o.probs["a"]["test"][4]
    assert lines == [[f"a: {o.classes[int(pa.argmax())]} ({pa.max():.2f})",
                      f"b: {o.classes[int(o.probs['b']['test'][4].argmax())]} ({o.probs['b']['test'][4].max():.2f})",
                      f"fused: {o.classes[1]} 0.60, {o.classes[2]} 0.30"]]


def test_compare_methods_against_the_best_single_model():
    """Check the comparison table's delta, McNemar p and top-k, agreement and calibration."""
    from pinterest_mm import compare, stats

    o = synthetic_outputs(n=(300, 200, 200), C=5)
    fitted = {m: fuse(o, m) for m in ("mm", "equal")}
    cmp = compare.compare_methods(o, fitted, "test", n_boot=200)
    best = compare.best_single(o)
    assert cmp["best"] == best == min(o.models, key=lambda m: (-metrics.accuracy(o.probs[m]["val"], o.y["val"]), m))
    y, pb = o.y["test"], o.probs[best]["test"]
    row = next(r for r in cmp["table"] if r["method"] == "mm")
    p = fitted["mm"].test_probs
    assert row[f"Δ vs {best}"] == pytest.approx(metrics.accuracy(p, y) - metrics.accuracy(pb, y))
    assert row["McNemar mid-p"] == pytest.approx(stats.paired_test(p.argmax(1), pb.argmax(1), y).p_mid)
    n = len(y)
    assert [row["test accuracy 95% low"], row["test accuracy 95% high"]] == pytest.approx(
        stats.wilson(round(fitted["mm"].test_accuracy * n), n))
    assert cmp["warning"] is None and cmp["n"] == 200  # 200 test pins: no small-test warning
    assert cmp["definitions"]["best_single"] == best and [r["recommended"] for r in cmp["table"]] == [False, False]
    assert row["CI low"] <= row[f"Δ vs {best}"] <= row["CI high"]
    np.testing.assert_allclose(cmp["topk"]["mm"], metrics.topk_curve(p, y))
    ag = compare.agreement_matrix(o, "test", [best, "we_a"])
    assert ag["same"][0, 0] == 1.0 and ag["both_wrong"][0, 0] == pytest.approx(1 - metrics.accuracy(pb, y))
    cals = compare.calibrations(o, "test", fitted)
    assert set(cals) == {f"best single ({best})", "mm", "equal"}
    ev = compare.evaluate(p, y, 5)
    assert ev.confusion.sum() == len(y) and ev.accuracy == pytest.approx(fitted["mm"].test_accuracy)


def test_pca_reduce_is_fitted_on_train_only():
    """Check the PCA before the MLP fusions learns from train features only (002's PCA option)."""
    from sklearn.decomposition import PCA

    from pinterest_mm.fusion.nets import pca_reduce

    rng = np.random.default_rng(0)
    f = {s: rng.standard_normal((n, 12)).astype(np.float32) * np.linspace(3, 0.1, 12)
         for s, n in (("train", 80), ("val", 30), ("test", 30))}
    out = pca_reduce(f, 4)
    assert {s: a.shape for s, a in out.items()} == {"train": (80, 4), "val": (30, 4), "test": (30, 4)}
    ref = PCA(4, random_state=0).fit(f["train"])
    np.testing.assert_allclose(out["test"], ref.transform(f["test"]), atol=1e-4)
    # Held-out features far from train change nothing about the projection of train or test.
    moved = dict(f, val=f["val"] * 50 + 7)
    again = pca_reduce(moved, 4)
    np.testing.assert_array_equal(again["train"], out["train"])
    np.testing.assert_array_equal(again["test"], out["test"])
    assert pca_reduce(f, 100)["train"].shape == (80, 12)  # capped at d
    with pytest.raises(ValueError, match="pca_dim"):
        pca_reduce(f, 0)


def test_mlp_pca_option_changes_the_input(outs):
    """Check concat_mlp runs with PCA on and off and the option is part of the config (and cache key)."""
    a = fuse(outs, "concat_mlp", pca_dim=4, **FAST_NET)
    b = fuse(outs, "concat_mlp", pca_dim=0, **FAST_NET)
    assert a.config["pca_dim"] == 4 and b.config["pca_dim"] == 0 and a.key != b.key
    assert not np.allclose(a.test_probs, b.test_probs)
