"""What every model object gets from a build, and the feature-cache files they share.

A build hands a model a :class:`BuildContext` (the dataset's pins, splits, labels and where
to write). Feature models return an array of shape (n_pins, d) in global ``row`` order;
classifiers return probabilities per split. Feature arrays are cached as
``features/<dataset>/<model>.npy`` with a ``<model>.json`` sidecar holding the feature
fingerprint and extraction statistics; a cache whose fingerprint differs is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypedDict, runtime_checkable

import numpy as np
import pandas as pd


def fingerprint_of(payload: dict) -> str:
    """Return a stable short hash of a JSON-able dict."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def pick_device(device: str | None = None) -> str:
    """Return ``device`` or ``cuda`` when a GPU is present, else ``cpu``."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def configure_torch_threads() -> int:
    """Cap torch's intra-op threads at the cores this process may use; return the count.

    torch sizes its pool from the machine's physical cores, which oversubscribes a container
    limited to fewer (e.g. 2) cores; one thread per usable core is the fastest on CPU.
    """
    import torch

    n = cpu_count()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def cpu_count() -> int:
    """Return the CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class BuildContext:
    """Everything a model needs to build on one dataset.

    Attributes:
        store: The :class:`~pinterest_mm.store.Store`.
        dataset: Dataset name.
        pins: All pins in global ``row`` order.
        n_classes: Number of classes C.
        rows: Split name to global rows of that split, in ``split_row`` order.
        labels: Split name to labels in ``split_row`` order.
        features_path: Where this model's feature array is cached.
        checkpoints: This model's checkpoint folder.
        feature_fingerprint: Identifies dataset + feature settings (cache key).
        device: Torch device string.
        progress: Show progress bars.
        seed: Seed of everything random.
        stats: Filled by the model: counts for the params (corrupt images, unknown texts).
    """

    store: object
    dataset: str
    pins: pd.DataFrame
    n_classes: int
    rows: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    features_path: Path
    checkpoints: Path
    feature_fingerprint: str
    device: str = "cpu"
    progress: bool = False
    seed: int = 0
    stats: dict = field(default_factory=dict)

    def split_texts(self, split: str, column: str) -> list[str]:
        """Return a text column of one split, in ``split_row`` order."""
        return [str(t or "") for t in self.pins[column].to_numpy()[self.rows[split]]]


# ----------------------------------------------------------------------------- the model contract
@runtime_checkable
class Predictor(Protocol):
    """Predicts new pins: what :func:`pinterest_mm.models.load_predictor` returns."""

    def predict_proba(self, images=None, texts=None) -> np.ndarray:
        """Probabilities (n, C) of n PIL ``images`` (image models) or raw ``texts``."""


@runtime_checkable
class FeatureModel(Protocol):
    """A registry entry of kind ``features``: the build turns its features into a logistic
    regression (C chosen by CV) and cached probabilities.

    The build sets ``device`` before calling anything.
    """

    def config(self) -> dict:
        """Settings that decide the features (JSON-able; part of the fingerprints)."""

    def compute_features(self, ctx: BuildContext) -> np.ndarray:
        """Features of every pin of the dataset, shape (n_pins, d), in global ``row`` order."""

    def save_state(self, folder: Path) -> None:
        """Write what :meth:`featurize` needs later (e.g. trained vectors) into ``folder``."""

    def load_state(self, folder: Path) -> None:
        """Read back what :meth:`save_state` wrote."""

    def featurize(self, images=None, texts=None) -> np.ndarray:
        """Features (n, d) of new pins: PIL ``images`` or raw ``texts``."""


class FitOutput(TypedDict):
    """What a classifier's ``fit`` returns.

    Attributes:
        probs: Split to probabilities (n_split, C): out-of-fold on train, predicted on val/test.
        params: Chosen hyperparameters and build details (JSON-able).
        cv_score: Validation-side score of the chosen setting.
    """

    probs: dict[str, np.ndarray]
    params: dict
    cv_score: float


@runtime_checkable
class Classifier(Protocol):
    """A registry entry of kind ``classifier``: trains end to end and gives its own
    probabilities (TF-IDF + LR, fine-tuned transformers).

    The build sets ``device`` before calling anything.
    """

    def config(self) -> dict:
        """Settings that decide the outputs (JSON-able; part of the fingerprint)."""

    def fit(self, ctx: BuildContext) -> FitOutput:
        """Train on ``ctx`` (settings chosen on train/val only) and save a checkpoint in
        ``ctx.checkpoints``."""

    def predictor(self, folder: Path, n_classes: int) -> Predictor:
        """A predictor loaded from the checkpoint folder."""


_CONTRACTS = {
    "features": (FeatureModel, ("config", "compute_features", "save_state", "load_state", "featurize")),
    "classifier": (Classifier, ("config", "fit", "predictor")),
}


def check_contract(model: object, kind: str, name: str) -> FeatureModel | Classifier:
    """Return ``model`` when it has every method of its kind's protocol.

    Raises:
        TypeError: Naming the missing methods (a registry entry that does not fit the build).
    """
    proto, methods = _CONTRACTS[kind]
    missing = [m for m in methods if not callable(getattr(model, m, None))]
    if missing:
        raise TypeError(f"Model {name!r} of kind {kind!r} lacks {', '.join(missing)}: see "
                        f"pinterest_mm.models.base.{proto.__name__}.")
    return model


def sidecar_path(features_path: Path) -> Path:
    """Return the JSON sidecar of a feature array."""
    return features_path.with_suffix(".json")


def load_cached_features(features_path: Path, fingerprint: str) -> tuple[np.ndarray, dict] | None:
    """Return (features memory-mapped, stats) if the cache matches ``fingerprint``, else None."""
    side = sidecar_path(features_path)
    if not (features_path.exists() and side.exists()):
        return None
    try:
        meta = json.loads(side.read_text())
        if meta.get("fingerprint") != fingerprint:
            return None
        return np.load(features_path, mmap_mode="r"), meta.get("stats", {})
    except (ValueError, OSError):
        return None


def write_sidecar(features_path: Path, fingerprint: str, stats: dict) -> None:
    """Write the sidecar atomically (after the array is in place)."""
    side = sidecar_path(features_path)
    tmp = side.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps({"fingerprint": fingerprint, "stats": stats}, sort_keys=True))
        os.replace(tmp, side)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise disk_error(exc, side) from exc


def disk_error(exc: OSError, path: Path) -> OSError:
    """An ``OSError`` that says which file could not be written and what to do."""
    import errno

    why = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
    err = OSError(exc.errno, f"Cannot write {path}: {why}. Free some space (or point "
                  "PINTEREST_MM_HOME at a larger disk) and run the build again; what was built "
                  "before is kept")
    return err


def atomic_save(path: Path, X: np.ndarray, tmp: Path | None = None) -> None:
    """Write an array to ``tmp`` then rename it to ``path``; a failed write leaves no file.

    Raises:
        OSError: The write failed (e.g. a full disk), with a message naming the file.
    """
    tmp = tmp or path.with_suffix(".npy.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(X, dtype=np.float32))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise disk_error(exc, path) from exc


def save_features(features_path: Path, X: np.ndarray, fingerprint: str, stats: dict) -> None:
    """Save a whole feature array atomically, then its sidecar."""
    atomic_save(features_path, X)
    write_sidecar(features_path, fingerprint, stats)
