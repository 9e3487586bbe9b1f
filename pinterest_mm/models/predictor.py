"""Predict new pins with a built model: ``load_predictor(store, dataset, model)``.

Feature models reload their feature extractor (packaged or cached weights, or the vectors
trained on the dataset) and the fitted logistic regression (``logreg.joblib``); classifiers
reload their own checkpoint. joblib files are pickles: load them only from a store you own
(this function reads only the given store's checkpoint folder).
"""

from __future__ import annotations

import numpy as np

from ..store import Store
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


def load_predictor(store: Store, dataset: str, model: str):
    """Return an object with ``predict_proba(images=None, texts=None) -> (n, C)``.

    Image models take PIL images; text models take raw descriptions and clean them as the
    importer did. Loads pickled estimators from ``store``'s own checkpoint folder only.

    Raises:
        UnknownModelError: ``model`` is not registered.
        KeyError: ``model`` has not been built on ``dataset``.
    """
    import joblib

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
        return obj.predictor(folder, n_classes)
    obj.load_state(folder)
    return FeaturePredictor(obj, joblib.load(folder / "logreg.joblib"), n_classes)
