"""Tests of pinterest_mm.metrics."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import confusion_matrix, f1_score, top_k_accuracy_score
from sklearn.metrics import log_loss as sk_log_loss

from pinterest_mm import metrics
from pinterest_mm.fusion import live

# Thesis eq. 2.18: classes C0..C3, y_true = [C2, C1, C3].
EQ_218 = np.array([[0.1, 0.3, 0.5, 0.1], [0.45, 0.15, 0.35, 0.1], [0.25, 0.25, 0.2, 0.3]])
Y_218 = np.array([2, 1, 3])


def tied_data(n=400, C=7, seed=0):
    rng = np.random.default_rng(seed)
    p = np.round(rng.random((n, C)), 1).astype(np.float32)  # many exact ties
    p[:5] = 0.5  # rows entirely tied
    y = rng.integers(0, C - 1, n)  # the last class never occurs
    return p, y


def test_thesis_worked_example_top2():
    """Check eq. 2.19: top-2 accuracy of the eq. 2.18 example is 2/3."""
    curve = metrics.topk_curve(EQ_218, Y_218, kmax=4)
    assert curve[1] == pytest.approx(2 / 3)
    assert curve[0] == pytest.approx(2 / 3)  # argmax right on rows 0 and 2
    assert curve[3] == 1.0
    assert metrics.accuracy(EQ_218, Y_218) == pytest.approx(2 / 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_topk_curve_matches_sklearn_with_ties(seed):
    """Check topk_curve equals sklearn's top_k_accuracy_score (labels=all) for every k, with ties."""
    p, y = tied_data(seed=seed)
    C = p.shape[1]
    curve = metrics.topk_curve(p, y, kmax=C - 1)
    for k in range(1, C):
        assert curve[k - 1] == pytest.approx(top_k_accuracy_score(y, p, k=k, labels=np.arange(C)))


def test_live_evaluate_matches_reference_with_ties():
    """Check the chunked fast path equals topk_curve, accuracy and confusion, threaded or not."""
    p, y = tied_data(n=1000, C=7)
    ref_topk = metrics.topk_curve(p, y, 10)
    for pool in (None, ThreadPoolExecutor(2)):
        ev = live.evaluate(p, y, 7, chunk=128, pool=pool)
        np.testing.assert_allclose(ev.topk, ref_topk)
        assert ev.accuracy == pytest.approx(metrics.accuracy(p, y))
        np.testing.assert_array_equal(ev.confusion, metrics.confusion(y, p.argmax(1), 7))


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matches_sklearn(normalize):
    """Check every normalization against sklearn with all labels (absent classes included)."""
    p, y = tied_data()
    pred = p.argmax(1)
    ours = metrics.confusion(y, pred, 7, normalize)
    ref = confusion_matrix(y, pred, labels=np.arange(7), normalize=normalize)
    np.testing.assert_allclose(ours, np.nan_to_num(ref))


def test_confusion_rejects_bad_normalize():
    """Check an unknown normalize value raises."""
    with pytest.raises(ValueError, match="normalize"):
        metrics.confusion(np.array([0]), np.array([0]), 2, "rows")


def test_per_class_and_log_loss():
    """Check per-class F1 / macro F1 and log-loss against sklearn."""
    p, y = tied_data()
    p = p + 0.01
    p /= p.sum(1, keepdims=True)
    pc = metrics.per_class(y, p.argmax(1), 7)
    assert pc.f1.shape == (7,) and pc.support[6] == 0
    assert pc.macro_f1 == pytest.approx(f1_score(y, p.argmax(1), labels=np.arange(7), average="macro", zero_division=0))
    assert metrics.log_loss(p, y) == pytest.approx(sk_log_loss(y, p, labels=np.arange(7)), rel=1e-5)


def test_ece_hand_example():
    """Check ECE on four pins: bins (0.8,1] acc .5 conf .9; (0.4,0.6] acc 1 conf .55; (0.6,0.8] acc 0 conf .65."""
    p = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.55, 0.35, 0.1], [0.1, 0.25, 0.65]])
    y = np.array([0, 1, 0, 0])
    cal = metrics.calibration(p, y, n_bins=5)
    assert cal.ece == pytest.approx(0.5 * 0.4 + 0.25 * 0.45 + 0.25 * 0.65)
    np.testing.assert_array_equal(cal.count, [0, 0, 1, 1, 2])
    assert cal.accuracy[4] == 0.5 and cal.confidence[4] == pytest.approx(0.9)


