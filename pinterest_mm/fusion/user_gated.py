"""User-aware gated fusion (after 003, whose fusion also sees the user's previous posts).

The gate of :func:`pinterest_mm.fusion.nets.fit_gated` sees the text and image probability
vectors; here it also sees the pin's user history h (the category distribution of its savers'
TRAIN pins, :mod:`pinterest_mm.user_history`) and a flag saying whether there is one. It gives
a softmax weight to each expert: text t, image v and, when ``history_expert`` is on, the
history h itself as a prior::

    g = softmax(Dense(BN(LeakyReLU(Dense(BN(concat(t, v, h, has)))))))      (n, 3)
    p = g_t t + g_v v + g_h h                                                (n, C)

A pin without a history (a user unseen in train) has g_h forced to 0 and h = 0, so it is
fused as by a plain image/text gate. During training a share ``history_dropout`` of the pins
lose their history, so the gate also learns that case. Trained on the models' out-of-fold
``train`` probabilities, the epoch chosen on validation log-loss; no validation or test label
reaches any input (train pins' own labels are left out of their histories).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..outputs import SPLITS, Outputs
from ..user_history import user_history
from .late import usable_models
from .learned import first_usable
from .nets import NetConfig, _train
from .registry import FusionResult, finish, register


@dataclass(frozen=True)
class UserGatedConfig(NetConfig):
    """Settings of the user-aware gate (plus :class:`~.nets.NetConfig`'s training settings).

    Attributes:
        history_expert: The history is also a third expert (its weight learned per pin);
            False: it only steers the image/text weight.
        history_dropout: Share of train pins whose history is hidden in each batch (0-1).
    """

    history_expert: bool = True
    history_dropout: float = 0.2


def _user_gate_net(C: int, hidden: int, n_experts: int, dropout: float):
    import torch
    from torch import nn

    class UserGate(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.BatchNorm1d(3 * C + 1), nn.Linear(3 * C + 1, hidden), nn.LeakyReLU(0.2),
                nn.BatchNorm1d(hidden), nn.Linear(hidden, n_experts),
            )

        def forward(self, t, v, h, has):
            if self.training and dropout > 0:
                keep = (torch.rand(len(has)) >= dropout).float()[:, None]
                h, has = h * keep, has * keep
            logits = self.net(torch.cat([t, v, h, has], 1))
            experts = [t, v]
            if n_experts == 3:  # no history: the history expert gets no weight
                no_hist = torch.zeros_like(logits, dtype=torch.bool)
                no_hist[:, 2] = has[:, 0] == 0
                logits = logits.masked_fill(no_hist, -1e9)
                experts.append(h)
            g = torch.softmax(logits, 1)  # (n, n_experts)
            p = sum(g[:, k : k + 1] * e for k, e in enumerate(experts))
            return p, g

    return UserGate()


@register("user_gated", UserGatedConfig,
          "Gated fusion that also sees the user's train history (003)", "learned")
def fit_user_gated(outputs: Outputs, cfg: UserGatedConfig) -> FusionResult:
    """User-aware gated fusion of one (image, text) pair of probability vectors."""
    if not 0 <= cfg.history_dropout < 1:
        raise ValueError(f"history_dropout must be in [0, 1), not {cfg.history_dropout}.")
    if outputs.saves is None or len(outputs.saves) == 0:
        raise ValueError(f"Dataset {outputs.dataset!r} has no users (no user_id column in its manifest): "
                         "the user-aware gate has no history to see; use the plain 'gated' fusion.")
    ok = lambda ms: [m for m in ms if "train" in outputs.probs[m]]  # noqa: E731
    img = cfg.image_model or first_usable(ok(usable_models(outputs, "image")), "image")
    txt = cfg.text_model or first_usable(ok(usable_models(outputs, modality="text")), "text")
    for m in (img, txt):
        if "train" not in outputs.probs[m]:
            raise ValueError(f"The user-aware gate needs out-of-fold train probabilities; {m!r} has none.")
    hist = user_history(outputs)
    P = {m: outputs.probs[m] for m in (img, txt)}
    inputs = {s: (P[txt][s], P[img][s], hist.vectors[s], hist.has[s].astype(np.float32)[:, None]) for s in SPLITS}
    import torch

    torch.manual_seed(cfg.seed)
    n_experts = 3 if cfg.history_expert else 2
    net = _user_gate_net(outputs.n_classes, cfg.hidden, n_experts, cfg.history_dropout)
    res, epoch = _train(net, inputs, outputs.y, cfg, loss_on_probs=True)
    gates = _gates(net, inputs["test"])
    chosen = {"image_model": img, "text_model": txt, "best_epoch": epoch,
              "test_pins_with_history": float(hist.has["test"].mean()) if len(hist.has["test"]) else 0.0,
              "mean_image_weight_test": float(gates[:, 1].mean()) if len(gates) else 0.0,
              "mean_history_weight_test": float(gates[:, 2].mean()) if len(gates) and n_experts == 3 else 0.0}
    return finish(outputs, "user_gated", cfg, chosen, res["val"][0], res["test"][0], per_pin_weight=gates[:, 1])


def _gates(net, inputs: tuple) -> np.ndarray:
    """The trained gate's expert weights, shape (n, n_experts), float32."""
    import torch

    net.eval()
    with torch.no_grad():
        _, g = net(*(torch.from_numpy(np.ascontiguousarray(a, np.float32)) for a in inputs))
    return g.numpy().astype(np.float32)
