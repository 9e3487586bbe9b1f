"""``lstm-cnn``: seed 004's recurrent text model, trained from scratch on the train split.

004 feeds the description's padded word-index sequence (a Keras ``Tokenizer`` of 2,000 words,
length 100) through an embedding layer (32-d) and an LSTM, and concatenates that branch with a
CNN branch before the output layer. 004's CNN branch reads 64 px grayscale pixels; the lab's
models vote on one modality each (a pin without an image still gets text votes), so here the
CNN branch is a 1-d convolution over the same word vectors:

    words -> ids (train vocabulary, 0 = padding, 1 = unknown) -> Embedding (n, L, e)
      -> LSTM (n, L, h), mean over the words      -> (n, h)
      -> Conv1d k=3 (n, h, L), ReLU, max over words -> (n, h)
    concat (n, 2h) -> dropout -> Linear -> softmax over the C classes

Trained with AdamW on the train split, early stopping on validation accuracy (the best epoch's
weights are kept). Weights are saved with safetensors and the vocabulary as JSON (no pickle).
Everything is seeded. Train probabilities are in-sample, so none are stored (as for
``cnn-scratch``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .base import BuildContext, configure_torch_threads
from .torch_fit import fit_early_stopping, predict_softmax

WEIGHTS = "lstm-cnn.safetensors"
VOCAB = "lstm-cnn-vocab.json"
PAD, UNK = 0, 1


@dataclass(frozen=True)
class LstmCnnConfig:
    """Settings of ``lstm-cnn``.

    Attributes:
        vocab_size: Most frequent train words kept (004: 2,000); others map to "unknown".
        max_len: Words per description (longer ones are cut, shorter padded).
        embed_dim: Word vector size (004: 32).
        hidden: LSTM units and conv filters.
        dropout: Dropout before the output layer.
        epochs: Most training epochs.
        patience: Stop after this many epochs without a better validation accuracy.
        batch_size: Descriptions per step.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        seed: Seed of the weights, batch order and dropout.
    """

    vocab_size: int = 2000
    max_len: int = 64
    embed_dim: int = 32
    hidden: int = 64
    dropout: float = 0.3
    epochs: int = 30
    patience: int = 5
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0


def build_vocab(texts: list[str], size: int) -> list[str]:
    """The ``size`` most frequent words of ``texts`` (ties: alphabetical), most frequent first."""
    counts = Counter(w for t in texts for w in t.split())
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]


def encode(texts: list[str], vocab: list[str], max_len: int) -> np.ndarray:
    """Word ids of each text, shape (n, max_len), int64 (ids 2.. = vocab order, 1 unknown, 0 padding)."""
    index = {w: i + 2 for i, w in enumerate(vocab)}
    out = np.zeros((len(texts), max_len), dtype=np.int64)
    for r, t in enumerate(texts):
        ids = [index.get(w, UNK) for w in t.split()][:max_len]
        out[r, : len(ids)] = ids
    return out


def _net(n_words: int, n_classes: int, cfg: LstmCnnConfig):
    import torch
    from torch import nn

    class LstmCnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(n_words, cfg.embed_dim, padding_idx=PAD)
            self.lstm = nn.LSTM(cfg.embed_dim, cfg.hidden, batch_first=True)
            self.conv = nn.Conv1d(cfg.embed_dim, cfg.hidden, 3, padding=1)
            self.drop = nn.Dropout(cfg.dropout)
            self.out = nn.Linear(2 * cfg.hidden, n_classes)

        def forward(self, ids):
            mask = (ids != PAD).unsqueeze(-1).float()  # (n, L, 1)
            n_words = mask.sum(1).clamp_min(1.0)
            e = self.embed(ids)  # (n, L, e)
            seq, _ = self.lstm(e)  # (n, L, h)
            lstm = (seq * mask).sum(1) / n_words
            conv = torch.relu(self.conv(e.transpose(1, 2))).transpose(1, 2)  # (n, L, h)
            conv = conv.masked_fill(mask == 0, 0.0).max(1).values  # ReLU >= 0: padding never wins
            return self.out(self.drop(torch.cat([lstm, conv], 1)))

    return LstmCnn()



class LstmCnnClassifier:
    """The ``lstm-cnn`` registry entry (kind ``classifier``, text)."""

    def __init__(self, spec, **options) -> None:
        self.spec = spec
        self.cfg = LstmCnnConfig(**{k: v for k, v in options.items() if k in LstmCnnConfig.__dataclass_fields__})

    def config(self) -> dict:
        """Settings that decide the outputs (part of the fingerprint)."""
        return {"backend": "lstm-cnn", "text": "text_words", **asdict(self.cfg)}

    def fit(self, ctx: BuildContext) -> dict:
        """Train with early stopping on validation; save weights + vocabulary; return val/test probs."""
        import torch
        from safetensors.torch import save_model

        configure_torch_threads()
        cfg = self.cfg
        texts = {s: ctx.split_texts(s, "text_words") for s in ("train", "val", "test")}
        vocab = build_vocab(texts["train"], cfg.vocab_size)
        X = {s: encode(t, vocab, cfg.max_len) for s, t in texts.items()}
        torch.manual_seed(cfg.seed)
        net = _net(len(vocab) + 2, ctx.n_classes, cfg)
        best_epoch, history = fit_early_stopping(
            net, X["train"], ctx.labels["train"], X["val"], ctx.labels["val"], n_classes=ctx.n_classes,
            lr=cfg.lr, weight_decay=cfg.weight_decay, epochs=cfg.epochs, batch_size=cfg.batch_size,
            patience=cfg.patience, seed=cfg.seed)
        save_model(net, str(ctx.checkpoints / WEIGHTS))
        (ctx.checkpoints / VOCAB).write_text(json.dumps({"n_classes": ctx.n_classes, "words": vocab}))
        probs = {s: predict_softmax(net, X[s], ctx.n_classes) for s in ("val", "test")}
        unknown = float((X["val"] == UNK).sum() / max((X["val"] != PAD).sum(), 1))
        params = {**asdict(cfg), "best_epoch": best_epoch + 1, "epochs_run": len(history),
                  "epoch_val_accuracy": history, "n_train": int(len(X["train"])), "vocab_words": len(vocab),
                  "val_unknown_word_share": unknown}
        return {"probs": probs, "params": params, "cv_score": None}

    def predictor(self, folder: Path, n_classes: int):
        """Return a predictor of raw texts from the safetensors weights and JSON vocabulary in ``folder``."""
        from safetensors.torch import load_model

        from ..data.clean import clean_words
        from .checkpoints import CheckpointError

        try:
            vocab = json.loads((folder / VOCAB).read_text())["words"]
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointError(f"lstm-cnn's vocabulary in {folder} cannot be read ({exc}); rebuild it with "
                                  f"`pinterest-mm build {folder.parent.name} --models lstm-cnn`.") from None
        net = _net(len(vocab) + 2, n_classes, self.cfg)
        load_model(net, str(folder / WEIGHTS), device="cpu")
        net.eval()
        cfg, name = self.cfg, self.spec.name

        class _Predictor:
            def predict_proba(self, images=None, texts=None) -> np.ndarray:
                if texts is None:
                    raise ValueError(f"{name} is a text model: pass texts=")
                ids = encode([" ".join(clean_words(t)) for t in texts], vocab, cfg.max_len)
                return predict_softmax(net, ids, n_classes)

        return _Predictor()
