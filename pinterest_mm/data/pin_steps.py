"""Per-pin steps of the import that run in Python, done a chunk of pins at a time.

Each step turns a column of the live pins into new columns; working :data:`CHUNK` pins at a
time and keeping the results as Arrow text columns (not lists of Python strings), its
temporary objects never exist for every pin of a large manifest at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from ..config import CleaningConfig
from .clean import clean_transformer_text, clean_words

CHUNK = 50_000  # pins (or distinct images) handled at a time by the per-pin Python steps


FINGERPRINT_COLUMNS = ["pin_id", "category", "description", "sha1", "split"]


def dataset_fingerprint(config: dict, pins: pd.DataFrame) -> str:
    """The dataset's fingerprint: the first 16 hex digits of the SHA-256 of the JSON text
    ``[config, [[pin_id, category, description, sha1, split], ...]]`` (keys sorted, the
    pins in ``pins``' order), written :data:`CHUNK` pins at a time: the text of a million
    pins never exists at once.
    """
    digest = hashlib.sha256(("[" + json.dumps(config, sort_keys=True) + ", [").encode())
    for start in range(0, len(pins), CHUNK):
        rows = pins[FINGERPRINT_COLUMNS].iloc[start : start + CHUNK].values.tolist()
        digest.update(((", " if start else "") + json.dumps(rows, sort_keys=True)[1:-1]).encode())
    digest.update(b"]]")
    return digest.hexdigest()[:16]


def clean_texts(descriptions: pd.Series, cc: CleaningConfig, progress: bool) -> tuple[pd.Series, pd.Series, pd.Series]:
    """The cleaned texts of ``descriptions`` (shape (n,)), :data:`CHUNK` pins at a time.

    Returns:
        (words for word vectors joined by spaces, their number, text for transformers),
        each shape (n,) on ``descriptions``' index.
    """
    words, counts, transformer = [], [], []
    bar = tqdm(total=len(descriptions), desc="cleaning text", unit="pin", disable=not progress, leave=False)
    try:
        for start in range(0, len(descriptions), CHUNK):
            texts = descriptions.iloc[start : start + CHUNK].tolist()
            tokens = [clean_words(d, cc.min_token_len, cc.max_token_len) for d in texts]
            words.append(pa.array([" ".join(t) for t in tokens], pa.large_string()))
            counts.append(np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens)))
            transformer.append(pa.array([clean_transformer_text(d) for d in texts], pa.large_string()))
            bar.update(len(texts))
    finally:
        bar.close()
    index = descriptions.index
    return (pa.chunked_array(words, pa.large_string()).to_pandas().set_axis(index),
            pd.Series(np.concatenate(counts) if counts else np.zeros(0, np.int64), index=index),
            pa.chunked_array(transformer, pa.large_string()).to_pandas().set_axis(index))


def sort_order(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Row order sorting ``frame`` by ``columns`` (ascending; text by code point, as Python
    compares strings), shape (n,). Arrow sorts the columns as they are stored: no Python
    string per value (pandas' multi-column sort makes them, 250 MB for a million pins)."""
    table = pa.Table.from_pandas(frame[columns], preserve_index=False)
    return pc.sort_indices(table, sort_keys=[(c, "ascending") for c in columns]).to_numpy()


def _malloc_trim():
    """glibc's ``malloc_trim`` (None elsewhere: macOS, musl, Windows)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Hand back to the system what the last step freed: Python's unreachable cycles, the
    blocks Arrow's pool keeps for reuse, and glibc's free lists (its ``malloc_trim``, where
    there is one). Between the import's steps this keeps the peak near the live tables:
    measured on 100,000 pins, 10% less."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)
