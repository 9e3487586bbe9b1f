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


def _predict(net, X: np.ndarray, batch: int = 256) -> np.ndarray:
    import torch

    net.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(X), batch):
            out.append(torch.softmax(net(torch.from_numpy(X[s : s + batch])), dim=-1).numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, net[-1].out_features), np.float32)


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
        y = torch.as_tensor(ctx.labels["train"], dtype=torch.long)
        torch.manual_seed(cfg.seed)
        net = _net(ctx.n_classes, cfg)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        gen = torch.Generator().manual_seed(cfg.seed)
        Xt = torch.from_numpy(X["train"])
        best_acc, best_epoch, best_state, history = -1.0, -1, None, []
        for epoch in range(cfg.epochs):
            net.train()
            order = torch.randperm(len(y), generator=gen)
            for s in range(0, len(y), cfg.batch_size):
                idx = order[s : s + cfg.batch_size]
                if len(idx) < 2:  # batch norm needs two images
                    continue
                xb = Xt[idx]
                flip = torch.rand(len(idx), generator=gen) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
                loss = torch.nn.functional.cross_entropy(net(xb), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            val = _predict(net, X["val"])
            acc = float((val.argmax(1) == ctx.labels["val"]).mean()) if len(val) else 0.0
            history.append(acc)
            if acc > best_acc:
                best_acc, best_epoch = acc, epoch
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            elif epoch - best_epoch >= cfg.patience:
                break
        net.load_state_dict(best_state)
        save_model(net, str(ctx.checkpoints / WEIGHTS))
        (ctx.checkpoints / "predictor.json").write_text(json.dumps({"n_classes": ctx.n_classes}))
        probs = {s: _predict(net, X[s]) for s in ("val", "test")}
        params = {**asdict(self.cfg), "best_epoch": best_epoch + 1, "epochs_run": len(history),
                  "epoch_val_accuracy": history, "n_train": int(len(y))}
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

                return _predict(net, to_array([upright(im) for im in images], size))

        return _Predictor()
