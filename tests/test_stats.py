"""Uncertainty and verdicts: hand-computed Wilson / McNemar / Holm values, bootstrap determinism,
verdicts on constructed predictions, and greedy ensemble selection on constructed probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from pinterest_mm import stats
from pinterest_mm.fusion.fitted import ensemble_selection
from pinterest_mm.thesis import CLAIMS, claims


# ----------------------------------------------------------------------------- known numbers
def test_wilson_known_values():
    """8/10 -> [0.4902, 0.9433] and 0/10 -> [0, 0.2775] (the textbook Wilson score interval)."""
    assert stats.wilson(8, 10) == pytest.approx((0.49016, 0.94332), abs=1e-4)
    assert stats.wilson(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-4)
    assert stats.wilson(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-4)
    assert stats.wilson(0, 0) == (0.0, 1.0)
    assert stats.fmt_interval(0.8, 10) == "0.800 [0.49, 0.94]"


def test_mcnemar_exact_and_mid_p_by_hand():
    """b=1, c=9: exact p = 2 * 11/1024, mid-p = 2 * (11 - 10/2)/1024; balanced counts give 1."""
    t = stats.mcnemar_midp(1, 9, n=40)
    assert t.p_exact == pytest.approx(22 / 1024)
    assert t.p_mid == pytest.approx(12 / 1024)
    assert t.diff == pytest.approx(-8 / 40)
    assert stats.mcnemar_midp(5, 5).p_exact == 1.0 and stats.mcnemar_midp(5, 5).p_mid == pytest.approx(1.0)
    assert stats.mcnemar_midp(0, 0).p_mid == 1.0
    # from predictions: A right on pins 0-2 only, B right on pin 3 only
    y = np.zeros(6, int)
    a = np.array([0, 0, 0, 1, 1, 1])
    b = np.array([1, 1, 1, 0, 1, 1])
    t = stats.paired_test(a, b, y)
    assert (t.b, t.c, t.n) == (3, 1, 6) and t.diff == pytest.approx(2 / 6)


def test_holm_by_hand():
    """[.01, .04, .03] -> [.03, .06, .06] (x3, x2 then monotone, x1 then monotone)."""
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.02, 0.01]) == pytest.approx([0.02, 0.02])
    assert stats.holm([0.9, 0.5]) == pytest.approx([1.0, 1.0])
    assert stats.holm([]) == []


def test_binomial_mid_p():
    """5 of 10 against 0.5 is perfectly balanced (p = 1); 0 of 10 against 0.5: 2 * (1/1024) / 2."""
    assert stats.binom_midp(5, 10, 0.5) == pytest.approx(1.0)
    assert stats.binom_midp(0, 10, 0.5) == pytest.approx(1 / 1024)


def test_bootstrap_is_seeded_and_agrees_with_mcnemar():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    a = np.where(rng.random(300) < 0.8, y, (y + 1) % 4)
    b = np.where(rng.random(300) < 0.7, y, (y + 2) % 4)
    one, two = stats.paired_bootstrap(a, b, y, seed=3), stats.paired_bootstrap(a, b, y, seed=3)
    other = stats.paired_bootstrap(a, b, y, seed=4)
    assert (one.low, one.high) == (two.low, two.high)
    assert (one.low, one.high) != (other.low, other.high)
    assert one.diff == pytest.approx(stats.paired_test(a, b, y).diff)  # same pins, same difference
    assert one.low < one.diff < one.high


def test_small_test_warning_names_the_size():
    assert stats.small_test_warning(200) is None
    assert "150 test pins" in stats.small_test_warning(150)


def test_add_intervals_walks_nested_rows():
    rep = {"rows": [{"val_accuracy": 0.8, "test_accuracy": 0.0, "test_topk": [0.0, 0.8]}]}
    stats.add_intervals(rep, {"val": 10, "test": 10})
    row = rep["rows"][0]
    assert row["val_accuracy_ci"] == list(stats.wilson(8, 10))
    assert row["test_accuracy_ci"] == list(stats.wilson(0, 10))
    assert row["test_topk_ci"] == [list(stats.wilson(0, 10)), list(stats.wilson(8, 10))]


# ----------------------------------------------------------------------------- verdicts
def _rep() -> dict:
    return {"definitions": {"lambda_pair": None, "lambda_pair_word_embedding": None, "feature_cross_pair": None},
            "best_single": {"model": "m", "test_accuracy": 0.0}, "mm": None, "single_models": {}}


def _verdict(correct_mm: np.ndarray, correct_single: np.ndarray) -> dict:
    y = np.zeros(len(correct_mm), int)
    preds = {"mm": np.where(correct_mm, 0, 1), "best_single": np.where(correct_single, 0, 1)}
    return {c["claim"]: c for c in claims(_rep(), preds, y)}[CLAIMS[0]]


def test_clear_win_holds_tie_is_inconclusive_clear_loss_fails():
    n = 400
    good = np.arange(n) < 320   # 80 %
    poor = np.arange(n) < 240   # 60 %, nested: 80 pins only the better one gets right
    assert _verdict(good, poor)["verdict"] == "holds"
    assert _verdict(poor, good)["verdict"] == "fails"
    tie = _verdict(good, np.roll(good, 7))  # same accuracy, 7 discordant pins each way
    assert tie["verdict"] == "inconclusive" and tie["diff"] == 0
    near = _verdict(np.arange(n) < 244, poor)  # +1 point: 4 discordant pins, not significant
    assert near["verdict"] == "inconclusive" and near["diff"] > 0
    near_loss = _verdict(poor, np.arange(n) < 244)
    assert near_loss["verdict"] == "inconclusive" and near_loss["diff"] < 0


def test_holm_can_turn_a_single_significant_claim_inconclusive():
    """mid-p 0.035 alone holds; with a second claim at p = 1, Holm doubles it past 0.05."""
    n = 400
    y = np.zeros(n, int)
    i = np.arange(n)
    # MM right on 11 pins the single model misses, wrong on 3 it gets: mid-p 0.0352
    mm = np.where(i < 211, 0, 1)
    single = np.where((i < 200) | ((i >= 211) & (i < 214)), 0, 1)
    alone = {c["claim"]: c for c in claims(_rep(), {"mm": mm, "best_single": single}, y)}[CLAIMS[0]]
    assert alone["p"] < 0.05 and alone["p_holm"] == alone["p"] and alone["verdict"] == "holds"
    both = {c["claim"]: c for c in claims(_rep(), {"mm": mm, "best_single": single,
                                                     "ensemble": single}, y)}
    assert both[CLAIMS[4]]["verdict"] == "inconclusive"
    assert both[CLAIMS[0]]["p_holm"] == pytest.approx(2 * alone["p"])
    assert alone["p"] == pytest.approx(0.03515625) and both[CLAIMS[0]]["verdict"] == "inconclusive"
    assert "Holm-adjusted" in both[CLAIMS[0]]["evidence"] and "McNemar" in both[CLAIMS[0]]["evidence"]
    assert both[CLAIMS[1]]["verdict"] == "not applicable"


# ----------------------------------------------------------------------------- ensemble selection
def _probs(y: np.ndarray, C: int, right: np.ndarray, conf: float) -> np.ndarray:
    p = np.full((len(y), C), (1 - conf) / (C - 1))
    wrong = (y + 1) % C
    p[np.arange(len(y)), np.where(right, y, wrong)] = conf
    return p


def test_ensemble_selection_picks_the_better_model_and_never_loses_on_val():
    rng = np.random.default_rng(1)
    C, n = 4, 500
    y = rng.integers(0, C, n)
    good = _probs(y, C, rng.random(n) < 0.85, 0.7)
    bad = _probs(y, C, rng.random(n) < 0.40, 0.9)  # over-confident and wrong: adding it hurts
    other = _probs(y, C, rng.random(n) < 0.75, 0.6)  # independent errors: helps log-loss
    stack = np.stack([good, bad, other])
    w = ensemble_selection(stack, y, start=0, rounds=20)
    assert w.shape == (3,) and w.sum() == pytest.approx(1.0) and (w >= 0).all()
    assert w[0] == w.max() and w[1] == 0
    fused = np.tensordot(w, stack, axes=(0, 0))
    acc = (fused.argmax(1) == y).mean()
    assert acc >= (good.argmax(1) == y).mean()
    loss = -np.log(fused[np.arange(n), y]).mean()
    assert loss <= -np.log(good[np.arange(n), y]).mean()
    # alone with a useless model, it stays with the start
    assert ensemble_selection(np.stack([good, bad]), y, start=0).tolist() == [1.0, 0.0]


def test_ensemble_selection_refuses_a_lower_log_loss_that_costs_validation_accuracy():
    """A: always right but unsure (0.4); B: sure and right on half, wrong (0.7) on the other half.
    Mixing in B lowers the log-loss but halves the accuracy, so the start is kept."""
    n = 200
    y = np.zeros(n, int)
    a = np.tile([0.4, 0.35, 0.125, 0.125], (n, 1))
    b = np.tile([0.99, 0.01 / 3, 0.01 / 3, 0.01 / 3], (n, 1))
    b[: n // 2] = [0.3, 0.7, 0.0, 0.0]
    stack = np.stack([a, b])
    mix = stack.mean(0)
    assert -np.log(mix[:, 0]).mean() < -np.log(a[:, 0]).mean() and (mix.argmax(1) == y).mean() == 0.5
    assert ensemble_selection(stack, y, start=0, rounds=5).tolist() == [1.0, 0.0]
