"""The per-model report: exact keys, top-k from stored test probabilities, the text table."""

from __future__ import annotations

import json

from sklearn.metrics import top_k_accuracy_score

from pinterest_mm.build import build
from pinterest_mm.report import format_model_report, model_report


def test_model_report_contents(tiny_store):
    build(tiny_store, "tiny", ["glove-6b-50", "tfidf-lr"], progress=False)
    rep = model_report(tiny_store, "tiny")
    assert set(rep) == {"dataset", "classes", "models", "skipped"} and rep["skipped"] == []
    assert rep["dataset"] == "tiny" and rep["classes"] == tiny_store.classes("tiny")
    json.dumps(rep)  # JSON-ready
    C = len(rep["classes"])
    assert sorted(m["name"] for m in rep["models"]) == ["glove-6b-50", "tfidf-lr"]
    y = tiny_store.pins("tiny", "test")["label"].to_numpy()
    for m in rep["models"]:
        assert set(m) == {"name", "family", "modality", "params", "cv_score", "val_accuracy",
                          "test_accuracy", "test_topk", "seconds"}
        assert len(m["test_topk"]) == min(10, C)
        assert m["test_topk"] == sorted(m["test_topk"]) and m["test_topk"][-1] == 1.0
        assert abs(m["test_topk"][0] - m["test_accuracy"]) < 1e-9
        probs = tiny_store.load_probs("tiny", m["name"], "test")
        assert abs(m["test_topk"][1] - top_k_accuracy_score(y, probs, k=2, labels=range(C))) < 1e-9
        assert m["modality"] == "text" and m["seconds"] >= 0 and 0 <= m["cv_score"] <= 1
    assert {m["name"]: m["family"] for m in rep["models"]} == {"glove-6b-50": "word_embedding", "tfidf-lr": "other"}
    text = format_model_report(rep)
    assert "glove-6b-50" in text and "tfidf-lr" in text and "6 classes" in text
    glove = next(m for m in rep["models"] if m["name"] == "glove-6b-50")
    row = next(line.split() for line in text.splitlines() if line.startswith("glove-6b-50"))
    assert row[3] == f"{glove['params']['C']:g}" and row[5] == f"{glove['val_accuracy']:.4f}"
    assert row[8] == f"{glove['test_topk'][2]:.4f}"  # top-3


def test_empty_report(tiny_store):
    rep = model_report(tiny_store, "tiny")
    assert rep["models"] == []
    assert "no models built" in format_model_report(rep)
