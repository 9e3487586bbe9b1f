"""The thesis's eleven models built end to end from weights files in their real formats.

Each model gets its weights the way a researcher holds them (a ``.safetensors`` or
``pytorch_model.bin`` file, a timm hub folder, a ``save_pretrained`` folder, the local hub
cache, the gensim-data folder, a GloVe / word2vec / Facebook fastText file), written in the
test by the real libraries with seeded random weights. Each is built on a tiny generated
dataset and must give features of the registry's dimension, probabilities for every val/test
pin and a prediction for a new pin; the thesis report and the Predict page then show all of
them. Timm backbones are the real architectures at 32 px; BERT/RoBERTa have 2 small layers.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CLASSES, TINY_CONFIG, draw_pin_image, make_tiny_manifest
from thesis_weights import (
    GENSIM_NAMES, HF_IDS, TIMM_ARCH, place_in_hub_cache, save_fasttext_bin, save_timm,
    save_tiny_transformer, save_vectors, timm_state_dict, word_vectors,
)

pytest.importorskip("timm")
pytest.importorskip("transformers")
pytest.importorskip("gensim")

from pinterest_mm.build import build  # noqa: E402
from pinterest_mm.data.importer import import_manifest  # noqa: E402
from pinterest_mm.models.predictor import load_predictor  # noqa: E402
from pinterest_mm.models.registry import get_model, list_models, weights_env_var  # noqa: E402
from pinterest_mm.outputs import load_outputs  # noqa: E402
from pinterest_mm.store import Store  # noqa: E402

THESIS = [s.name for s in list_models() if s.thesis]
IMAGE_OPTIONS = {"image_size": 32, "batch_size": 48, "workers": 1}
TRANSFORMER_OPTIONS = {"epochs": 2, "batch_size": 16, "max_length": 32, "eval_batch_size": 64}
# How each model's weights are handed over: every form a researcher may hold appears once.
FORMS = {
    "convnext-tiny": "safetensors file",
    "convnext-small": "pytorch_model.bin file",
    "convnext-base": "timm hub folder",
    "effnetv2-b1": "hub cache (model.safetensors)",
    "effnetv2-b3": "safetensors file",
    "effnetv2-s": "hub cache (pytorch_model.bin)",
    "bert-base": "save_pretrained folder",
    "roberta-base": "hub cache (save_pretrained files)",
    "glove-twitter-200": "GloVe text file",
    "word2vec-google-news-300": "gensim-data folder (word2vec binary .gz)",
    "fasttext-wiki-news-300": "Facebook fastText .bin",
}


@dataclass
class Lab:
    root: Path
    store: Store
    mp: pytest.MonkeyPatch
    given: dict  # model -> what the weights were made from (for the checks)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A store with a tiny dataset; hub cache and gensim-data in temp folders, no downloads."""
    import huggingface_hub.constants as hub_constants

    root = tmp_path_factory.mktemp("thesis11")
    manifest = make_tiny_manifest(root / "data", per_class=12)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("PINTEREST_MM_DOWNLOAD", raising=False)
        for name in THESIS:
            mp.delenv(weights_env_var(name), raising=False)
        mp.setenv("GENSIM_DATA_DIR", str(root / "gensim-data"))
        mp.setattr(hub_constants, "HF_HUB_CACHE", str(root / "hub"))
        mp.setenv("PINTEREST_MM_HOME", str(root / "store"))
        store = Store(root / "store")
        import_manifest(store, manifest, "tiny", TINY_CONFIG, progress=False)
        yield Lab(root, store, mp, {})


