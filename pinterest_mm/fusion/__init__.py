"""Fusion methods behind one registry: ``late`` (MM, lambda, baselines, pooling; models chosen
by ``select``), ``fitted`` (optimized weights, ensemble selection), ``learned``
(scikit-learn: stacking, feature cross), ``nets`` (torch: gated, MLPs); ``live`` is the slider path.

Typical use::

    from pinterest_mm.fusion import fuse, list_methods
    res = fuse(outputs, "mm")                 # l chosen on validation
    res = fuse(outputs, "lambda", text_family="transformer", store=store)

Live slider path (no refit, no per-move copy of the cache)::

    from pinterest_mm.fusion import FusionStack, mm_weights
    fs = FusionStack.from_outputs(outputs, models, "test")   # once
    view = fs.view(mm_weights(accs, l))      # per move: fused once, accuracy, topk, confusion
"""

from .late import (
    LAMBDA_GRID,
    MM_L_GRID,
    SelectConfig,
    lambda_table,
    log_linear,
    mm_weights,
    prob_stack,
    select_models,
    usable_models,
    val_accuracy,
    weighted_sum,
)
from .fitted import ensemble_selection, optimize_weights
from .learned import cross_pool, cross_pool_explicit
from .live import FusionStack, LiveScores, LiveView
from . import nets, user_gated  # noqa: F401 - register gated, concat_mlp, attention_mlp, user_gated
from .registry import (
    FusionResult,
    blas_threads,
    cache_key,
    config_dict,
    fuse,
    get_method,
    list_methods,
    make_config,
    register,
)

__all__ = [
    "LAMBDA_GRID", "MM_L_GRID", "FusionResult", "blas_threads", "FusionStack", "LiveScores", "LiveView",
    "SelectConfig", "cache_key", "ensemble_selection", "config_dict", "cross_pool", "cross_pool_explicit", "fuse", "get_method", "lambda_table",
    "list_methods", "log_linear", "make_config", "mm_weights", "optimize_weights",
    "prob_stack", "register", "select_models", "usable_models", "val_accuracy", "weighted_sum",
]
