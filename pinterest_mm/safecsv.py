"""CSV for people who open it in a spreadsheet: cells that would run as formulas are quoted.

Every CSV the app offers for download and ``pinterest-mm predict --out FILE.csv`` writes goes
through :func:`safe_csv`: pin ids, descriptions, categories and notes come from imported data.
"""

from __future__ import annotations

import io

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _guard(v):
    if isinstance(v, str) and v.startswith(FORMULA_START):
        return "'" + v
    return v


def safe_csv(df: pd.DataFrame) -> bytes:
    """CSV bytes with spreadsheet-formula cells neutralized (prefixed with a quote)."""
    clean = df.copy()
    clean.columns = [_guard(str(c)) for c in clean.columns]
    for c in clean.columns:
        if pd.api.types.is_object_dtype(clean[c]) or pd.api.types.is_string_dtype(clean[c]):
            clean[c] = clean[c].map(_guard)
    if pd.api.types.is_object_dtype(clean.index) or pd.api.types.is_string_dtype(clean.index):
        clean.index = clean.index.map(_guard)
    buf = io.StringIO()
    clean.to_csv(buf, index=not isinstance(clean.index, pd.RangeIndex))
    return buf.getvalue().encode()
