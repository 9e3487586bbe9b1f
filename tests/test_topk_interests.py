"""Top-K interest recommendation (seed 003 Table 1): metrics by hand, history weight chosen on val."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pinterest_mm.bench import synthetic_outputs
from pinterest_mm.topk_interests import curve, format_topk_report, recommend, topk_report, topk_scores


def test_metrics_hand_computed():
    """Check hit rate, precision, recall and F1-of-means on two users worked out by hand.

    u1: truth {0, 2}, scores (.5, .3, .2); u2: truth {1}, scores (.1, .2, .7).
    K=1: R {0} / {2}: Ch 1 / 0 -> hit .5, P .5, R (.5 + 0)/2 = .25, F1 = 2(.5)(.25)/.75 = 1/3.
    K=2: R {0,1} / {2,1}: Ch 1 / 1 -> hit 1, P .5, R (.5 + 1)/2 = .75, F1 = .75/1.25 = .6.
    K=3: Ch 2 / 1 -> hit 1, P (2/3 + 1/3)/2 = .5, R 1, F1 = 2/3.
    """
    truth = np.array([[1, 0, 1], [0, 1, 0]], bool)
    scores = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]])
    c = curve(truth, scores)
    assert c["K"].tolist() == [1, 2, 3]  # capped at C
    np.testing.assert_allclose(c["hit_rate"], [0.5, 1, 1])
    np.testing.assert_allclose(c["precision"], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(c["recall"], [0.25, 0.75, 1])
    np.testing.assert_allclose(c["f1"], [1 / 3, 0.6, 2 / 3])
    s = topk_scores(truth, scores, 1)
    assert s["hit"].tolist() == [1, 0] and s["recall"].tolist() == [0.5, 0]


def test_recommend_ties_to_lower_index():
    """Check equal scores recommend the lower class index first."""
    assert recommend(np.array([[0.2, 0.4, 0.4, 0.0]]), 1).tolist() == [[False, True, False, False]]
    assert recommend(np.array([[0.2, 0.4, 0.4, 0.0]]), 3).sum() == 3


@pytest.fixture(scope="module")
def outs():
    return synthetic_outputs(n=(600, 300, 300), C=8, n_users=15, seed=5)


def _probs(o):
    return {s: o.probs["img_a"][s] for s in ("val", "test")}


def test_report_history_helps_and_alpha_is_chosen_on_val(outs):
    """Check the history mix (a chosen on validation) beats the fused scores when users are consistent."""
    rep = topk_report(outs, _probs(outs))
    assert rep.n_users == outs.saves[outs.saves["split"] == "test"]["user_id"].nunique()
    assert 0 < rep.alpha <= 1 and rep.with_history == 1.0
    assert len(rep.table) == 2 * 8 and set(rep.table["variant"]) == {"fused", "fused + history"}
    assert rep.best["fused + history"]["f1"] > rep.best["fused"]["f1"]
    t = rep.table
    assert (t["hit_low"] <= t["hit_rate"]).all() and (t["hit_rate"] <= t["hit_high"]).all()
    assert "best K" in format_topk_report(rep)
    # Shuffling the test labels changes the scores but not the weight a (chosen on val only).
    rng = np.random.default_rng(0)
    y = dict(outs.y, test=rng.integers(0, 8, len(outs.y["test"])))
    rep2 = topk_report(dataclasses.replace(outs, y=y), _probs(outs))
    assert rep2.alpha == rep.alpha and rep2.alpha_grid == rep.alpha_grid
    assert not np.allclose(rep2.table["recall"], rep.table["recall"])


def test_report_needs_users(outs):
    """Check a dataset without users is refused with a reason."""
    with pytest.raises(ValueError, match="no users"):
        topk_report(dataclasses.replace(outs, saves=None), _probs(outs))


def test_cli_report_interests(tiny_store, monkeypatch, capsys):
    """Check ``report NAME --interests`` prints the top-K table and its JSON carries every K."""
    import json

    from pinterest_mm.build import build
    from pinterest_mm.cli import main

    build(tiny_store, "tiny", ["glove-6b-50", "tfidf-lr"], progress=False)
    monkeypatch.setenv("PINTEREST_MM_HOME", str(tiny_store.root))
    assert main(["report", "tiny", "--interests"]) == 0
    out = capsys.readouterr().out
    assert "Fusion mm. Top-K interests (003 Table 1)" in out and "best K = " in out
    assert main(["report", "tiny", "--interests", "equal", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["interests"]
    assert rep["method"] == "equal" and [r["K"] for r in rep["table"]] == list(range(1, 7)) * 2  # 6 classes
    assert 0 <= rep["best"]["fused"]["f1"] <= 1
