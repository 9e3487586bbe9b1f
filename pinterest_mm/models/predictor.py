"""Predict new pins with a built model: ``load_predictor(store, dataset, model)``.

Feature models reload their feature extractor (packaged or cached weights, or the vectors
trained on the dataset) and the fitted logistic regression (``logreg.skops``); classifiers
reload their own checkpoint. Nothing is unpickled: see :mod:`.checkpoints`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..store import Store
from .checkpoints import load_estimator
from .registry import get_model


class FeaturePredictor:
    """Features of new pins -> the model's logistic regression -> probabilities."""

    def __init__(self, model, estimator, n_classes: int) -> None:
        self.model = model
        self.estimator = estimator
        self.n_classes = n_classes

    def predict_proba(self, images=None, texts=None) -> np.ndarray:
        """Return probabilities (n, C) of PIL ``images`` (image models) or raw ``texts``."""
        X = np.asarray(self.model.featurize(images=images, texts=texts), dtype=np.float32)
        out = np.zeros((X.shape[0], self.n_classes), dtype=np.float32)
        if len(X):
            out[:, self.estimator.classes_] = self.estimator.predict_proba(X)
        return out


# Every prediction of the process runs on one long-lived thread with torch at one intra-op
# thread. In a server (Streamlit: a thread per script run, an event loop, other sessions),
# torch's default pool (one thread per core) waits at barriers for threads the OS has
# descheduled: one 224-px forward pass took 0.15-2 s instead of 25 ms. One image gains
# nothing from more threads, and one thread queues concurrent sessions' passes instead of
# oversubscribing the cores. (``set_num_threads`` is process-wide; a build in the same
# process sets its own count again when it creates a backbone.)
_INFERENCE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pmm-predict")


class OnInferenceThread:
    """A predictor whose ``predict_proba`` runs on the process's inference thread."""

    def __init__(self, predictor) -> None:
        self.predictor = predictor

    def predict_proba(self, images=None, texts=None) -> np.ndarray:
        """``predictor.predict_proba`` on the inference thread (same result)."""
        return _INFERENCE.submit(_one_thread, self.predictor.predict_proba, images, texts).result()


def _one_thread(fn, images, texts):
    import sys

    if "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
    return fn(images=images, texts=texts)


def load_predictor(store: Store, dataset: str, model: str):
    """Return an object with ``predict_proba(images=None, texts=None) -> (n, C)``.

    Image models take PIL images; text models take raw descriptions and clean them as the
    importer did. Reads only ``store``'s own checkpoint folder, without pickles.

    Raises:
        UnknownModelError: ``model`` is not registered.
        KeyError: ``model`` has not been built on ``dataset``.
    """
    spec = get_model(model)
    built = store.models(dataset)
    row = built[built["model"] == model]
    if row.empty:
        raise KeyError(f"Model {model!r} is not built on dataset {dataset!r}: run `pinterest-mm build {dataset} --models {model}`.")
    params = row.iloc[0]["params"]
    n_classes = len(store.classes(dataset))
    folder = store.checkpoints_dir(dataset, model)
    obj = spec.create(**(params.get("options") or {}))
    obj.device = "cpu"
    if spec.kind == "classifier":
        return OnInferenceThread(obj.predictor(folder, n_classes))
    obj.load_state(folder)
    return OnInferenceThread(FeaturePredictor(obj, load_estimator(folder / "logreg.skops"), n_classes))
