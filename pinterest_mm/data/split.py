"""Seeded class draw and stratified splits (thesis 2.4.1 and 3.2.3)."""

from __future__ import annotations

import numpy as np

MIN_PINS_FOR_SPLIT = 4  # one test, one validation and two train pins (for 2-fold CV at least)


def draw_per_class(labels: np.ndarray, max_per_class: int, seed: int) -> np.ndarray:
    """Return the sorted indices of at most ``max_per_class`` pins per label, drawn at random.

    Args:
        labels: Shape (n,), any hashable label values.
        max_per_class: Cap per label (thesis: 1,000).
        seed: Seed of the draw.
    """
    rng = np.random.default_rng(seed)
    keep = []
    for value in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == value)
        if len(idx) > max_per_class:
            idx = rng.choice(idx, size=max_per_class, replace=False)
        keep.append(idx)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def stratified_split(
    labels: np.ndarray, test_size: float = 0.10, val_size: float = 0.20, seed: int = 0
) -> np.ndarray:
    """Assign each pin to ``train``, ``val`` or ``test``, stratified by label.

    Per class: ``round(n * test_size)`` test pins (at least 1), then ``round(rest *
    val_size)`` validation pins (at least 1), the rest train, drawn with a seeded
    permutation. Per-class rounding keeps every class in every split, which a global
    stratified split does not guarantee for small classes.

    Args:
        labels: Shape (n,), integer labels.
        test_size: Share held out for test (thesis: 0.10).
        val_size: Share of the remaining pins for validation (thesis: 0.20).
        seed: Seed of the permutation.

    Returns:
        Shape (n,), array of split names.

    Raises:
        ValueError: A class has fewer than :data:`MIN_PINS_FOR_SPLIT` pins.
    """
    if not (0 < test_size < 1 and 0 < val_size < 1):
        raise ValueError("test_size and val_size must lie strictly between 0 and 1.")
    rng = np.random.default_rng(seed)
    out = np.empty(len(labels), dtype=object)
    for value in np.unique(labels):
        idx = np.flatnonzero(labels == value)
        n = len(idx)
        if n < MIN_PINS_FOR_SPLIT:
            raise ValueError(f"class {value!r} has {n} pins; a stratified split needs {MIN_PINS_FOR_SPLIT}")
        idx = rng.permutation(idx)
        n_test = max(1, int(round(n * test_size)))
        n_val = max(1, int(round((n - n_test) * val_size)))
        if n - n_test - n_val < 2:
            n_val = max(1, n - n_test - 2)
        out[idx[:n_test]] = "test"
        out[idx[n_test : n_test + n_val]] = "val"
        out[idx[n_test + n_val :]] = "train"
    return out
