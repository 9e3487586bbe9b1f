"""How far to trust one pin's fused prediction: a note when it is unsure or the models disagree.

The fused top-1 probability is compared with chance: with C classes a uniform guess gives
each class 1/C, so a top class below :data:`LOW_FACTOR` / C (twice chance; 0.17 with 12
classes, 0.5 with 4) is barely preferred over the rest: the pin may be of none of the
dataset's categories (out of domain) or its image and text point different ways.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

LOW_FACTOR = 2.0  # the fused top-1 probability is "low" below LOW_FACTOR x 1/C


def low_threshold(n_classes: int) -> float:
    """The fused top-1 probability below which a prediction is called unsure: 2/C, at most 0.5."""
    return min(0.5, LOW_FACTOR / max(int(n_classes), 1))


def prediction_notes(fused: np.ndarray | None, votes: Mapping[str, np.ndarray], classes: Sequence[str]) -> list[str]:
    """Plain-text notes on one pin's prediction (escape them before showing as Markdown).

    Args:
        fused: The fused probabilities, shape (C,), or None when no model voted.
        votes: Each voting model's probabilities, shape (C,).
        classes: The C class names.

    Returns:
        Zero, one or two sentences: a low fused top-1 probability (below :func:`low_threshold`)
        and models that disagree (fewer than half of the voters put the fused class first).
    """
    if fused is None:
        return []
    fused = np.asarray(fused, dtype=float)
    C = len(classes)
    top = int(fused.argmax())
    notes = []
    t = low_threshold(C)
    if fused[top] < t:
        notes.append(f"Low confidence: the fused top class {classes[top]} has probability {fused[top]:.2f}, "
                     f"under {t:.2f} (twice the {1 / C:.2f} of a guess among {C} classes). The pin may belong "
                     "to none of the dataset's categories, or its image and text point different ways.")
    if len(votes) >= 2:
        agree = [m for m, p in votes.items() if int(np.asarray(p).argmax()) == top]
        if len(agree) * 2 < len(votes):
            notes.append(f"The models disagree: {len(agree)} of the {len(votes)} that voted put "
                         f"{classes[top]} first.")
    return notes
