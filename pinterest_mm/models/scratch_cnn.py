"""A small CNN trained from scratch on 64 px images: what ImageNet pretraining buys.

``cnn-scratch`` has no pretrained weights: three conv blocks (conv 3x3, batch norm, ReLU,
max-pool), global average pooling, dropout and a linear layer, trained on the dataset's train
split with AdamW and random horizontal flips. Training stops early when the validation accuracy
has not improved for ``patience`` epochs; the best epoch's weights are kept (safetensors) and
give the validation and test probabilities. Everything is seeded (weights, batch order, flips,
dropout), so the same build gives the same probabilities. Train probabilities are in-sample,
so none are stored (as for the fine-tuned transformers).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .base import BuildContext, configure_torch_threads
from .torch_fit import fit_early_stopping, predict_softmax

WEIGHTS = "cnn.safetensors"


@dataclass(frozen=True)
class CnnConfig:
    """Settings of the from-scratch CNN.

    Attributes:
        image_size: Side of the square input, pixels.
        channels: Output channels of the three conv blocks.
        epochs: Most training epochs.
        patience: Stop after this many epochs without a better validation accuracy.
        batch_size: Images per step.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        dropout: Dropout before the linear layer.
        seed: Seed of the weights, batch order, flips and dropout.
    """

    image_size: int = 64
    channels: tuple[int, int, int] = (16, 32, 64)
    epochs: int = 30
    patience: int = 5
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    dropout: float = 0.2
    seed: int = 0


def _net(n_classes: int, cfg: CnnConfig):
    import torch.nn as nn

    layers, c_in = [], 3
    for c in cfg.channels:
        layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
        c_in = c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(cfg.dropout),
                         nn.Linear(c_in, n_classes))


def to_array(images, size: int) -> np.ndarray:
    """Resize upright RGB PIL images to (n, 3, size, size) float32 in [-1, 1]."""
    from ..data.clean import to_rgb

    out = np.zeros((len(images), 3, size, size), dtype=np.float32)
    for i, img in enumerate(images):
        arr = np.asarray(to_rgb(img).resize((size, size), Image.BILINEAR), dtype=np.float32)
        out[i] = arr.transpose(2, 0, 1) / 127.5 - 1.0
    return out


def load_images(paths, size: int) -> np.ndarray:
    """Open image files as the importer checked them (upright, RGB); shape (n, 3, size, size)."""
    from ..data.clean import upright

    imgs = []
    for p in paths:
        with Image.open(p) as im:  # decoded in full, as the predictor's images are
            imgs.append(upright(im).copy())
    return to_array(imgs, size)


def _random_flip(batch, gen):
    """Flip each image of a (b, 3, H, W) tensor batch left-right with probability 1/2."""
    import torch

    flip = torch.rand(len(batch), generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], batch.flip(-1), batch)


class ScratchCnnClassifier:
    """The ``cnn-scratch`` registry entry (kind ``classifier``, family ``image``)."""

    def __init__(self, spec, **options) -> None:
        self.spec = spec
        fields = CnnConfig.__dataclass_fields__
        opts = {k: (tuple(v) if k == "channels" else v) for k, v in options.items() if k in fields}
        self.cfg = CnnConfig(**opts)

    def config(self) -> dict:
        """Settings that decide the outputs (part of the fingerprint)."""
        return {"backend": "scratch-cnn", **asdict(self.cfg)}

    def fit(self, ctx: BuildContext) -> dict:
        """Train with early stopping on validation; save the best weights; return val/test probs."""
        import torch
        from safetensors.torch import save_model

        configure_torch_threads()
        cfg = self.cfg
        paths = ctx.pins["image"].to_numpy()
        X = {s: load_images(paths[ctx.rows[s]], cfg.image_size) for s in ("train", "val", "test")}
        torch.manual_seed(cfg.seed)
        net = _net(ctx.n_classes, cfg)
        best_epoch, history = fit_early_stopping(
            net, X["train"], ctx.labels["train"], X["val"], ctx.labels["val"], n_classes=ctx.n_classes,
            lr=cfg.lr, weight_decay=cfg.weight_decay, epochs=cfg.epochs, batch_size=cfg.batch_size,
            patience=cfg.patience, seed=cfg.seed, augment=_random_flip, min_batch=2)  # batch norm: 2 images
        save_model(net, str(ctx.checkpoints / WEIGHTS))
        (ctx.checkpoints / "predictor.json").write_text(json.dumps({"n_classes": ctx.n_classes}))
        probs = {s: predict_softmax(net, X[s], ctx.n_classes) for s in ("val", "test")}
        params = {**asdict(self.cfg), "best_epoch": best_epoch + 1, "epochs_run": len(history),
                  "epoch_val_accuracy": history, "n_train": int(len(X["train"]))}
        return {"probs": probs, "params": params, "cv_score": None}

    def predictor(self, folder: Path, n_classes: int):
        """Return a predictor of PIL images from the safetensors checkpoint in ``folder``."""
        from safetensors.torch import load_model

        net = _net(n_classes, self.cfg)
        load_model(net, str(folder / WEIGHTS), device="cpu")
        net.eval()
        size, name = self.cfg.image_size, self.spec.name

        class _Predictor:
            def predict_proba(self, images=None, texts=None) -> np.ndarray:
                if images is None:
                    raise ValueError(f"{name} is an image model: pass images=")
                from ..data.clean import upright

                return predict_softmax(net, to_array([upright(im) for im in images], size), n_classes)

        return _Predictor()
