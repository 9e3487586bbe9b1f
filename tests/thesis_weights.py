"""Weights of the thesis's eleven models in the formats the real ones come in, made locally.

Every file is written by the real libraries (timm, transformers, tokenizers, gensim) with
seeded random weights and no network: the architectures are the real ones for timm, reduced
in depth and width for BERT/RoBERTa (the loaders must not assume the size), and the word
vectors have the registry's dimension over the tiny dataset's vocabulary.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from conftest import FILLER, TINY_CLASSES

TIMM_ARCH = {
    "convnext-tiny": "convnext_tiny.fb_in1k",
    "convnext-small": "convnext_small.fb_in1k",
    "convnext-base": "convnext_base.fb_in22k_ft_in1k",
    "effnetv2-b1": "tf_efficientnetv2_b1.in1k",
    "effnetv2-b3": "tf_efficientnetv2_b3.in1k",
    "effnetv2-s": "tf_efficientnetv2_s.in21k_ft_in1k",
}
HF_IDS = {"bert-base": "bert-base-uncased", "roberta-base": "FacebookAI/roberta-base"}
GENSIM_NAMES = {
    "glove-twitter-200": "glove-twitter-200",
    "word2vec-google-news-300": "word2vec-google-news-300",
    "fasttext-wiki-news-300": "fasttext-wiki-news-subwords-300",
}


def tiny_words() -> list[str]:
    """Every word of the tiny dataset's descriptions (lower case), sorted."""
    words = set(FILLER)
    for _, _, ws in TINY_CLASSES.values():
        words.update(ws)
    return sorted(words)


# ---------------------------------------------------------------------- timm
def timm_state_dict(timm_name: str, seed: int = 0) -> dict:
    """The real timm architecture's state dict (with its 1000-class head), seeded random values.

    The model is created with ``pretrained=False`` on the meta device (timm's own random init
    of ConvNeXt-Base takes seconds on a small CPU) and every tensor is drawn from a seeded
    generator: N(0, 0.05) weights, BatchNorm statistics mean 0 / variance 1.
    """
    import timm
    import torch

    with torch.device("meta"):
        net = timm.create_model(timm_name.split(".")[0], pretrained=False)
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, meta in net.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros(meta.shape, dtype=meta.dtype)
        elif key.endswith("running_var"):
            state[key] = torch.ones(meta.shape)
        elif key.endswith("running_mean"):
            state[key] = torch.zeros(meta.shape)
        else:
            state[key] = 0.05 * torch.randn(meta.shape, generator=gen)
    return state


def save_timm(state: dict, out: Path, form: str) -> Path:
    """Write a timm state dict as ``safetensors`` (a file), ``bin`` (pytorch_model.bin) or
    ``folder`` (a timm hub folder: config.json + model.safetensors). Returns the path to give."""
    import json

    import torch
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    if form == "safetensors":
        save_file(state, out / "weights.safetensors")
        return out / "weights.safetensors"
    if form == "bin":
        torch.save(state, out / "pytorch_model.bin")
        return out / "pytorch_model.bin"
    if form == "folder":
        (out / "config.json").write_text(json.dumps({"architecture": "timm", "num_classes": 1000}))
        save_file(state, out / "model.safetensors")
        return out
    raise ValueError(form)


def place_in_hub_cache(cache: Path, repo: str, files: dict[str, Path], revision: str = "0" * 40) -> Path:
    """Lay files out as the Hugging Face hub cache does (refs/main -> snapshots/<rev>/file)."""
    import shutil

    root = cache / ("models--" + repo.replace("/", "--"))
    snap = root / "snapshots" / revision
    snap.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        shutil.copyfile(src, snap / name)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    return snap


# ---------------------------------------------------------------------- transformers
def save_tiny_transformer(kind: str, out: Path, seed: int = 0) -> Path:
    """A 2-layer BERT or RoBERTa as ``save_pretrained`` writes it, with its tokenizer."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    words = tiny_words()
    if kind == "bert":
        from transformers import BertConfig, BertModel, BertTokenizer

        vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + words
        tok = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
        cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=160)
        BertModel(cfg).save_pretrained(out)
    else:
        from tokenizers import ByteLevelBPETokenizer
        import json

        from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator([" ".join(words)] * 4, vocab_size=400, min_frequency=1,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
        bpe.save_model(str(out))
        merges = [tuple(m.split(" ")) for m in (out / "merges.txt").read_text().splitlines() if m and not m.startswith("#")]
        tok = RobertaTokenizer(vocab=json.loads((out / "vocab.json").read_text()), merges=merges)
        cfg = RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=162, pad_token_id=tok.pad_token_id)
        RobertaModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


# ---------------------------------------------------------------------- gensim
def word_vectors(dim: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Seeded random vectors (n_words, dim) float32 for the tiny dataset's words."""
    words = tiny_words()
    rng = np.random.default_rng(seed)
    return words, rng.normal(size=(len(words), dim)).astype(np.float32)


def save_vectors(out: Path, form: str, dim: int, seed: int = 0) -> Path:
    """Write word vectors as ``glove-text`` (header-less), ``word2vec-text``,
    ``word2vec-bin``, ``word2vec-bin-gz`` (gensim-data's Google News) or ``word2vec-text-gz``
    (gensim-data's GloVe Twitter / fastText), with gensim where it has a writer."""
    from gensim.models import KeyedVectors

    out.parent.mkdir(parents=True, exist_ok=True)
    words, vecs = word_vectors(dim, seed)
    if form == "glove-text":
        with open(out, "w") as fh:
            for w, v in zip(words, vecs):
                fh.write(w + " " + " ".join(f"{x:.6f}" for x in v) + "\n")
        return out
    kv = KeyedVectors(dim)
    kv.add_vectors(words, vecs)
    binary = form.startswith("word2vec-bin")
    if form.endswith("-gz"):
        raw = out.with_name(out.name + ".raw")
        kv.save_word2vec_format(str(raw), binary=binary)
        with open(raw, "rb") as src, gzip.open(out, "wb") as dst:
            dst.write(src.read())
        raw.unlink()
    else:
        kv.save_word2vec_format(str(out), binary=binary)
    return out


def save_fasttext_bin(out: Path, dim: int = 300, seed: int = 0) -> Path:
    """A Facebook-format fastText ``.bin`` (word and subword vectors) trained with gensim."""
    from gensim.models import FastText
    from gensim.models.fasttext import save_facebook_model

    rng = np.random.default_rng(seed)
    sentences = []
    for _, _, ws in TINY_CLASSES.values():
        for _ in range(20):
            sentences.append(list(rng.choice(ws, 4)) + list(rng.choice(FILLER, 2)))
    model = FastText(sentences=sentences, vector_size=dim, window=3, min_count=1, epochs=5, seed=seed,
                     workers=1, bucket=2000, min_n=3, max_n=5)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_facebook_model(model, str(out))
    return out
