"""Tests of pinterest_mm.thesis on synthetic Outputs."""

from __future__ import annotations

import pytest

from pinterest_mm.bench import SynthModel, synthetic_outputs
from pinterest_mm.thesis import CLAIMS, format_thesis_report, thesis_report

FAST = ["mm", "lambda", "equal", "best_single", "log_linear", "optimized", "feature_cross"]


@pytest.fixture(scope="module")
def report():
    return thesis_report(synthetic_outputs(n=(300, 150, 150), C=6, seed=2), methods=FAST)


def test_report_has_every_table_and_claim(report):
    """Check the analogues of Tables 4.2-4.10, Figures 4.1-4.4, fusions and claims are present."""
    for key in ("single_models", "lambda_word_embedding", "lambda_transformer", "feature_cross",
                "mm", "figures", "fusions", "claims", "best_single"):
        assert key in report
    assert [r["model"] for r in report["single_models"]["image"]] and report["single_models"]["transformer"]
    assert len(report["lambda_word_embedding"]) == 4 and len(report["lambda_transformer"]) == 2
    row = report["lambda_word_embedding"][0]
    assert row["best_lambda"] in row["val"] and row["val"][row["best_lambda"]] == max(row["val"].values())
    assert len(report["feature_cross"]) == 4
    mm = report["mm"]
    assert [g["l"] for g in mm["l_table"]] == [1, 2, 3, 4, 5]
    assert sum(mm["weights"].values()) == pytest.approx(1) and len(mm["test_topk"]) == 10
    assert {"4.1_single_topk", "4.2_lambda_word_embedding_top5", "4.3_lambda_transformer_top5",
            "4.4_methods"} <= set(report["figures"])
    assert [f["method"] for f in report["fusions"]] == FAST
    assert all({"method", "config", "val_accuracy", "test_accuracy", "test_topk"} <= set(f) for f in report["fusions"])
    assert [c["claim"] for c in report["claims"]] == list(CLAIMS)
    assert all(c["verdict"] in ("holds", "fails", "inconclusive") and c["evidence"] for c in report["claims"])
    # Claim 1 compares MM with the best single model on test, paired on the same pins.
    c = report["claims"][0]
    assert c["diff"] == pytest.approx(mm["test_accuracy"] - report["best_single"]["test_accuracy"])
    assert c["holds"] == {"holds": True, "fails": False}.get(c["verdict"])


def test_format_report(report):
    """Check the text rendering names the tables and the claims."""
    text = format_thesis_report(report)
    for needle in ("Table 4.5", "Table 4.7", "Table 4.8", "Table 4.9", "Table 4.10", "Claims"):
        assert needle in text
    # the last lines give each claim's verdict as computed, whichever way the seed fell
    mark = {"holds": "HOLDS", "fails": "FAILS", "inconclusive": "INCONCLUSIVE", "not applicable": "N/A"}
    expected = [f"[{mark[c['verdict']]}] {c['claim']}: {c['evidence']}" for c in report["claims"]]
    assert [line.strip() for line in text.splitlines()[-len(expected):]] == expected


def test_missing_families_are_not_applicable():
    """Check claims needing absent families say 'not applicable' with holds=None."""
    o = synthetic_outputs(n=(200, 100, 100), C=5, models=(
        SynthModel("img", "image", "image", 1.5), SynthModel("tr", "transformer", "text", 1.5, False)))
    rep = thesis_report(o, methods=["mm", "best_single"])
    claims = {c["claim"]: c for c in rep["claims"]}
    assert claims[CLAIMS[2]]["holds"] is None and "not applicable" in claims[CLAIMS[2]]["evidence"]
    assert claims[CLAIMS[2]]["verdict"] == "not applicable"
    assert claims[CLAIMS[0]]["verdict"] in ("holds", "fails", "inconclusive")
    assert rep["lambda_word_embedding"] == [] and rep["feature_cross"] == []
    assert "Claims" in format_thesis_report(rep)


