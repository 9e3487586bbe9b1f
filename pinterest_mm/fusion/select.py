"""Which models a late fusion combines, and how its settings are picked on validation.

Models are ranked by validation accuracy recomputed from their cached probabilities (ties:
name); :class:`SelectConfig` keeps the best ``n_<family>`` or an explicit list;
:func:`lambda_pair` is the one rule for lambda fusion's default (image, text) pair. Settings
grids are scored with :func:`grid_row` and picked with :func:`pick_on_val` (validation only).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import metrics
from ..outputs import FAMILIES, Outputs
from .chance import chance_level


@dataclass(frozen=True)
class SelectConfig:
    """Which models to fuse: an explicit list, or the best ``n_<family>`` by val accuracy.

    Attributes:
        models: Explicit model names (overrides the rule).
        n_image, n_word_embedding, n_transformer, n_other: How many of each family to keep,
            best validation accuracy first; -1 keeps all (thesis: 2, 2, all).
        exclude_chance: Leave chance-level models out of the rule (:mod:`.chance`); an
            explicit ``models`` list is kept as given.
    """

    models: tuple[str, ...] | None = None
    n_image: int = 2
    n_word_embedding: int = 2
    n_transformer: int = -1
    n_other: int = 0
    exclude_chance: bool = True


def val_accuracy(outputs: Outputs, model: str) -> float:
    """Validation accuracy of one model, from its cached probabilities (remembered per array,
    :func:`pinterest_mm.metrics.remembered_accuracy`)."""
    return metrics.remembered_accuracy(outputs.probs[model]["val"], outputs.y["val"])


def usable_models(outputs: Outputs, family: str | None = None, modality: str | None = None) -> list[str]:
    """Models with val and test probabilities, best validation accuracy first (ties: name)."""
    names = [
        m for m in outputs.model_names(family, modality)
        if "val" in outputs.probs.get(m, {}) and "test" in outputs.probs.get(m, {})
    ]
    return rank_by_val(outputs, names)


def rank_by_val(outputs: Outputs, names) -> list[str]:
    """``names`` sorted best validation accuracy first (ties: name)."""
    return sorted(names, key=lambda m: (-val_accuracy(outputs, m), m))


def select_models(outputs: Outputs, cfg: SelectConfig = SelectConfig()) -> list[str]:
    """Apply a :class:`SelectConfig`; raises ValueError when nothing is selected."""
    if cfg.models:
        unknown = [m for m in cfg.models if m not in outputs.models]
        if unknown:
            raise ValueError(f"Unknown models {unknown}; known: {sorted(outputs.models)}")
        return list(cfg.models)
    chosen: list[str] = []
    drop = chance_level(outputs, usable_models(outputs)) if cfg.exclude_chance else {}
    for fam in FAMILIES:
        k = getattr(cfg, f"n_{fam}")
        ranked = [m for m in usable_models(outputs, fam) if m not in drop]
        chosen += ranked if k < 0 else ranked[:k]
    if not chosen and drop:  # every candidate is at chance: keep them rather than fuse nothing
        return select_models(outputs, replace(cfg, exclude_chance=False))
    if not chosen:
        raise ValueError("No model selected: build models first or pass models=[...].")
    return chosen


def pick_on_val(grid: list[dict]) -> int:
    """Index of the best validation accuracy (first on ties: grid order is the preference)."""
    accs = [g["val_accuracy"] for g in grid]
    return int(np.argmax(accs))


def grid_row(setting: dict, pv: np.ndarray, pt: np.ndarray, outputs: Outputs) -> dict:
    """One grid row: the setting and the val and test accuracies of its fused (n, C) probabilities."""
    return {
        "setting": setting,
        "val_accuracy": metrics.accuracy(pv, outputs.y["val"]),
        "test_accuracy": metrics.accuracy(pt, outputs.y["test"]),
    }


LAMBDA_PAIR_RULE = ("lambda pair: the best image model x the best text model ({family}), "
                    "each by validation accuracy (ties: name)")


def lambda_pair(outputs: Outputs, text_family: str | None = None) -> tuple[str, str]:
    """The (image, text) pair lambda fusion uses by default: the one rule (``LAMBDA_PAIR_RULE``).

    Args:
        text_family: ``word_embedding``, ``transformer`` or None (any text model).
    """
    img = first_model(usable_models(outputs, "image"), "image")
    if text_family:
        txt = first_model(usable_models(outputs, text_family), text_family)
    else:
        txt = first_model(usable_models(outputs, modality="text"), "text")
    return img, txt


def first_model(names: list[str], what: str) -> str:
    """The first of ``names``; ValueError naming ``what`` when there is none."""
    if not names:
        raise ValueError(f"No {what} model with val and test probabilities is built.")
    return names[0]


def thesis_selection(outputs: Outputs) -> list[str]:
    """The thesis's model selection (best 2 image, best 2 word-embedding, every transformer),
    or every usable model, best first, when that rule selects none (e.g. only TF-IDF built)."""
    try:
        return select_models(outputs, SelectConfig())
    except ValueError:
        return usable_models(outputs)
