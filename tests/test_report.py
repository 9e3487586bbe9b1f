"""The per-model report: exact keys, top-k from stored test probabilities, the text table."""

from __future__ import annotations

import json

import numpy as np
from sklearn.metrics import top_k_accuracy_score

from pinterest_mm.build import build
from pinterest_mm.report import format_model_report, model_report, topk_accuracies


def test_topk_matches_sklearn_including_ties():
    rng = np.random.default_rng(0)
    probs = rng.random((300, 12))
    probs[:50] = np.round(probs[:50], 1)  # many ties
    y = rng.integers(0, 12, 300)
    ours = topk_accuracies(probs, y)
    assert len(ours) == 10
    for k, v in enumerate(ours, start=1):
        assert abs(v - top_k_accuracy_score(y, probs, k=k, labels=range(12))) < 1e-12
    assert topk_accuracies(probs[:, :4], y % 4)[-1] == 1.0 and len(topk_accuracies(probs[:, :4], y % 4)) == 4


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


def test_empty_report(tiny_store):
    rep = model_report(tiny_store, "tiny")
    assert rep["models"] == []
    assert "no models built" in format_model_report(rep)
