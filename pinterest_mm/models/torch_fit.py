"""Training loop shared by the lab's small torch classifiers trained from scratch
(``lstm-cnn``, ``cnn-scratch``): AdamW, a seeded shuffle, early stopping on validation accuracy."""

from __future__ import annotations

from typing import Callable

import numpy as np


def predict_softmax(net, X: np.ndarray, n_classes: int, batch: int = 256) -> np.ndarray:
    """Class probabilities of ``net`` on ``X`` (n, ...), in batches: (n, n_classes) float32."""
    import torch

    net.eval()
    out = [np.zeros((0, n_classes), np.float32)]
    with torch.inference_mode():
        for s in range(0, len(X), batch):
            out.append(torch.softmax(net(torch.from_numpy(X[s : s + batch])), dim=-1).numpy())
    return np.concatenate(out).astype(np.float32)


def fit_early_stopping(net, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, *,
                       n_classes: int, lr: float, weight_decay: float, epochs: int, batch_size: int,
                       patience: int, seed: int, augment: Callable | None = None,
                       min_batch: int = 1) -> tuple[int, list[float]]:
    """Train ``net`` in place and leave it holding its best validation epoch's weights.

    Args:
        X_train: (n, ...) inputs; y_train: (n,) class indices. X_val, y_val: the same for validation.
        augment: ``augment(batch, generator) -> batch`` applied to each training batch (tensors).
        min_batch: Batches smaller than this are skipped (batch norm needs two samples).

    Returns:
        (best epoch, 0-based; validation accuracy after each epoch run). Training stops after
        ``patience`` epochs without a better validation accuracy.
    """
    import torch

    y = torch.as_tensor(y_train, dtype=torch.long)
    Xt = torch.from_numpy(X_train)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    best_acc, best_epoch, best_state, history = -1.0, -1, None, []
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(y), generator=gen)
        for s in range(0, len(y), batch_size):
            idx = order[s : s + batch_size]
            if len(idx) < min_batch:
                continue
            xb = augment(Xt[idx], gen) if augment is not None else Xt[idx]
            loss = torch.nn.functional.cross_entropy(net(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        val = predict_softmax(net, X_val, n_classes)
        acc = float((val.argmax(1) == y_val).mean()) if len(val) else 0.0
        history.append(acc)
        if acc > best_acc:
            best_acc, best_epoch = acc, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    return best_epoch, history
