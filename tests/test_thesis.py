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
