"""Learned fusion trained with torch: gated fusion (after 003, a learned per-pin image/text
weight) and concat-/attention-MLP early fusion on cached features (after 002). The epoch is
chosen on validation; torch is imported when a method is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..outputs import SPLITS, Outputs
from .select import usable_models
from .learned import best_feature_model, first_usable, model_features
from .registry import FusionResult, finish, register


# ----------------------------------------------------------------------------- torch helpers
@dataclass(frozen=True)
class NetConfig:
    """Shared training settings of the small torch networks.

    Attributes:
        image_model, text_model: The pair; None = best on validation (with what is needed).
        hidden: Hidden width.
        dropout: Dropout rate (MLPs).
        pca_dim: PCA the features to this many dims (fit on train) first; 0 = off (MLPs).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        batch_size: Mini-batch size.
        max_epochs: Epoch cap.
        patience: Early stopping patience on validation log-loss.
        seed: Torch and numpy seed.
        torch_threads: Torch intra-op threads while training (1: these nets are tiny, and
            extra threads spinning on a busy 2-core machine made an epoch ~100x slower).
    """

    image_model: str | None = None
    text_model: str | None = None
    hidden: int = 64
    dropout: float = 0.2
    pca_dim: int = 0
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 128
    max_epochs: int = 100
    patience: int = 8
    seed: int = 0
    torch_threads: int = 1


def _train(net, inputs: dict, y: dict, cfg: NetConfig, loss_on_probs: bool) -> tuple[dict, int]:
    """Adam + early stopping on validation log-loss; returns eval outputs per split, best epoch.

    ``inputs[split]`` is a tuple of float32 arrays fed to ``net``; the net returns
    (log-probabilities or probabilities, extra) and ``loss_on_probs`` says which.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.torch_threads)
    try:
        return _train_loop(torch, net, inputs, y, cfg, loss_on_probs)
    finally:
        torch.set_num_threads(threads)


def _tensor(torch, a, dtype):
    """A tensor over ``a`` as ``dtype``; a read-only array (a memory-mapped feature file, the
    store's labels) is copied, as torch may not share memory it cannot write."""
    a = np.ascontiguousarray(a, dtype)
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def _train_loop(torch, net, inputs: dict, y: dict, cfg: NetConfig, loss_on_probs: bool) -> tuple[dict, int]:
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    T = {s: tuple(_tensor(torch, a, np.float32) for a in v) for s, v in inputs.items()}
    yt, yv = _tensor(torch, y["train"], np.int64), _tensor(torch, y["val"], np.int64)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def nll(out, target):
        logp = torch.log(out.clamp_min(1e-7)) if loss_on_probs else out
        return torch.nn.functional.nll_loss(logp, target)

    best, best_state, best_epoch, bad = float("inf"), None, 0, 0
    n = len(yt)
    for epoch in range(cfg.max_epochs):
        net.train()
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, cfg.batch_size):
            idx = perm[s : s + cfg.batch_size]
            if len(idx) < 2:
                continue
            opt.zero_grad()
            out, _ = net(*(a[idx] for a in T["train"]))
            nll(out, yt[idx]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            loss = float(nll(net(*T["val"])[0], yv))
        if loss < best - 1e-5:
            best, best_epoch, bad = loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    res = {}
    with torch.no_grad():
        for s in ("val", "test"):
            out, extra = net(*T[s])
            p = out if loss_on_probs else out.exp()
            res[s] = (p.numpy().astype(np.float32), None if extra is None else extra.numpy().ravel())
    return res, best_epoch


# ----------------------------------------------------------------------------- gated
@dataclass(frozen=True)
class GatedConfig(NetConfig):
    """Gated fusion after 003: p = (1 - w) t + w v, w = sigmoid(Dense(BN(LeakyReLU(Dense(
    BN(concat(t, v))))))), a per-pin image weight.

    Attributes:
        gate_input: ``probs`` (gate sees the two probability vectors) or ``features``
            (gate sees the two models' features; t, v stay probability vectors).

    Trained on the models' out-of-fold ``train`` probabilities; models without them are
    not eligible (defaults pick the best models that have them).
    """

    gate_input: str = "probs"


def _gated_net(d_in: int, hidden: int):
    import torch
    from torch import nn

    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.BatchNorm1d(d_in), nn.Linear(d_in, hidden), nn.LeakyReLU(0.2),
                nn.BatchNorm1d(hidden), nn.Linear(hidden, 1),
            )

        def forward(self, t, v, gt, gv):
            w = torch.sigmoid(self.net(torch.cat([gt, gv], 1)))
            return (1 - w) * t + w * v, w

    return Gate()


@register("gated", GatedConfig, "Gated fusion: learned per-pin image/text weight (003)", "learned")
def fit_gated(outputs: Outputs, cfg: GatedConfig) -> FusionResult:
    """Gated fusion of one (image, text) pair of probability vectors."""
    if cfg.gate_input not in ("probs", "features"):
        raise ValueError("gate_input must be 'probs' or 'features'")
    ok = lambda ms: [m for m in ms if "train" in outputs.probs[m]]  # noqa: E731
    if cfg.gate_input == "features":
        img = cfg.image_model or best_feature_model(outputs, "image", need_train=True)
        txt = cfg.text_model or best_feature_model(outputs, None, "text", need_train=True)
    else:
        img = cfg.image_model or first_usable(ok(usable_models(outputs, "image")), "image")
        txt = cfg.text_model or first_usable(ok(usable_models(outputs, modality="text")), "text")
    for m in (img, txt):
        if "train" not in outputs.probs[m]:
            raise ValueError(f"Gated fusion needs out-of-fold train probabilities; {m!r} has none.")
    P = {m: outputs.probs[m] for m in (img, txt)}
    if cfg.gate_input == "features":
        G = {m: model_features(outputs, m) for m in (img, txt)}
    else:
        G = P
    inputs = {s: (P[txt][s], P[img][s], G[txt][s], G[img][s]) for s in SPLITS}
    d_in = G[txt]["train"].shape[1] + G[img]["train"].shape[1]
    import torch

    torch.manual_seed(cfg.seed)
    net = _gated_net(d_in, cfg.hidden)
    res, epoch = _train(net, inputs, outputs.y, cfg, loss_on_probs=True)
    chosen = {"image_model": img, "text_model": txt, "best_epoch": epoch,
              "mean_image_weight_test": float(np.mean(res["test"][1]))}
    return finish(outputs, "gated", cfg, chosen, res["val"][0], res["test"][0], per_pin_weight=res["test"][1])