def _pair(b, c, both_right=20, both_wrong=7):
    """Predictions with b pins only A right and c pins only B right."""
    n = b + c + both_right + both_wrong
    y = np.zeros(n, int)
    a = np.ones(n, int)
    bb = np.ones(n, int)
    a[:b] = 0
    bb[b : b + c] = 0
    a[b + c : b + c + both_right] = 0
    bb[b + c : b + c + both_right] = 0
    return a, bb, y


def test_mcnemar_exact_and_chi2():
    """Check the exact branch (2 * P(X<=3), X~Bin(13,.5) = 756/8192) and the chi-square branch."""
    a, b, y = _pair(3, 10)
    res = metrics.mcnemar(a, b, y)
    assert (res.b, res.c, res.method) == (3, 10, "exact")
    assert res.p_value == pytest.approx(756 / 8192)
    assert res.p_value == pytest.approx(stats.binomtest(3, 13, 0.5).pvalue)
    res = metrics.mcnemar_from_counts(30, 10)
    assert res.method == "chi2" and res.statistic == pytest.approx(19**2 / 40)
    assert res.p_value == pytest.approx(stats.chi2.sf(9.025, 1))
    assert metrics.mcnemar_from_counts(0, 0).p_value == 1.0


def test_paired_bootstrap():
    """Check the bootstrap: observed diff, seeded reproducibility, CI width near the normal one."""
    rng = np.random.default_rng(0)
    y = np.zeros(2000, int)
    a = (rng.random(2000) > 0.6).astype(int)  # A right 60 %
    b = (rng.random(2000) > 0.5).astype(int)  # B right 50 %
    r1 = metrics.paired_bootstrap(a, b, y, n_boot=1000, seed=3)
    r2 = metrics.paired_bootstrap(a, b, y, n_boot=1000, seed=3)
    d = (a == y).astype(float) - (b == y)
    assert r1 == r2 and r1.diff == pytest.approx(d.mean())
    assert r1.low < r1.diff < r1.high
    se = d.std() / np.sqrt(len(d))
    assert (r1.high - r1.low) == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert r1.p_value < 0.01
    same = metrics.paired_bootstrap(a, a, y, n_boot=200)
    assert (same.diff, same.low, same.high) == (0.0, 0.0, 0.0)


def test_agreement_counts():
    """Check both-right / only-A / only-B / both-wrong counts and rates."""
    y = np.array([0, 0, 0, 0, 1])
    ag = metrics.agreement(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 0, 1, 0]), y)
    assert (ag.both_right, ag.only_a, ag.only_b, ag.both_wrong) == (1, 2, 1, 1)
    assert ag.rates()["only_a"] == pytest.approx(0.4)


def test_cell_pins_sorted_by_confidence():
    """Check cell_pins returns the cell's pins, most confident first."""
    p = np.array([[0.2, 0.8], [0.4, 0.6], [0.1, 0.9], [0.7, 0.3], [0.45, 0.55]])
    y = np.array([0, 0, 1, 0, 0])
    np.testing.assert_array_equal(metrics.cell_pins(p, y, 0, 1), [0, 1, 4])
    assert metrics.cell_pins(p, y, 1, 0).size == 0


def test_remembered_accuracy_is_per_array_and_follows_a_new_array():
    from pinterest_mm import metrics

    rng = np.random.default_rng(0)
    p, y = rng.random((500, 7)).astype(np.float32), rng.integers(0, 7, 500)
    first = metrics.remembered_accuracy(p, y)
    assert first == metrics.accuracy(p, y)
    q = p.copy()
    q[:, 0] = 2.0  # another array (same shape): its own answer, never the remembered one
    assert metrics.remembered_accuracy(q, y) == metrics.accuracy(q, y) == float((y == 0).mean())
    assert metrics.remembered_accuracy(p, y) == first
    del q  # a dead array's id may be reused: the weak reference tells them apart
    r = p.copy()
    r[:, 1] = 2.0
    assert metrics.remembered_accuracy(r, y) == float((y == 1).mean())
