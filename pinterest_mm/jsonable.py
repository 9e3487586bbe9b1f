"""numpy values as JSON: the one ``default=`` for ``json.dumps`` across the package."""

from __future__ import annotations

import numpy as np


def to_json(x, strict: bool = True):
    """Turn a numpy scalar or array into Python numbers or nested lists (``json.dumps`` default).

    Args:
        x: The value ``json`` cannot encode.
        strict: Raise ``TypeError`` for anything else (cache keys, configs); when False, other
            objects are written as ``str(x)`` (reports and downloads for people).
    """
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if strict:
        raise TypeError(f"not JSON-able: {type(x)}")
    return str(x)


def to_json_lenient(x):
    """:func:`to_json` writing anything else as ``str(x)``."""
    return to_json(x, strict=False)
