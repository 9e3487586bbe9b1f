"""Chance-level models: not significantly better on validation than always guessing the
majority class. The MM selection (and every rule-based selection of
:class:`~pinterest_mm.fusion.late.SelectConfig`) leaves them out.

Test: a one-sided binomial mid-p test (:func:`pinterest_mm.stats.above_midp`) of the model's
correct validation pins k of n against the majority baseline p0, the validation accuracy of
always predicting the class most frequent in the train split. A model is chance-level when that
p is 0.05 or more. Each model is screened on its own (no multiplicity correction: a correction
would exclude more models, and the screen only means to drop models that carry no signal).
"""

from __future__ import annotations

import numpy as np

from .. import stats
from ..outputs import Outputs

CHANCE_RULE = ("chance-level models are left out of the MM selection: validation accuracy not above the "
               "majority-class baseline (one-sided binomial mid-p test, 5 %)")


def majority_baseline(outputs: Outputs) -> float:
    """Validation accuracy of always predicting the train split's most frequent class (ties: lowest label).

    Falls back to the validation split's own most frequent class when there are no train labels.
    """
    y_val = np.asarray(outputs.y["val"])
    if not len(y_val):
        return 0.0
    y_train = np.asarray(outputs.y.get("train", np.zeros(0, int)))
    ref = y_train if len(y_train) else y_val
    majority = int(np.bincount(ref, minlength=outputs.n_classes).argmax())
    return float((y_val == majority).mean())


def chance_level(outputs: Outputs, models: list[str]) -> dict[str, str]:
    """Model -> why it is chance-level, for the ``models`` that are (see the module docstring)."""
    y = np.asarray(outputs.y["val"])
    n, p0 = len(y), majority_baseline(outputs)
    out = {}
    for m in models:
        k = int((np.asarray(outputs.probs[m]["val"]).argmax(1) == y).sum())
        p = stats.above_midp(k, n, p0)
        if p >= stats.ALPHA:
            out[m] = (f"validation accuracy {k / n if n else 0.0:.3f} ({k}/{n}) is not above the majority-class "
                      f"baseline {p0:.3f} (one-sided binomial mid-p {p:.3g} >= 0.05)")
    return out
