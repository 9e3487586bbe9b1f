"""Core logic the pages draw: the Overview's before/after counts, the Predict page's fusion."""

from __future__ import annotations

import pandas as pd
import pytest

from pinterest_mm.bench import synthetic_outputs
from pinterest_mm.data import counts
from pinterest_mm.fusion import fuse
from pinterest_mm.fusion.select import thesis_selection
from pinterest_mm.predict import pin_fusion

ROWS = pd.DataFrame({
    "pin_id": ["p1", "p1", "p2", "p3", "p4", "p5"],
    "user_id": ["u1", "u2", "u1", "u2", None, ""],
    "category": ["Art", "Art", "Art", "Food", None, "Food"],
    "status": ["kept", "kept", "short text: 2 words", "kept", "no category", "duplicate image"],
})


def test_before_after_counts_count_distinct_pins():
    cats = counts.category_counts(ROWS).set_index("category")
    assert cats.loc["Art"].tolist() == [2, 1]  # p1 (saved twice) and p2; p2 dropped
    assert cats.loc["Food"].tolist() == [2, 1] and cats.loc["(empty)"].tolist() == [1, 0]
    users = counts.user_table(ROWS)
    assert users.to_dict("records") == [{"user_id": "u2", "before": 2, "after": 2},
                                        {"user_id": "u1", "before": 2, "after": 1}]
    assert counts.user_category_counts(ROWS, "u1").set_index("category").loc["Art"].tolist() == [2, 1]
    reasons = dict(counts.drop_reasons(ROWS).itertuples(index=False))
    assert reasons == {"kept": 2, "short text": 1, "no category": 1, "duplicate image": 1}


@pytest.fixture(scope="module")
def outs():
    return synthetic_outputs(n=(200, 100, 100), C=5, seed=3)


def _fit(outs):
    return lambda method, **cfg: fuse(outs, method, **cfg)


def test_a_method_with_weights_is_applied_as_asked(outs):
    choice = pin_fusion(outs, "equal", {}, _fit(outs), "equal weights")
    assert choice.result.method == "equal" and choice.label == "equal weights" and not choice.problem
    assert choice.combine == "sum" and sum(choice.weights.values()) == pytest.approx(1.0)
    assert pin_fusion(outs, "log_linear", {}, _fit(outs)).combine == "log_linear"


def test_a_learned_method_falls_back_to_mm_over_the_thesis_selection(outs):
    calls = []
    choice = pin_fusion(outs, "stacking", {}, lambda m, **cfg: calls.append(m) or fuse(outs, m, **cfg), "stacking")
    assert calls == ["mm"]  # the learned method is not trained just to be set aside
    assert choice.result.method == "mm" and not choice.problem
    assert sorted(choice.weights) == sorted(thesis_selection(outs))
    assert "has no per-model weights" in choice.label and "stacking" in choice.label


def test_a_setting_that_cannot_run_says_why_and_falls_back(outs):
    choice = pin_fusion(outs, "mm", {"models": ("no-such-model",)}, _fit(outs))
    assert choice.result.method == "mm" and "no-such-model" in choice.problem
    assert sorted(choice.weights) == sorted(thesis_selection(outs))


def test_the_reliability_diagrams_draw_the_core_s_methods_in_its_order():
    from pinterest_mm.compare import calibration_methods

    assert calibration_methods(["ensemble", "optimized", "stacking", "mm"]) == ("mm", "optimized")
