"""Tests of pinterest_mm.users on a small hand-made dataset."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from pinterest_mm.bench import synthetic_outputs
from pinterest_mm.outputs import Outputs
from pinterest_mm.users import interest_set, predict_profile, user_pin_predictions, user_report

P_TEST = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
P_VAL = np.array([[0.1, 0.2, 0.7]])


@pytest.fixture
def hand():
    """u1 saved test pins 0, 1, 2 (labels 0, 0, 1); u2 saved test pins 2, 3 (labels 1, 2) and val pin 0 (label 2)."""
    saves = pd.DataFrame(
        [("t0", "u1", "test", 0, 0), ("t1", "u1", "test", 1, 0), ("t2", "u1", "test", 2, 1),
         ("t2", "u2", "test", 2, 1), ("t3", "u2", "test", 3, 2), ("v0", "u2", "val", 0, 2)],
        columns=["pin_id", "user_id", "split", "split_row", "label"],
    )
    y = {"train": np.zeros(0, int), "val": np.array([2]), "test": np.array([0, 0, 1, 2])}
    return Outputs("hand", ["a", "b", "c"], y, {}, {}, {}, saves=saves)


def test_profiles_hand_computed(hand):
    """Check true shares, mean predicted profiles, top-1 recall, JS distance and F1."""
    rep = user_report(hand, {"test": P_TEST}, k=1, threshold=0.2)
    assert rep.users == ["u1", "u2"]
    np.testing.assert_allclose(rep.true, [[2 / 3, 1 / 3, 0], [0, 0.5, 0.5]])
    np.testing.assert_allclose(rep.pred, [[1.6 / 3, 1.1 / 3, 0.1], [0.15, 0.4, 0.45]])
    t = rep.table.set_index("user_id")
    assert t.loc["u1", "topk_recall"] == 1.0 and t.loc["u2", "topk_recall"] == 0.0
    assert t.loc["u1", "js_distance"] == pytest.approx(jensenshannon(rep.true[0], rep.pred[0], base=2))
    assert (t["f1"] == 1.0).all()
    rep = user_report(hand, {"test": P_TEST}, k=1, threshold=0.42)
    t = rep.table.set_index("user_id")
    assert t.loc["u2", "precision"] == 1.0 and t.loc["u2", "recall"] == 0.5
    assert t.loc["u2", "f1"] == pytest.approx(2 / 3)
    assert list(rep.table["user_id"]) == ["u1", "u2"] and rep.worst(1)["user_id"].iloc[0] == "u2"
    assert rep.summary["mean_f1"] == pytest.approx((1 + 2 / 3) / 2)


def test_top1_mode_and_val_plus_test(hand):
    """Check top-1 counts as the predicted profile, and that val pins join with splits=(val, test)."""
    rep = user_report(hand, {"test": P_TEST}, mode="top1")
    np.testing.assert_allclose(rep.pred[0], [2 / 3, 1 / 3, 0])
    assert rep.table.set_index("user_id").loc["u1", "js_distance"] == pytest.approx(0, abs=1e-7)
    rep = user_report(hand, {"val": P_VAL, "test": P_TEST}, splits=("val", "test"))
    np.testing.assert_allclose(rep.true[1], [0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(rep.pred[1], [(0.1 + 0.2 + 0.1) / 3, (0.2 + 0.7 + 0.1) / 3, (0.7 + 0.1 + 0.8) / 3])


def test_predict_profile_and_sets():
    """Check predict_profile for new pins and the top-k/threshold interest sets."""
    np.testing.assert_allclose(predict_profile(P_TEST), P_TEST.mean(0))
    np.testing.assert_allclose(predict_profile(P_TEST, "top1"), [0.5, 0.25, 0.25])
    assert predict_profile(np.zeros((0, 3))).tolist() == [0, 0, 0]
    np.testing.assert_array_equal(interest_set(np.array([0.5, 0.5, 0.0]), "topk", k=3), [True, True, False])
    np.testing.assert_array_equal(interest_set(np.array([0.05, 0.15, 0.8]), "threshold", 0.1), [False, True, True])
    with pytest.raises(ValueError, match="mode"):
        predict_profile(P_TEST, "median")


def test_no_users_raises(hand):
    """Check a dataset without saves raises a clear error."""
    with pytest.raises(ValueError, match="no users"):
        user_report(dataclasses.replace(hand, saves=None), {"test": P_TEST})


def test_synthetic_users_better_with_better_probs():
    """Check perfect probabilities give perfect profiles, and min_pins filters users."""
    o = synthetic_outputs(n=(50, 50, 300), C=5, n_users=6)
    perfect = np.eye(5)[o.y["test"]]
    rep = user_report(o, {"test": perfect}, k=2)
    assert rep.summary["mean_f1"] == 1.0 and rep.summary["mean_js_distance"] == pytest.approx(0, abs=1e-6)
    few = user_report(o, {"test": perfect}, min_pins=1000)
    assert few.summary["n_users"] == 0


def test_user_pin_predictions(hand):
    """Check one user's held-out pins get the fusion's top-1 class and probability."""
    probs = {"val": P_VAL, "test": P_TEST}
    got = user_pin_predictions(hand, probs, "u2", ("val", "test"))
    assert got.to_dict("records") == [
        {"pin_id": "t2", "split": "test", "category": "b", "probability": pytest.approx(0.7)},
        {"pin_id": "t3", "split": "test", "category": "c", "probability": pytest.approx(0.8)},
        {"pin_id": "v0", "split": "val", "category": "c", "probability": pytest.approx(0.7)},
    ]
    assert user_pin_predictions(hand, probs, "u2", ("test",))["pin_id"].tolist() == ["t2", "t3"]
    assert user_pin_predictions(hand, probs, "nobody").empty
