"""The probability cache as arrays: what fusion, metrics and pages compute from.

:func:`load_outputs` reads every built model's probability vectors of one dataset from the
store once; everything downstream slices these arrays and never touches DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .config import FAMILIES, SPLITS
from .store import Store

__all__ = ["FAMILIES", "SPLITS", "ModelInfo", "Outputs", "load_outputs"]


@dataclass(frozen=True)
class ModelInfo:
    """One built model's summary.

    Attributes:
        name: Registry name.
        family: One of ``image``, ``word_embedding``, ``transformer``, ``other``.
        modality: ``image`` or ``text``.
        val_accuracy: Accuracy on the validation split.
        test_accuracy: Accuracy on the test split.
        params: Chosen hyperparameters and build details.
        cv_score: Mean cross-validation accuracy of the chosen setting (None if not CV'd).
        seconds: Build time.
    """

    name: str
    family: str
    modality: str
    val_accuracy: float
    test_accuracy: float
    params: dict = field(default_factory=dict)
    cv_score: float | None = None
    seconds: float = 0.0


@dataclass
class Outputs:
    """Every model's cached outputs for one dataset.

    Attributes:
        dataset: Dataset name.
        classes: Class names, length C; index = label.
        y: Split to true labels, shape (n_split,), int.
        pin_ids: Split to pin ids, shape (n_split,), in ``split_row`` order.
        probs: Model name to split to probabilities of shape (n_split, C), float32.
            ``train`` holds out-of-fold probabilities and may be missing for a model.
        models: Model name to :class:`ModelInfo`.
        saves: (pin, user) saves of kept pins: columns pin_id, user_id, split, split_row, label.
        feature_loader: Model name to split to features (n_split, d); None when a model has
            no features (end-to-end classifiers).
        skipped: Model name to why it is left out: its stored probabilities do not fit the
            dataset's current pins and classes (see :func:`probs_mismatch`).
    """

    dataset: str
    classes: list[str]
    y: dict[str, np.ndarray]
    pin_ids: dict[str, np.ndarray]
    probs: dict[str, dict[str, np.ndarray]]
    models: dict[str, ModelInfo]
    saves: pd.DataFrame | None = None
    feature_loader: Callable[[str], dict[str, np.ndarray] | None] | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        """Number of classes C."""
        return len(self.classes)

    def model_names(self, family: str | None = None, modality: str | None = None) -> list[str]:
        """Return built model names, optionally of one family or modality."""
        return [
            m.name
            for m in self.models.values()
            if (family is None or m.family == family) and (modality is None or m.modality == modality)
        ]


def probs_mismatch(dataset: str, model: str, probs: dict[str, np.ndarray],
                   n_rows: dict[str, int], n_classes: int) -> str | None:
    """Return why a model's stored probabilities do not fit the dataset, or None when they do.

    A model saved against an earlier version of its dataset (a store written while an
    ``import --replace`` raced a build, before builds checked the version) has arrays of
    another shape than the current pins x classes; using them would mix two datasets.

    Args:
        dataset: Dataset name.
        model: Model name.
        probs: Split to the stored probabilities, shape (n_split, C_stored).
        n_rows: Split to the dataset's current number of pins.
        n_classes: The dataset's current number of classes C.

    Returns:
        A one-paragraph message naming the rebuild command, or None.
    """
    for split, arr in probs.items():
        want = (n_rows.get(split, 0), n_classes)
        if arr.ndim != 2 or tuple(arr.shape) != want:
            return (
                f"Model {model} is left out: its stored {split} probabilities are "
                f"{' x '.join(map(str, arr.shape))} but dataset {dataset!r} now has {want[0]} "
                f"{split} pins x {want[1]} classes, so it was built on an earlier version of the "
                f"dataset. Rebuild it: `pinterest-mm build {dataset} --models {model}`."
            )
    return None


def load_outputs(store: Store, dataset: str) -> Outputs:
    """Read a dataset's labels and every built model's probabilities from the store.

    The read is one consistent snapshot (:meth:`Store.snapshot`: one connection, one read
    transaction): a build or import that commits while it runs (the app reads while builds
    write) is not seen, so the result never mixes two versions of the dataset or a model.

    Args:
        store: The store.
        dataset: Dataset name.

    Returns:
        The :class:`Outputs`, with a feature loader reading the cached feature arrays.
    """
    with store.snapshot() as snap:
        return _read_outputs(snap, dataset, features_of=store.features_path)


def _read_outputs(store: Store, dataset: str, features_of: Callable[[str, str], Path]) -> Outputs:
    classes = store.classes(dataset)
    pins = store.pins(dataset)
    y, pin_ids, rows = {}, {}, {}
    for split in SPLITS:
        part = pins[pins["split"] == split].sort_values("split_row")
        y[split] = part["label"].to_numpy(np.int64)
        pin_ids[split] = part["pin_id"].to_numpy(object)
        rows[split] = part["row"].to_numpy(np.int64)
    models: dict[str, ModelInfo] = {}
    probs: dict[str, dict[str, np.ndarray]] = {}
    skipped: dict[str, str] = {}
    for rec in store.models(dataset).to_dict("records"):
        name = rec["model"]
        split_probs = {}
        for split in SPLITS:
            arr = store.load_probs(dataset, name, split)
            if arr is not None:
                split_probs[split] = arr
        why = probs_mismatch(dataset, name, split_probs, {s: len(y[s]) for s in SPLITS}, len(classes))
        if why is not None:
            skipped[name] = why
            continue
        probs[name] = split_probs
        models[name] = ModelInfo(
            name=name,
            family=rec["family"],
            modality=rec["modality"],
            val_accuracy=float(rec["val_accuracy"]),
            test_accuracy=float(rec["test_accuracy"]),
            params=rec["params"],
            cv_score=None if pd.isna(rec["cv_score"]) else float(rec["cv_score"]),
            seconds=float(rec["seconds"]),
        )

    def feature_loader(model: str) -> dict[str, np.ndarray] | None:
        path = features_of(dataset, model)
        if not path.exists():
            return None
        feats = np.load(path, mmap_mode="r")
        return {split: np.asarray(feats[rows[split]], dtype=np.float32) for split in SPLITS}

    return Outputs(
        dataset=dataset,
        classes=classes,
        y=y,
        pin_ids=pin_ids,
        probs=probs,
        models=models,
        saves=store.saves(dataset),
        feature_loader=feature_loader,
        skipped=skipped,
    )
