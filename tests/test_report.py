"""The per-model report: exact keys, top-k from stored test probabilities, the text table."""

from __future__ import annotations

import json

from sklearn.metrics import top_k_accuracy_score

from pinterest_mm.build import build
from pinterest_mm.report import format_model_report, model_report
from pinterest_mm.stats import wilson


def test_model_report_contents(tiny_store):
    build(tiny_store, "tiny", ["glove-6b-50", "tfidf-lr"], progress=False)
    rep = model_report(tiny_store, "tiny")
    assert set(rep) == {"dataset", "classes", "n", "models", "skipped", "definitions", "interval",
                        "warning"} and rep["skipped"] == []
    n_test = rep["n"]["test"]
    assert n_test == len(tiny_store.pins("tiny", "test")) and str(n_test) in rep["warning"]  # tiny: < 200 pins
    assert rep["definitions"]["best_single"] == rep["models"][0]["name"]
    assert rep["dataset"] == "tiny" and rep["classes"] == tiny_store.classes("tiny")
    json.dumps(rep)  # JSON-ready
    C = len(rep["classes"])
    assert sorted(m["name"] for m in rep["models"]) == ["glove-6b-50", "tfidf-lr"]
    y = tiny_store.pins("tiny", "test")["label"].to_numpy()
    for m in rep["models"]:
        assert set(m) == {"name", "family", "modality", "params", "cv_score", "val_accuracy",
                          "test_accuracy", "test_topk", "seconds", "val_accuracy_ci", "test_accuracy_ci",
                          "test_topk_ci", "c_warning", "unknown_words"}
        lo, hi = m["test_accuracy_ci"]
        assert lo < m["test_accuracy"] < hi or m["test_accuracy"] in (lo, hi)
        assert m["test_accuracy_ci"] == list(wilson(round(m["test_accuracy"] * n_test), n_test))
        assert len(m["test_topk_ci"]) == len(m["test_topk"])
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
    lo, hi = glove["val_accuracy_ci"]
    assert row[3] == f"{glove['params']['C']:g}" and row[5:8] == [f"{glove['val_accuracy']:.3f}", f"[{lo:.2f},", f"{hi:.2f}]"]
    assert row[14] == f"{glove['test_topk'][2]:.3f}"  # top-3
    assert f"best single model by validation accuracy (ties: name): {rep['models'][0]['name']}" in text
    assert f"WARNING: Small test set: {n_test} test pins" in text
    # GloVe knows the tiny set's English words: counted, no unknown-words warning; TF-IDF is not counted
    cover = glove["unknown_words"]
    assert cover["pins"] == len(tiny_store.pins("tiny")) and cover["tokens"] > cover["pins"]
    assert cover["share_pins"] < 0.10 and cover["warning"] is None
    assert next(m for m in rep["models"] if m["name"] == "tfidf-lr")["unknown_words"] is None
    assert "Unknown words (pins with text that have no known word; unknown words or tokens): glove-6b-50" in text


def test_empty_report(tiny_store):
    rep = model_report(tiny_store, "tiny")
    assert rep["models"] == []
    assert "no models built" in format_model_report(rep)


def test_build_c_grid_and_the_edge_of_grid_note(tiny_store, monkeypatch, capsys):
    """``build --c-grid`` sets the C values tried (stored with the model); ``report`` flags a C on
    the grid's edge; a malformed grid is refused with a one-line message."""
    import pytest

    from pinterest_mm.cli import main
    from pinterest_mm.models.classify import c_edge_warning

    monkeypatch.setenv("PINTEREST_MM_HOME", str(tiny_store.root))
    with pytest.raises(SystemExit) as exc:
        main(["build", "tiny", "--models", "glove-6b-50", "--c-grid", "1,zero"])
    assert exc.value.code == 2 and "--c-grid takes comma-separated positive numbers" in capsys.readouterr().err
    assert tiny_store.models("tiny").empty  # nothing was built
    assert main(["build", "tiny", "--models", "glove-6b-50", "--c-grid", "5,0.5", "--quiet"]) == 0
    capsys.readouterr()
    rep = model_report(tiny_store, "tiny")
    glove = rep["models"][0]
    assert sorted(glove["params"]["cv_scores"]) == ["0.5", "5.0"] and glove["params"]["C"] in (0.5, 5.0)
    assert glove["c_warning"] == c_edge_warning(glove["params"]["C"], (5.0, 0.5)) is not None  # 2 values: both edges
    assert f"glove-6b-50: {glove['c_warning']}" in format_model_report(rep)
