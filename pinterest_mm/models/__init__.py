"""The model zoo: registry, feature models, classifiers and predictors.

Heavy libraries (torch, timm, transformers, gensim) are imported only when a model is built.
"""

from ..config import FAMILIES
from .registry import (
    REGISTRY,
    ModelSpec,
    UnknownModelError,
    WeightsUnavailable,
    default_models,
    format_models_table,
    get_model,
    list_models,
)

__all__ = [
    "FAMILIES",
    "REGISTRY",
    "ModelSpec",
    "UnknownModelError",
    "WeightsUnavailable",
    "default_models",
    "format_models_table",
    "get_model",
    "list_models",
    "load_predictor",
]


def load_predictor(store, dataset, model):
    """See :func:`pinterest_mm.models.predictor.load_predictor`."""
    from .predictor import load_predictor as _load

    return _load(store, dataset, model)
