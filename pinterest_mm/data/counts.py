"""Before/after counts of the cleaning (thesis Fig. 3.3, 3.5, 3.6) from a dataset's manifest rows.

Every function takes :meth:`pinterest_mm.store.Store.manifest_rows` (one row per manifest row:
``pin_id``, ``user_id``, ``category``, ``status`` = ``kept`` or the step that dropped it) and
counts distinct pins, so a pin saved by several users counts once per category.
"""

from __future__ import annotations

import pandas as pd


def category_counts(rows: pd.DataFrame) -> pd.DataFrame:
    """Distinct pins per category among ``rows`` (``before``) and among the kept ones (``after``).

    Returns:
        Columns ``category`` (an empty category as ``(empty)``), ``before``, ``after``.
    """
    before = rows.groupby("category", dropna=False)["pin_id"].nunique()
    after = rows[rows["status"] == "kept"].groupby("category")["pin_id"].nunique()
    df = pd.DataFrame({"before": before, "after": after}).fillna(0).astype(int)
    df.index = df.index.fillna("(empty)").astype(str)
    return df.rename_axis("category").reset_index()


def user_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per user: distinct pins saved in the manifest (``before``) and kept (``after``), most kept first.

    Rows without a user are left out; an empty frame when the manifest has no users.
    """
    rows = rows[rows["user_id"].notna() & (rows["user_id"].astype(str) != "")]
    before = rows.groupby("user_id")["pin_id"].nunique()
    after = rows[rows["status"] == "kept"].groupby("user_id")["pin_id"].nunique()
    df = pd.DataFrame({"before": before, "after": after}).fillna(0).astype(int)
    return df.sort_values(["after", "before"], ascending=False).rename_axis("user_id").reset_index()


def user_category_counts(rows: pd.DataFrame, user: str) -> pd.DataFrame:
    """One user's :func:`category_counts` (thesis Fig. 3.6)."""
    return category_counts(rows[rows["user_id"].astype(str) == str(user)])


def drop_reasons(rows: pd.DataFrame) -> pd.DataFrame:
    """Distinct pins per fate: ``kept`` or the cleaning step that dropped them, most first.

    Returns:
        Columns ``step`` and ``pins``.
    """
    step = rows["status"].astype(str).str.split(":").str[0]
    return (rows.assign(step=step).groupby("step")["pin_id"].nunique()
            .sort_values(ascending=False).rename("pins").reset_index())
