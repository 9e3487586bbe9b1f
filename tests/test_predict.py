"""The library facade (``Lab``) and ``pinterest-mm predict`` on the tiny dataset with real
packaged models (EfficientNet-Lite0, GloVe 6B-50d, TF-IDF)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import TINY_CLASSES, TINY_CONFIG, draw_pin_image
from pinterest_mm import Lab
from pinterest_mm.cli import main
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.store import DatasetNotFound, Store

MODELS = ["effnet-lite0", "glove-6b-50", "tfidf-lr"]
OPTIONS = {"effnet-lite0": {"chunk_rows": 48, "batch_size": 16}}


@pytest.fixture(scope="module")
def home(tmp_path_factory, tiny_manifest):
    """A store with ``tiny`` imported and the three real models built on it."""
    from pinterest_mm.build import build

    root = tmp_path_factory.mktemp("predict") / "home"
    store = Store(root)
    import_manifest(store, tiny_manifest, "tiny", TINY_CONFIG, progress=False)
    results = build(store, "tiny", MODELS, progress=False, options=OPTIONS)
    assert [r["status"] for r in results] == ["built"] * len(MODELS)
    return root


@pytest.fixture(scope="module")
def ds(home):
    return Lab(home).dataset("tiny")


@pytest.fixture
def env(home, monkeypatch):
    monkeypatch.setenv("PINTEREST_MM_HOME", str(home))
    return home


def test_lab_lists_datasets_models_and_refuses_unknown_names(home, ds):
    lab = Lab(home)
    assert lab.datasets()["name"].tolist() == ["tiny"]
    with pytest.raises(DatasetNotFound, match="imported: tiny"):
        lab.dataset("nope")
    models = ds.models()
    assert sorted(models["model"]) == sorted(MODELS)
    assert models["val_accuracy"].is_monotonic_decreasing
    info = ds.outputs.models["glove-6b-50"]
    row = models.set_index("model").loc["glove-6b-50"]
    assert row["test_accuracy"] == info.test_accuracy and 0 < row["test_top2"] <= 1
    assert "mm" in ds.methods() and "stacking" in ds.methods()
    assert lab.dataset("tiny") is lab.dataset("tiny")  # read once per store version


def test_lab_fuses_with_any_config_and_evaluates(ds):
    res = ds.fuse("mm", l=2)
    assert res.chosen["l"] == 2.0 and res.chosen["models"] == ["effnet-lite0", "glove-6b-50"]
    assert ds.fuse("mm", l=2) is res
    ev = ds.evaluate(res)
    assert ev.accuracy == pytest.approx(res.test_accuracy)
    assert ev.topk[0] <= ev.topk[1] <= ev.topk[-1] == 1.0
    assert ev.confusion.sum() == len(ds.outputs.y["test"]) and ev.confusion.shape == (6, 6)
    assert ds.evaluate("tfidf-lr", "val").accuracy == pytest.approx(ds.outputs.models["tfidf-lr"].val_accuracy)
    lam = ds.fuse("lambda", image_model="effnet-lite0", text_model="tfidf-lr", lam=0.3)
    assert lam.weights == pytest.approx({"effnet-lite0": 0.3, "tfidf-lr": 0.7})
    with pytest.raises(ValueError, match="unknown config keys"):
        ds.fuse("mm", temperature=3)
    with pytest.raises(ValueError, match="Unknown fusion method"):
        ds.fuse("nope")
    cmp = ds.compare(["mm", "equal"])
    assert [r["method"] for r in cmp["table"]] == ["mm", "equal"] and cmp["errors"] == {}


def _test_pin(ds, i: int = 0) -> tuple[str, str, int]:
    pins = ds.store.pins("tiny", "test").sort_values("split_row")
    row = pins.iloc[i]
    return row["image"], row["description"], int(row["split_row"])


def test_predicting_a_dataset_pin_reproduces_its_cached_probabilities(ds):
    """A test pin predicted from its file and text gets the models' stored test probabilities,
    and the fused vector of the MM fusion result."""
    image, text, row = _test_pin(ds, 3)
    res = ds.fuse("mm", l=2)
    pin = ds.predict(image=image, text=text, method="mm", l=2)
    assert set(pin.probs) == {"effnet-lite0", "glove-6b-50"} and pin.skipped == {}
    for m, p in pin.probs.items():
        np.testing.assert_allclose(p, ds.outputs.probs[m]["test"][row], atol=2e-4)
    np.testing.assert_allclose(pin.fused, res.test_probs[row], atol=2e-4)
    assert pin.weights == pytest.approx(res.weights)
    assert ds.top_k(pin.fused, 2)[0][0] == ds.classes[int(res.test_probs[row].argmax())]


def test_one_modality_renormalizes_the_weights(ds):
    img = draw_pin_image(TINY_CLASSES["Sports"][0], TINY_CLASSES["Sports"][1], np.random.default_rng(5))
    pin = ds.predict(image=img)
    assert set(pin.probs) == {"effnet-lite0"} and pin.skipped == {"glove-6b-50": "no description given"}
    assert pin.weights == {"effnet-lite0": 1.0} and pin.image_share == 1.0
    np.testing.assert_allclose(pin.fused, pin.probs["effnet-lite0"], atol=1e-6)
    text = ds.predict(text="football team match at the stadium", method="lambda",
                      image_model="effnet-lite0", text_model="tfidf-lr")
    assert set(text.probs) == {"tfidf-lr"} and text.image_share == 0.0
    assert ds.top_k(text.fused)[0][0] == "Sports"


def test_predict_refuses_what_it_cannot_do(ds, tmp_path):
    with pytest.raises(ValueError, match="needs an image or a description"):
        ds.predict()
    with pytest.raises(ValueError, match="no per-model weights"):
        ds.predict(text="a cake recipe", method="stacking")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="bad.png cannot be used: not an image"):
        ds.predict(image=bad)


# ----------------------------------------------------------------------------- the command
def test_cli_predicts_one_pin(ds, env, capsys):
    image, text, row = _test_pin(ds, 3)
    assert main(["predict", "tiny", "--image", image, "--text", text, "--l", "2", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["chosen"]["l"] == 2.0 and set(got["probabilities"]) == {"fused", "effnet-lite0", "glove-6b-50"}
    fused = np.array([got["probabilities"]["fused"][c] for c in ds.classes])
    np.testing.assert_allclose(fused, ds.fuse("mm", l=2).test_probs[row], atol=2e-4)
    assert len(got["top_k"]["fused"]) == 3
    assert main(["predict", "tiny", "--text", text, "--method", "lambda", "--lam", "0.5", "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "fusion lambda (lambda=0.5" in out and "effnet-lite0: no vote, no image given" in out
    assert sum(line.startswith("fused ") for line in out.splitlines()) == 2


@pytest.mark.parametrize("argv, message", [
    (["predict", "tiny"], "Give a pin"),
    (["predict", "nope", "--text", "cake"], "No dataset named 'nope'"),
    (["predict", "tiny", "--text", "cake", "--method", "stacking"], "no per-model weights"),
    (["predict", "tiny", "--text", "cake", "--l", "2", "--method", "lambda"], "unknown config keys ['l']"),
    (["predict", "tiny", "--manifest", "pins.csv"], "needs --out"),
    (["predict", "tiny", "--manifest", "pins.csv", "--out", "p.csv", "--batch-size", "0"], "batch_size must be 1 or more"),
    (["predict", "tiny", "--manifest", "pins.csv", "--out", "p.txt"], "a .csv or .parquet file, not p.txt"),
    (["predict", "tiny", "--manifest", "nope.csv", "--out", "p.csv"], "Manifest nope.csv does not exist"),
    (["predict", "tiny", "--image", "nothing.png"], "nothing.png cannot be used: image file missing"),
])
def test_cli_predict_errors_are_one_paragraph(env, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_predicts_a_manifest(ds, env, tmp_path, capsys, suffix):
    """Every pin gets its rows: the fused and per-model top-k, or a note saying why not."""
    image, text, row = _test_pin(ds, 1)
    folder = tmp_path / "batch"
    folder.mkdir()
    Image.open(image).save(folder / "good.png")
    (folder / "broken.png").write_bytes(b"not an image")
    pd.DataFrame([
        {"pin_id": "both", "image": "good.png", "description": text},
        {"pin_id": "text-only", "image": "", "description": "tulip bulbs in the garden soil"},
        {"pin_id": "broken", "image": "broken.png", "description": "pizza recipe for dinner"},
        {"pin_id": "escape", "image": "../outside.png", "description": ""},
        {"pin_id": "nothing", "image": "", "description": ""},
        {"pin_id": "=HYPERLINK(1)", "image": "", "description": "robot laptop code"},
    ]).to_csv(folder / "pins.csv", index=False)
    out = tmp_path / f"pred{suffix}"
    assert main(["predict", "tiny", "--manifest", str(folder / "pins.csv"), "--out", str(out),
                 "--l", "2", "--top-k", "2", "--batch-size", "2", "--quiet"]) == 0
    assert "Predicted 6 pins (1 with an image, 4 with a description)" in capsys.readouterr().out
    df = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert list(df.columns) == ["pin_id", "source", "rank", "category", "probability", "note"]
    both = df[df["pin_id"] == "both"]
    fused = both[both["source"] == "fused"]
    assert fused["rank"].tolist() == [1, 2]
    expected = ds.fuse("mm", l=2).test_probs[row]
    assert fused["category"].iloc[0] == ds.classes[int(expected.argmax())]
    assert fused["probability"].iloc[0] == pytest.approx(float(expected.max()), abs=2e-4)
    assert set(both["source"]) == {"fused", "effnet-lite0", "glove-6b-50"}
    broken = df[df["pin_id"] == "broken"]
    assert broken["note"].str.contains("broken.png cannot be used: not an image").all()
    assert (broken[broken["source"] == "fused"]["rank"] == [1, 2]).all()  # the text still votes
    assert df[df["pin_id"] == "escape"]["note"].str.contains("leads outside the images root").all()
    assert df[df["pin_id"] == "nothing"]["note"].tolist() == ["no image and no description"]
    text_only = df[(df["pin_id"] == "text-only") & (df["source"] == "fused")]
    assert text_only["category"].iloc[0] == "Gardening"
    # a spreadsheet never runs a cell of the CSV as a formula; Parquet keeps the value as given
    assert ("'=HYPERLINK(1)" if suffix == ".csv" else "=HYPERLINK(1)") in set(df["pin_id"])


class _PicksOnText:
    """A text predictor that fails on one text (stands for a model that trips on one pin)."""

    def predict_proba(self, images=None, texts=None):
        if "boom" in texts:
            raise RuntimeError("tripped")
        return np.tile(np.array([[0.2, 0.8]], np.float32), (len(texts), 1))


def test_one_failing_pin_costs_only_its_own_vote():
    from pinterest_mm.predict import predict_pins

    preds = predict_pins({"t": _PicksOnText(), "gone": "cannot be loaded (no checkpoint)"},
                         {"t": "text", "gone": "text"}, {"t": 1.0, "gone": 1.0},
                         [None, None, None], ["fine", "boom", "also fine"])
    assert [p.fused is not None for p in preds] == [True, False, True]
    assert preds[1].skipped["t"] == "failed (RuntimeError: tripped)"
    assert all(p.skipped["gone"] == "cannot be loaded (no checkpoint)" for p in preds)
    np.testing.assert_allclose(preds[0].fused, [0.2, 0.8])
