"""One-line error messages for users: no traceback, no more than one paragraph."""

from __future__ import annotations


def one_line(exc: BaseException, limit: int = 500) -> str:
    """``Type: first line of the message`` of an exception, at most ``limit`` characters."""
    text = str(exc).strip()
    msg = text.splitlines()[0] if text else type(exc).__name__
    return f"{type(exc).__name__}: {msg}"[:limit]