def give_weights(lab: Lab, name: str) -> None:
    """Write ``name``'s weights in its form (see FORMS) and point the lab at them."""
    if name in lab.given:
        return
    w = lab.root / "weights" / name
    import huggingface_hub.constants as hub_constants

    hub = Path(hub_constants.HF_HUB_CACHE)
    if name in TIMM_ARCH:
        state = timm_state_dict(TIMM_ARCH[name], seed=len(lab.given) + 1)
        form = FORMS[name]
        if form.startswith("hub cache"):
            fname = "pytorch_model.bin" if "bin" in form else "model.safetensors"
            src = save_timm(state, w, "bin" if "bin" in form else "safetensors")
            place_in_hub_cache(hub, f"timm/{TIMM_ARCH[name]}", {fname: src})
        else:
            kind = {"safetensors file": "safetensors", "pytorch_model.bin file": "bin", "timm hub folder": "folder"}[form]
            lab.mp.setenv(weights_env_var(name), str(save_timm(state, w, kind)))
        lab.given[name] = state
    elif name in HF_IDS:
        folder = save_tiny_transformer(name.split("-")[0], w)
        if FORMS[name].startswith("hub cache"):
            place_in_hub_cache(hub, HF_IDS[name], {p.name: p for p in folder.iterdir()})
        else:
            lab.mp.setenv(weights_env_var(name), str(folder))
        lab.given[name] = folder
    elif name == "glove-twitter-200":
        lab.mp.setenv(weights_env_var(name), str(save_vectors(w / "glove.twitter.27B.200d.txt", "glove-text", 200, seed=1)))
        lab.given[name] = word_vectors(200, seed=1)
    elif name == "word2vec-google-news-300":
        gname = GENSIM_NAMES[name]
        save_vectors(lab.root / "gensim-data" / gname / f"{gname}.gz", "word2vec-bin-gz", 300, seed=2)
        (lab.root / "gensim-data" / gname / "__init__.py").write_text("# gensim-data loader\n")
        lab.given[name] = word_vectors(300, seed=2)
    elif name == "fasttext-wiki-news-300":
        lab.mp.setenv(weights_env_var(name), str(save_fasttext_bin(w / "cc.en.300.bin", 300)))
        lab.given[name] = None
    else:
        raise KeyError(name)


def _options(name: str) -> dict:
    spec = get_model(name)
    if spec.family == "image":
        return {name: IMAGE_OPTIONS}
    if spec.family == "transformer":
        return {name: TRANSFORMER_OPTIONS}
    return {}


def build_one(lab: Lab, name: str) -> dict:
    give_weights(lab, name)
    assert get_model(name).available()[0], get_model(name).available()
    return build(lab.store, "tiny", [name], progress=False, options=_options(name))[0]


def _pin_image():
    color, shape, _ = TINY_CLASSES["Sports"]
    return draw_pin_image(color, shape, np.random.default_rng(7))


@pytest.mark.parametrize("name", THESIS)
def test_thesis_model_builds_end_to_end(lab, name, monkeypatch):
    spec = get_model(name)
    assert name in FORMS and len(THESIS) == 11
    if spec.family == "transformer":  # a fine-tune killed after its first epoch resumes
        from pinterest_mm.models import transformer as tmod

        real_savez, calls = np.savez, {"n": 0}

        def dying_savez(*a, **k):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
            return real_savez(*a, **k)

        monkeypatch.setattr(tmod.np, "savez", dying_savez)
        with pytest.raises(KeyboardInterrupt):
            build_one(lab, name)
        monkeypatch.undo()
        state = json.loads((lab.store.checkpoints_dir("tiny", name) / "train_state.json").read_text())
        assert state["epochs_done"] == 1
    result = build_one(lab, name)
    assert result["status"] == "built", result
    out = load_outputs(lab.store, "tiny")
    C = out.n_classes
    for split in ("val", "test"):
        p = out.probs[name][split]
        assert p.shape == (len(out.y[split]), C) and len(out.y[split]) > 0
        assert np.isfinite(p).all() and np.allclose(p.sum(1), 1, atol=1e-4)
    assert out.models[name].family == spec.family

    pins = lab.store.pins("tiny").reset_index(drop=True)
    predictor = load_predictor(lab.store, "tiny", name)
    if spec.kind == "features":
        X = np.load(lab.store.features_path("tiny", name))
        assert X.shape == (len(pins), spec.dim) and np.abs(X).sum(1).min() > 0
    if spec.family == "image":
        net = predictor.predictor.model.torch_backbone().net  # the graph is exported from it
        key = next(k for k in lab.given[name] if k.endswith("weight") and lab.given[name][k].ndim == 4)
        assert np.array_equal(net.state_dict()[key].cpu().numpy(), lab.given[name][key].numpy()), "weights not loaded"
        proba = predictor.predict_proba(images=[_pin_image()])
    elif spec.family == "transformer":
        state = json.loads((lab.store.checkpoints_dir("tiny", name) / "train_state.json").read_text())
        assert state["epochs_done"] == 2 and len(state["val_accuracy"]) == 2
        from safetensors import safe_open

        best = next(lab.store.checkpoints_dir("tiny", name).glob("best_e*.safetensors"))
        with safe_open(str(best), "pt") as f:
            emb = next(k for k in f.keys() if k.endswith("word_embeddings.weight"))
            from transformers import AutoTokenizer

            assert f.get_slice(emb).get_shape() == [len(AutoTokenizer.from_pretrained(lab.given[name])), 32]
        proba = predictor.predict_proba(texts=["football team match at the stadium"])
    else:
        words, vecs = lab.given[name] or (None, None)
        if words is not None:  # features are the mean of this file's vectors (thesis eq. 3.1)
            index = {w: i for i, w in enumerate(words)}
            toks = [t for t in pins.loc[0, "text_words"].split() if t in index]
            np.testing.assert_allclose(X[0], vecs[[index[t] for t in toks]].mean(0), rtol=1e-4, atol=1e-5)
        else:  # Facebook .bin: subword vectors give an unseen word a vector
            assert np.abs(predictor.predictor.model.featurize(texts=["puppies kittens"])).sum() > 0
        proba = predictor.predict_proba(texts=["football team match at the stadium"])
    assert proba.shape == (1, C) and np.isclose(proba.sum(), 1, atol=1e-4)


