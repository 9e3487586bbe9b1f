"""Values from a user's file made safe to show in a message (terminal, log, app).

A manifest can hold anything: terminal escape sequences in a header (which retitle or clear
the terminal the message is printed on), binary junk, bidirectional overrides that reorder
text, values thousands of characters long. :func:`printable` escapes every character that
is not printable (control, format, surrogate, private-use and unassigned characters) and
cuts the value, so a message quoting it stays one readable line.
"""

from __future__ import annotations

MAX_SHOWN = 60  # characters of a value quoted in a message


def printable(value: object, limit: int = MAX_SHOWN) -> str:
    """Return ``value`` as text with non-printable characters escaped and cut to ``limit``.

    Args:
        value: Anything (converted with ``str``; bytes are decoded with replacement).
        limit: Most characters kept before the cut (marked with an ellipsis).

    Returns:
        One line: ``\\x1b``, ``\\n``, ``\\u202e`` ... instead of the characters themselves.

    Example:
        >>> printable("\\x1b]0;owned\\x07pin_id")
        '\\\\x1b]0;owned\\\\x07pin_id'
    """
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    text = str(value)
    cut = len(text) > limit
    out = []
    for ch in text[:limit]:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out) + ("…" if cut else "")


def quoted(value: object, limit: int = MAX_SHOWN) -> str:
    """Return :func:`printable` of ``value`` in single quotes (for lists in messages)."""
    return f"'{printable(value, limit)}'"