# ----------------------------------------------------------------------------- early-fusion MLPs
def pca_reduce(feats: dict[str, np.ndarray], dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Project every split onto the first ``dim`` principal components of the TRAIN split.

    Args:
        feats: Split to features, shape (n_split, d).
        dim: Components kept (capped at d and at the number of train pins).
        seed: PCA random state (used by the randomized solver on large inputs).

    Returns:
        Split to reduced features, shape (n_split, min(dim, d, n_train)), float32.
    """
    from sklearn.decomposition import PCA

    if dim < 1:
        raise ValueError(f"pca_dim must be 1 or more (0 turns PCA off), not {dim}.")
    train = feats["train"]
    pca = PCA(min(dim, train.shape[1], train.shape[0]), random_state=seed).fit(train)
    return {s: pca.transform(f).astype(np.float32) for s, f in feats.items()}


def _pair_features(outputs: Outputs, cfg: NetConfig) -> tuple[str, str, dict, dict]:
    img = cfg.image_model or best_feature_model(outputs, "image")
    txt = cfg.text_model or best_feature_model(outputs, None, "text")
    fa, fb = model_features(outputs, img), model_features(outputs, txt)
    if cfg.pca_dim:
        fa, fb = pca_reduce(fa, cfg.pca_dim, cfg.seed), pca_reduce(fb, cfg.pca_dim, cfg.seed)
    # Standardize with train statistics.
    def scale(f):
        mu, sd = f["train"].mean(0), f["train"].std(0) + 1e-6
        return {s: ((f[s] - mu) / sd).astype(np.float32) for s in f}

    return img, txt, scale(fa), scale(fb)


@dataclass(frozen=True)
class ConcatMLPConfig(NetConfig):
    """Early fusion after 002: concat(image features, text features) -> MLP -> classes
    (PCA of each modality to ``pca_dim`` first, as 002 does; 0 turns it off)."""

    pca_dim: int = 128


@register("concat_mlp", ConcatMLPConfig, "Early fusion: concatenated features -> MLP (002)", "learned")
def fit_concat_mlp(outputs: Outputs, cfg: ConcatMLPConfig) -> FusionResult:
    """Concatenation + MLP."""
    from torch import nn
    import torch

    img, txt, fa, fb = _pair_features(outputs, cfg)
    C = outputs.n_classes

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            d = fa["train"].shape[1] + fb["train"].shape[1]
            self.mlp = nn.Sequential(nn.Linear(d, cfg.hidden), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, C))

        def forward(self, a, b):
            return torch.log_softmax(self.mlp(torch.cat([a, b], 1)), 1), None

    torch.manual_seed(cfg.seed)
    res, epoch = _train(Net(), {s: (fa[s], fb[s]) for s in fa}, outputs.y, cfg, loss_on_probs=False)
    chosen = {"image_model": img, "text_model": txt, "best_epoch": epoch}
    return finish(outputs, "concat_mlp", cfg, chosen, res["val"][0], res["test"][0])


@dataclass(frozen=True)
class AttentionMLPConfig(NetConfig):
    """Early fusion after 002: project each modality to ``hidden``, attend over the two
    modality tokens (score = u^T tanh(W h)), weighted sum -> MLP -> classes. The per-pin
    attention weight of the image token is returned as ``per_pin_weight``."""

    pca_dim: int = 128


@register("attention_mlp", AttentionMLPConfig, "Early fusion: modality attention -> MLP (002)", "learned")
def fit_attention_mlp(outputs: Outputs, cfg: AttentionMLPConfig) -> FusionResult:
    """Attention + MLP."""
    from torch import nn
    import torch

    img, txt, fa, fb = _pair_features(outputs, cfg)
    C, h = outputs.n_classes, cfg.hidden

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.pa = nn.Linear(fa["train"].shape[1], h)
            self.pb = nn.Linear(fb["train"].shape[1], h)
            self.score = nn.Sequential(nn.Linear(h, h), nn.Tanh(), nn.Linear(h, 1, bias=False))
            self.mlp = nn.Sequential(nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, C))

        def forward(self, a, b):
            H = torch.stack([self.pa(a), self.pb(b)], 1)  # (n, 2, h)
            alpha = torch.softmax(self.score(torch.tanh(H)), 1)  # (n, 2, 1)
            z = (alpha * H).sum(1)
            return torch.log_softmax(self.mlp(z), 1), alpha[:, 0, 0]

    torch.manual_seed(cfg.seed)
    res, epoch = _train(Net(), {s: (fa[s], fb[s]) for s in fa}, outputs.y, cfg, loss_on_probs=False)
    chosen = {"image_model": img, "text_model": txt, "best_epoch": epoch,
              "mean_image_attention_test": float(np.mean(res["test"][1]))}
    return finish(outputs, "attention_mlp", cfg, chosen, res["val"][0], res["test"][0], per_pin_weight=res["test"][1])
