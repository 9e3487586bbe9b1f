"""Writing systems of pin descriptions: cheap script detection and word splitting without spaces.

Chinese, Japanese, Thai, Lao, Khmer and Myanmar write words without spaces, so splitting on
spaces turns a whole sentence into one "word". :func:`split_unspaced` splits such a run:
Chinese (Han characters without kana) with ``jieba`` when it is installed; everything else
(Japanese, Thai, ..., or Chinese without jieba) into overlapping character bigrams, the
classic segmenter-free indexing of CJK text (a one-character run stays one token).

:func:`script_of` names a text's dominant writing system from Unicode code-point ranges
(no language model): enough to show an import's language mix.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from functools import lru_cache

# Scripts written without spaces between words (code-point ranges).
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
_KANA = "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_SEA = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"  # Thai, Lao, Myanmar, Khmer
UNSPACED = f"{_HAN}{_KANA}{_SEA}"
UNSPACED_RE = re.compile(f"[{UNSPACED}]+")

_SCRIPTS: dict[str, re.Pattern] = {
    "Chinese": re.compile(f"[{_HAN}]"),  # Han; kana in the same text makes it Japanese
    "Japanese": re.compile(f"[{_KANA}]"),
    "Korean": re.compile("[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]"),
    "Thai": re.compile("[\u0e00-\u0e7f]"),
    "Latin": re.compile("[A-Za-z\u00c0-\u024f\u1e00-\u1eff]"),
    "Cyrillic": re.compile("[\u0400-\u04ff]"),
    "Greek": re.compile("[\u0370-\u03ff]"),
    "Arabic": re.compile("[\u0600-\u06ff\u0750-\u077f]"),
    "Hebrew": re.compile("[\u0590-\u05ff]"),
    "Devanagari": re.compile("[\u0900-\u097f]"),
}


def script_of(text: str) -> str:
    """Return the dominant writing system of a text.

    Counts letters per script (:data:`_SCRIPTS`); any kana makes Han text ``Japanese``.

    Returns:
        A script name (``Latin``, ``Chinese``, ``Japanese``, ``Korean``, ``Thai``, ...),
        ``other`` for letters of none of them, or ``none`` for a text without letters.

    Example:
        >>> script_of("红色的连衣裙"), script_of("赤いドレス"), script_of("a red dress")
        ('Chinese', 'Japanese', 'Latin')
    """
    counts = {name: len(rx.findall(text or "")) for name, rx in _SCRIPTS.items()}
    if counts["Japanese"]:
        counts["Japanese"] += counts.pop("Chinese")
    best = max(counts, key=counts.get)
    if counts[best]:
        return best
    return "other" if any(ch.isalpha() for ch in text or "") else "none"


def script_mix(texts) -> str:
    """Return the share of each script over texts, largest first, e.g. ``Latin 80%, Chinese 20%``."""
    counts = Counter(script_of(t) for t in texts)
    total = sum(counts.values()) or 1
    return ", ".join(f"{name} {100 * n / total:.0f}%" for name, n in counts.most_common())


@lru_cache(maxsize=1)
def _jieba():
    """Return the ``jieba`` module (quiet), or None when it is not installed."""
    try:
        import jieba
    except ImportError:
        return None
    jieba.setLogLevel(logging.WARNING)
    return jieba


def char_bigrams(run: str) -> list[str]:
    """Return the overlapping character bigrams of a run (the run itself when one character)."""
    return [run] if len(run) < 2 else [run[i : i + 2] for i in range(len(run) - 1)]


def split_unspaced(run: str) -> list[str]:
    """Split a run of an unspaced script (a match of :data:`UNSPACED_RE`) into words.

    Chinese runs (Han, no kana) go through ``jieba`` when installed; other runs become
    character bigrams (:func:`char_bigrams`).
    """
    jieba = _jieba()
    if jieba is not None and _SCRIPTS["Chinese"].search(run) and not _SCRIPTS["Japanese"].search(run):
        return [w for w in jieba.lcut(run, HMM=True) if w.strip()]
    return char_bigrams(run)
