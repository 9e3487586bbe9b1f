"""The companion papers' systems in the thesis report: listing, vs-MM tests, PCA effect, top-K interests."""

from __future__ import annotations

import numpy as np
import pytest

from pinterest_mm import stats
from pinterest_mm.bench import DEFAULT_SYNTH, SynthModel, synthetic_outputs
from pinterest_mm.seed_systems import SYSTEMS
from pinterest_mm.thesis import format_thesis_report, thesis_report

METHODS = ["mm", "best_single", "concat_mlp", "gated", "user_gated"]


@pytest.fixture(scope="module")
def outs():
    models = DEFAULT_SYNTH + (SynthModel("tfidf-svm", "other", "text", 1.2, True, 0),)
    return synthetic_outputs(n=(300, 150, 150), C=6, models=models, seed=4)


@pytest.fixture(scope="module")
def report(outs):
    return thesis_report(outs, methods=METHODS, feature_cross_pairs="none")


def test_every_seed_system_is_listed_with_its_status(report, outs):
    """Check each of 002-004's systems has a row: built/fitted ones vs MM, the rest say why."""
    sec = report["seed_systems"]
    rows = {r["system"]: r for r in sec["rows"]}
    assert list(rows) == [s[0] for s in SYSTEMS]
    assert rows["lstm-cnn"]["status"] == "not built: pinterest-mm build synthetic --models lstm-cnn"
    assert rows["attention_mlp"]["status"].startswith("error: ")  # not among the methods run
    mm_pred = {f["method"]: f for f in report["fusions"]}["mm"]
    for name in ("tfidf-svm", "concat_mlp", "gated", "user_gated"):
        r = rows[name]
        assert r["status"] == "ok" and 0 <= r["p_mid_vs_mm"] <= 1
        assert r["diff_vs_mm"] == pytest.approx(r["test_accuracy"] - mm_pred["test_accuracy"])
    svm = outs.probs["tfidf-svm"]["test"].argmax(1)
    assert rows["tfidf-svm"]["test_accuracy"] == pytest.approx(float((svm == outs.y["test"]).mean()))


def test_pca_effect_and_interests(report):
    """Check the PCA on/off comparison is paired on the same pins and the top-K block comes from MM."""
    sec = report["seed_systems"]
    pca = sec["pca"]
    assert pca["with_pca"]["pca_dim"] == 128
    assert pca["diff"] == pytest.approx(pca["with_pca"]["test_accuracy"] - pca["without_pca"]["test_accuracy"])
    it = sec["interests"]
    assert it["method"] == "mm" and set(it["best"]) == {"fused", "fused + history"}
    assert 1 <= it["best"]["fused"]["K"] <= 6
    text = format_thesis_report(report)
    assert "Companion papers' systems" in text and "lstm-cnn" in text and "Top-K interests (003) from MM" in text
    assert "PCA before concat_mlp (002): with PCA to 128 dims" in text


def test_paired_test_matches_stats(report, outs):
    """Check the vs-MM p-value is stats.paired_test's mid-p on the test predictions."""
    r = {x["system"]: x for x in report["seed_systems"]["rows"]}["tfidf-svm"]
    from pinterest_mm.fusion import fuse

    mm = fuse(outs, "mm").test_probs.argmax(1)
    t = stats.paired_test(outs.probs["tfidf-svm"]["test"].argmax(1), mm, outs.y["test"])
    assert r["p_mid_vs_mm"] == pytest.approx(t.p_mid) and np.isfinite(t.p_mid)
