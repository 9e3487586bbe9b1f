"""User history features and the user-aware gated fusion (seed 003): no held-out label leaks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pinterest_mm.bench import synthetic_outputs
from pinterest_mm.fusion import fuse
from pinterest_mm.outputs import ModelInfo, Outputs
from pinterest_mm.user_history import user_history

FAST = {"max_epochs": 12, "patience": 3, "hidden": 16}


@pytest.fixture(scope="module")
def outs():
    return synthetic_outputs(n=(400, 150, 150), C=6, n_users=10, seed=3)


def _relabel(outputs: Outputs, splits=("val", "test"), seed: int = 9) -> Outputs:
    """A copy whose labels of ``splits`` (in ``y`` and in ``saves``) are shuffled at random."""
    rng = np.random.default_rng(seed)
    y = dict(outputs.y)
    saves = outputs.saves.copy()
    for s in splits:
        y[s] = rng.integers(0, outputs.n_classes, len(y[s]))
        m = saves["split"] == s
        saves.loc[m, "label"] = y[s][saves.loc[m, "split_row"].to_numpy()]
    return dataclasses.replace(outputs, y=y, saves=saves)


def _hand_outputs() -> Outputs:
    """3 classes; users a (train labels 0, 0, 1), b (train label 2), c (no train pin)."""
    y = {"train": np.array([0, 0, 1, 2]), "val": np.array([1]), "test": np.array([0, 2])}
    saves = pd.DataFrame([
        ("t0", "a", "train", 0), ("t1", "a", "train", 1), ("t2", "a", "train", 2), ("t3", "b", "train", 3),
        ("v0", "a", "val", 0), ("s0", "a", "test", 0), ("s0", "b", "test", 0), ("s1", "c", "test", 1),
    ], columns=["pin_id", "user_id", "split", "split_row"])
    saves["label"] = [y[s][r] for s, r in zip(saves["split"], saves["split_row"])]
    return Outputs("hand", ["x", "y", "z"], y, {s: np.arange(len(v)) for s, v in y.items()}, {},
                   {}, saves=saves)


def test_history_hand_computed():
    """Check the history vectors by hand: leave-one-out on train, savers averaged, unknown users empty."""
    h = user_history(_hand_outputs())
    np.testing.assert_allclose(h.vectors["train"], [[0.5, 0.5, 0], [0.5, 0.5, 0], [1, 0, 0], [0, 0, 0]])
    assert h.has["train"].tolist() == [True, True, True, False]  # b's only train pin is t3 itself
    np.testing.assert_allclose(h.vectors["val"], [[2 / 3, 1 / 3, 0]])
    # s0: mean of a's (2/3, 1/3, 0) and b's (0, 0, 1); s1: user c has no train pins
    np.testing.assert_allclose(h.vectors["test"], [[1 / 3, 1 / 6, 1 / 2], [0, 0, 0]], atol=1e-6)
    assert h.has["test"].tolist() == [True, False]


def test_history_reads_no_held_out_label(outs):
    """Check shuffling every val/test label (in y and in saves) leaves every history vector unchanged."""
    a, b = user_history(outs), user_history(_relabel(outs))
    for s in ("train", "val", "test"):
        np.testing.assert_array_equal(a.vectors[s], b.vectors[s])
        np.testing.assert_array_equal(a.has[s], b.has[s])
    # ... while shuffling train labels does change them (the test can see a leak)
    c = user_history(_relabel(outs, splits=("train",)))
    assert not np.allclose(a.vectors["test"], c.vectors["test"])


def test_user_gated_test_output_ignores_test_labels(outs):
    """Check the fused test probabilities are identical when every test label is shuffled."""
    r = fuse(outs, "user_gated", **FAST)
    r2 = fuse(_relabel(outs, splits=("test",)), "user_gated", **FAST)
    np.testing.assert_array_equal(r.test_probs, r2.test_probs)
    np.testing.assert_array_equal(r.val_probs, r2.val_probs)
    assert r.test_accuracy != r2.test_accuracy  # the labels did change


def test_user_gated_shapes_seeded_and_uses_history(outs):
    """Check shapes, the gate's weights, determinism, and that history beats the plain gate here."""
    r = fuse(outs, "user_gated", **FAST)
    assert r.test_probs.shape == (150, 6)
    np.testing.assert_allclose(r.test_probs.sum(1), 1, atol=1e-4)
    assert r.per_pin_weight.shape == (150,) and ((0 <= r.per_pin_weight) & (r.per_pin_weight <= 1)).all()
    assert 0 < r.chosen["mean_history_weight_test"] < 1 and r.chosen["test_pins_with_history"] == 1.0
    np.testing.assert_array_equal(r.test_probs, fuse(outs, "user_gated", **FAST).test_probs)
    plain = fuse(outs, "gated", **FAST)
    assert r.val_accuracy > plain.val_accuracy + 0.03, (r.val_accuracy, plain.val_accuracy)
    only_gate = fuse(outs, "user_gated", history_expert=False, **FAST)
    assert only_gate.chosen["mean_history_weight_test"] == 0.0


def test_unknown_user_gets_no_history_weight(outs):
    """Check a test pin whose user has no train pins is fused from text and image only."""
    saves = outs.saves.copy()
    first = saves.index[(saves["split"] == "test") & (saves["split_row"] == 0)]
    saves.loc[first, "user_id"] = "newcomer"
    o = dataclasses.replace(outs, saves=saves)
    r = fuse(o, "user_gated", **FAST)
    assert r.chosen["test_pins_with_history"] == pytest.approx(149 / 150)
    t, v = o.probs[r.chosen["text_model"]]["test"][0], o.probs[r.chosen["image_model"]]["test"][0]
    w = r.per_pin_weight[0]
    np.testing.assert_allclose(r.test_probs[0], (1 - w) * t + w * v, atol=1e-5)


def test_user_gated_needs_users():
    """Check a dataset without users is refused with the plain gate named."""
    o = synthetic_outputs(n=(60, 30, 30), C=3)
    o = dataclasses.replace(o, saves=None, models={k: ModelInfo(**{**dataclasses.asdict(v)}) for k, v in o.models.items()})
    with pytest.raises(ValueError, match="no users.*'gated'"):
        fuse(o, "user_gated", **FAST)
