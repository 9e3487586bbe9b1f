"""Plain-text tables for the command line: one helper instead of hand-aligned f-strings."""

from __future__ import annotations


def cell(value, digits: int | None = 3) -> str:
    """A value as table text: floats with ``digits`` decimals (None: shortest form, ``:g``),
    None and NaN as ``-``."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:g}" if digits is None else f"{value:.{digits}f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def text_table(headers: list[str], rows: list[list], digits: int | list[int | None] = 3, rule: bool = True) -> str:
    """Rows under headers in aligned columns: numbers right-aligned, text left-aligned.

    Args:
        headers: Column titles.
        rows: One list of values per row, as long as ``headers``.
        digits: Decimals of float values, for every column or one per column (None: ``:g``).
        rule: Draw a dashed line under the headers.
    """
    per_column = [digits] * len(headers) if isinstance(digits, int) else list(digits)
    text = [[cell(v, d) for v, d in zip(r, per_column)] for r in rows]
    numeric = [all(isinstance(r[j], (int, float)) or r[j] is None for r in rows) and bool(rows)
               for j in range(len(headers))]
    widths = [max([len(h)] + [len(r[j]) for r in text]) for j, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(list(headers))]
    if rule:
        out.append("-" * len(out[0]))
    return "\n".join(out + [line(r) for r in text])