def test_one_definition_per_pair_and_best_model(report):
    """Check the claims, the tables and the fusions rows use the rule's pairs and say which."""
    d = report["definitions"]
    assert d["lambda_pair"] == ["img_a", "tr_a"] and d["lambda_pair_word_embedding"] == ["img_a", "we_a"]
    assert d["feature_cross_pair"] == ["img_a", "we_a"] and d["best_single"] == "tr_a"
    assert report["best_single"]["model"] == "tr_a"
    fusions = {f["method"]: f for f in report["fusions"]}
    lam, fx = fusions["lambda"]["chosen"], fusions["feature_cross"]["chosen"]
    assert [lam["image_model"], lam["text_model"]] == d["lambda_pair"]
    assert [fx["image_model"], fx["text_model"]] == d["feature_cross_pair"]
    marked = [r for r in report["feature_cross"] if r["chosen"]]
    assert [[r["image"], r["text"]] for r in marked] == [d["feature_cross_pair"]]
    assert marked[0]["test_accuracy"] == fusions["feature_cross"]["test_accuracy"]
    assert [[r["image"], r["text"]] for r in report["lambda_word_embedding"] if r["chosen"]] == \
        [d["lambda_pair_word_embedding"]]
    claims = {c["claim"]: c for c in report["claims"]}
    assert claims[CLAIMS[1]]["b"] == "lambda img_a x tr_a (image x any text)"
    assert claims[CLAIMS[1]]["diff"] == pytest.approx(report["mm"]["test_accuracy"] - fusions["lambda"]["test_accuracy"])
    we_row = next(r for r in report["lambda_word_embedding"] if r["chosen"])
    assert claims[CLAIMS[2]]["diff"] == pytest.approx(we_row["test_accuracy"] - marked[0]["test_accuracy"])
    assert claims[CLAIMS[2]]["a"] == "lambda img_a x we_a (image x word embedding)"
    assert claims[CLAIMS[2]]["b"] == "feature cross img_a x we_a"
    text = format_thesis_report(report)
    assert "lambda=0.3" in text and "l=0.3" not in text.replace("lambda=0.3", "")
    assert "best single model by validation accuracy (ties: name): tr_a" in text
    assert "feature-cross pair: the best image model x the best word-embedding model" in text


def test_recommended_ensemble_is_checked_and_never_worse_on_val(report):
    fusions = {f["method"]: f for f in report["fusions"]}
    assert "ensemble" not in fusions  # FAST leaves it out: the claim still runs it
    c = {c["claim"]: c for c in report["claims"]}[CLAIMS[4]]
    assert c["a"] == "ensemble (recommended)" and c["verdict"] in ("holds", "fails", "inconclusive")
    assert c["bootstrap"]["low"] <= c["diff"] <= c["bootstrap"]["high"]
    assert c["diff"] == pytest.approx(c["bootstrap"]["diff"])


def test_ensemble_fusion_in_the_registry():
    from pinterest_mm.fusion import fuse

    o = synthetic_outputs(n=(300, 150, 150), C=6, seed=2)
    r = fuse(o, "ensemble")
    best = max(o.models, key=lambda m: ((o.probs[m]["val"].argmax(1) == o.y["val"]).mean(), m))
    best_val = float((o.probs[best]["val"].argmax(1) == o.y["val"]).mean())
    assert r.val_accuracy >= best_val and sum(r.weights.values()) == pytest.approx(1)
    assert r.chosen["start"] in r.weights and set(r.chosen["models"]) == set(r.weights)
    assert len(r.weights) > 1  # independent synthetic models: mixing lowers the log-loss


def test_small_test_set_warning_and_test_method_text(report):
    assert "150 test pins" in report["warning"]
    text = format_thesis_report(report)
    assert text.count("WARNING: Small test set: 150 test pins") == 2  # top and above the claims
    assert "Holm-corrected over the 5 applicable claims" in text and "McNemar's exact mid-p" in text
    assert "Recommended by validation: ensemble" not in text  # not among FAST