def test_thesis_report_tables_and_predict_page_show_all_eleven(lab):
    """With all eleven built, each is a row of its family's table, the MM default selection
    follows the thesis's rule, and the Predict page predicts a new pin with them."""
    from pinterest_mm.fusion.late import SelectConfig, select_models
    from pinterest_mm.thesis import thesis_report

    for name in THESIS:
        if lab.store.model_fingerprint("tiny", name) is None:
            assert build_one(lab, name)["status"] == "built"
    out = load_outputs(lab.store, "tiny")
    rep = thesis_report(out, store=lab.store, feature_cross_pairs="none", methods=["mm"])
    for name in THESIS:
        family = get_model(name).family
        assert name in [r["model"] for r in rep["single_models"][family]], (name, family)
    chosen = select_models(out, SelectConfig(exclude_chance=False))  # the thesis's rule as written
    assert set(chosen) >= {"bert-base", "roberta-base"}  # (the default also drops chance-level models)
    for family in ("image", "word_embedding"):  # the best 2 by validation accuracy
        accs = sorted((out.models[m].val_accuracy for m in THESIS if get_model(m).family == family), reverse=True)
        picked = sorted((out.models[m].val_accuracy for m in chosen if get_model(m).family == family), reverse=True)
        assert picked == accs[:2], (family, picked, accs)

    streamlit_testing = pytest.importorskip("streamlit.testing.v1")
    buf = io.BytesIO()
    _pin_image().save(buf, "PNG")
    page = Path(__file__).resolve().parents[1] / "pages" / "6_Predict.py"
    at = streamlit_testing.AppTest.from_file(str(page), default_timeout=240)
    at.query_params["dataset"] = "tiny"
    at.run()
    at.file_uploader[0].set_value(("pin.png", buf.getvalue(), "image/png"))
    at.text_area(key="pred_text").input("football team match at the stadium")
    at.run()
    assert not at.exception, at.exception
    assert at.success and at.success[0].value.startswith("Fused prediction")
    used = next(c.value for c in at.caption if "Weights used" in c.value).replace("\\", "")  # names shown as escaped text
    default = select_models(out, SelectConfig())  # the thesis rule less chance-level models
    assert default and set(default) <= set(chosen)
    for name in default:  # the page fuses the default MM selection of the eleven
        assert name in used, (name, used)
    for name in set(chosen) - set(default):
        assert name not in used, (name, used)


