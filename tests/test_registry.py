"""The model registry: listing, lookup errors, the offline default set, availability."""

from __future__ import annotations

import pytest

from pinterest_mm.models import (
    FAMILIES,
    UnknownModelError,
    WeightsUnavailable,
    default_models,
    format_models_table,
    get_model,
    list_models,
)
from pinterest_mm.models.registry import hub_hint, weights_env_var
from pinterest_mm.outputs import FAMILIES as OUTPUT_FAMILIES

OFFLINE = ["effnet-lite0", "effnet-lite1", "effnet-lite2", "glove-6b-50", "word2vec-train",
           "fasttext-train", "minilm-l6", "tfidf-lr", "tfidf-svm", "e5-small"]
THESIS = ["convnext-tiny", "convnext-small", "convnext-base", "effnetv2-b1", "effnetv2-b3",
          "effnetv2-s", "bert-base", "roberta-base", "glove-twitter-200",
          "word2vec-google-news-300", "fasttext-wiki-news-300"]


def test_listing_has_every_model_once_with_valid_fields():
    names = [s.name for s in list_models()]
    assert names == OFFLINE + ["cnn-scratch", "lstm-cnn"] + THESIS
    assert FAMILIES == OUTPUT_FAMILIES
    for s in list_models():
        assert s.family in FAMILIES and s.modality in ("image", "text")
        assert s.kind in ("features", "classifier") and s.source
        assert (s.kind == "classifier") == (s.dim is None)
    assert sum(s.thesis for s in list_models()) == 11  # the thesis's 11 models (3.4.2)


def test_pattern_and_default_set():
    assert [s.name for s in list_models("effnet-lite*")] == ["effnet-lite0", "effnet-lite1", "effnet-lite2"]
    assert [s.name for s in default_models()] == OFFLINE
    assert get_model("minilm-l6").family == "transformer"
    assert get_model("tfidf-lr").family == "other"
    assert get_model("convnext-base").dim == 1024 and get_model("effnetv2-b3").dim == 1536


def test_unknown_model_lists_the_known_names():
    with pytest.raises(UnknownModelError) as err:
        get_model("resnet-9000")
    assert isinstance(err.value, ValueError)
    msg = str(err.value)
    assert "resnet-9000" in msg and "effnet-lite0" in msg and "roberta-base" in msg


@pytest.mark.parametrize("name", OFFLINE)
def test_every_offline_model_is_available_here(name):
    ok, why = get_model(name).available()
    assert ok, f"{name}: {why}"


def test_thesis_models_report_why_without_network(monkeypatch, tmp_path):
    monkeypatch.setenv("GENSIM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    for name in THESIS:
        ok, why = get_model(name).available()
        assert not ok and why, name
    # A local weights file given by environment variable makes a hub model available.
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")
    monkeypatch.setenv(weights_env_var("convnext-tiny"), str(weights))
    assert get_model("convnext-tiny").available()[0]


def test_weights_message_says_how_to_get_them():
    msg = hub_hint("convnext-base", "python -c 'import timm'")
    assert "PINTEREST_MM_WEIGHTS_CONVNEXT_BASE" in msg and "internet" in msg
    assert issubclass(WeightsUnavailable, RuntimeError)


def test_models_table_lists_availability():
    table = format_models_table(list_models("glove*"))
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["name", "modality", "family", "dim", "available"]
    assert any(line.startswith("glove-6b-50") and " yes " in line for line in lines)


def test_every_registered_model_fits_the_build_contract():
    """Check each entry's object has its kind's protocol methods, and a missing one is named."""
    from pinterest_mm.models.base import Classifier, FeatureModel, check_contract

    for spec in list_models():
        obj = check_contract(spec.create(), spec.kind, spec.name)
        assert isinstance(obj, FeatureModel if spec.kind == "features" else Classifier), spec.name

    class Half:
        def config(self) -> dict:
            return {}

        def fit(self, ctx):
            return {}

    with pytest.raises(TypeError, match="'half' of kind 'classifier' lacks predictor"):
        check_contract(Half(), "classifier", "half")
    with pytest.raises(TypeError, match="lacks compute_features, save_state, load_state, featurize"):
        check_contract(Half(), "features", "half")