def test_timm_weights_in_every_form_load_the_same_backbone(tmp_path, monkeypatch):
    """A .safetensors file, a pytorch_model.bin, a timm hub folder and the hub cache: same weights."""
    import huggingface_hub.constants as hub_constants

    name, arch = "effnetv2-b1", TIMM_ARCH["effnetv2-b1"]
    monkeypatch.delenv("PINTEREST_MM_DOWNLOAD", raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    state = timm_state_dict(arch, seed=11)
    key = "conv_stem.weight"
    seen = []
    for form in ("safetensors", "bin", "folder", "cache"):
        if form == "cache":
            monkeypatch.delenv(weights_env_var(name))
            place_in_hub_cache(tmp_path / "hub", f"timm/{arch}", {"model.safetensors": save_timm(state, tmp_path / "c", "safetensors")})
        else:
            monkeypatch.setenv(weights_env_var(name), str(save_timm(state, tmp_path / form, form)))
        assert get_model(name).available()[0], form
        bb = get_model(name).create(image_size=32).torch_backbone("cpu")  # weight loading: the reference runtime
        assert bb.dim == get_model(name).dim
        assert np.array_equal(bb.net.state_dict()[key].numpy(), state[key].numpy()), form
        seen.append(bb(np.full((1, 32, 32, 3), 128, np.uint8)))
    for feats in seen[1:]:
        np.testing.assert_allclose(feats, seen[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("form", ["word2vec-text", "word2vec-bin", "word2vec-text-gz", "word2vec-bin-gz", "glove-text"])
def test_vectors_in_every_format_give_the_same_features(tmp_path, monkeypatch, form):
    from pinterest_mm.models.text import vectors_format

    path = save_vectors(tmp_path / ("vectors" + (".gz" if form.endswith("-gz") else ".bin" if "bin" in form else ".txt")),
                        form, 300, seed=5)
    assert vectors_format(path) == form.removesuffix("-gz")
    monkeypatch.setenv(weights_env_var("word2vec-google-news-300"), str(path))
    X = get_model("word2vec-google-news-300").create().featurize(texts=["Football team", "nothing known here"])
    words, vecs = word_vectors(300, seed=5)
    want = vecs[[words.index("football"), words.index("team")]].mean(0)
    np.testing.assert_allclose(X[0], want, rtol=1e-5, atol=1e-5)
    assert not X[1].any()


def test_fasttext_bin_keeps_subwords_and_a_bad_file_says_so(tmp_path, monkeypatch):
    from pinterest_mm.models.registry import WeightsUnavailable
    from pinterest_mm.models.text import vectors_format

    path = save_fasttext_bin(tmp_path / "cc.en.300.bin", 300)
    assert vectors_format(path) == "fasttext"
    monkeypatch.setenv(weights_env_var("fasttext-wiki-news-300"), str(path))
    X = get_model("fasttext-wiki-news-300").create().featurize(texts=["puppies", "qqqq"])
    assert X.shape == (2, 300) and np.abs(X[0]).sum() > 0  # an unseen word, from its n-grams
    bad = tmp_path / "broken.bin"
    bad.write_bytes(b"\x00\x01garbage" * 10)
    monkeypatch.setenv(weights_env_var("fasttext-wiki-news-300"), str(bad))
    with pytest.raises(WeightsUnavailable, match="cannot be read"):
        get_model("fasttext-wiki-news-300").create().featurize(texts=["x"])


def test_gpu_path_thesis_settings_and_device_choice(monkeypatch):
    """On a CUDA machine builds pick the GPU and the thesis's fine-tuning settings (checked on a
    CPU with CUDA reported present; nothing runs on a GPU here)."""
    import torch

    from pinterest_mm.models.base import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device() == "cuda" and pick_device("cpu") == "cpu"
    cfg = get_model("bert-base").create().cfg
    assert (cfg.lr, cfg.epochs, cfg.batch_size, cfg.freeze_embeddings) == (8.35e-6, 7, 6, False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_model("roberta-base").create().cfg.epochs == 0  # on a CPU: frozen encoder + logistic regression


def test_other_weights_in_the_cache_rebuild_the_model(lab):
    """Weights replaced in the gensim-data folder (a new download or unpack) are not the cached
    features' weights: the model is rebuilt, and unchanged weights are reused."""
    name = "word2vec-google-news-300"
    build_one(lab, name)
    assert build(lab.store, "tiny", [name], progress=False)[0]["status"] == "cached"
    gname = GENSIM_NAMES[name]
    save_vectors(lab.root / "gensim-data" / gname / f"{gname}.gz", "word2vec-bin-gz", 300, seed=99)
    assert build(lab.store, "tiny", [name], progress=False)[0]["status"] == "built"
    lab.given.pop(name)  # the e2e test writes its own vectors again when it runs after this one
    give_weights(lab, name)
    assert build(lab.store, "tiny", [name], progress=False)[0]["status"] == "built"
