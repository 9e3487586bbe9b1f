"""The inputs of the joint space, read from a dataset's store: cached features, no re-extraction.

- image features: the cached pooled features of a built image model (``features/``);
- texts: each pin's cleaned tokens (``text_words``) as word ids into the frozen vectors of a
  word model (the packaged GloVe 6B 50-d, or this dataset's trained ``word2vec-train`` /
  ``fasttext-train``), cut or padded to ``max_words``; with the ``minilm`` text encoder also
  each pin's frozen MiniLM sentence embedding (cached, see :mod:`.sentence`);
- users: those with at least one save of a **train** pin (only they get a vector); every
  save (pin, user) is a post. Val/test saves are kept for evaluation only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..store import Store
from .errors import EmbedInputError

WORD_MODELS = ("glove-6b-50", "word2vec-train", "fasttext-train")
TEXT_ENCODERS = ("cnn", "minilm")  # a CNN over frozen word vectors (001 §4.3) or frozen MiniLM sentences


@dataclass
class EmbedData:
    """Everything a joint space is trained and evaluated on.

    Attributes:
        dataset: Its name.
        pins: Pins in row order (pin_id, split, label, category, image, description, ...).
        classes: Category names, index = label.
        image: (N, D_I) float32 image features (rows of undecodable images are zeros).
        words: (N, L) int64 word ids (0 = padding).
        vocab: The V words of ids 1..V.
        vectors: (V + 1, d) float32 word vectors, row 0 zeros.
        has_image, has_text: (N,) bool (a text: a known word; with ``minilm``: a non-empty text).
        users: The K user ids with a vector (a train save), sorted.
        saves: Every save of a kept pin: pin_id, user_id, split, row (pin row), user (index
            into ``users``, -1 for a user without train saves).
        image_model, word_model: Where the features and vectors came from.
        fingerprint: Of the dataset, the image features and the word model.
        text_encoder: ``cnn`` or ``minilm``.
        sentences: (N, 384) float32 frozen MiniLM sentence embeddings (``minilm`` only, else None).
    """

    dataset: str
    pins: pd.DataFrame
    classes: list[str]
    image: np.ndarray
    words: np.ndarray
    vocab: list[str]
    vectors: np.ndarray
    has_image: np.ndarray
    has_text: np.ndarray
    users: list[str]
    saves: pd.DataFrame
    image_model: str
    word_model: str
    fingerprint: dict = field(default_factory=dict)
    text_encoder: str = "cnn"
    sentences: np.ndarray | None = None

    @property
    def text_input(self) -> np.ndarray:
        """What the text encoder reads: (N, L) word ids (``cnn``) or (N, 384) sentences (``minilm``)."""
        return self.sentences if self.text_encoder == "minilm" else self.words

    def text_means_source(self) -> np.ndarray:
        """(N, d) per pin the text vector users are initialized from (001: mean word vectors;
        with ``minilm``: the sentence embedding)."""
        return self.sentences if self.text_encoder == "minilm" else self.mean_word_vectors()

    def rows(self, split: str) -> np.ndarray:
        """Pin rows of a split, shape (n,)."""
        return np.flatnonzero(self.pins["split"].to_numpy() == split)

    @property
    def has_users(self) -> bool:
        """True when at least one user has a train save."""
        return len(self.users) > 0

    def posts(self, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """The posts of a split: (pin rows, user indices); a pin without saves is one post with user -1."""
        s = self.saves[(self.saves["split"] == split) & (self.saves["user"] >= 0)]
        rows = s["row"].to_numpy(np.int64)
        users = s["user"].to_numpy(np.int64)
        lonely = np.setdiff1d(self.rows(split), rows)
        return np.concatenate([rows, lonely]), np.concatenate([users, -np.ones(len(lonely), np.int64)])

    def mean_word_vectors(self) -> np.ndarray:
        """(N, d) the mean of each pin's known word vectors (zeros when none)."""
        counts = (self.words > 0).sum(1, keepdims=True)
        sums = self.vectors[self.words].sum(1)
        return (sums / np.maximum(counts, 1)).astype(np.float32)

    def user_means(self, X: np.ndarray, split: str = "train") -> np.ndarray:
        """(K, X.shape[1]) per user, the mean of ``X`` over the pins they saved in ``split``."""
        s = self.saves[(self.saves["split"] == split) & (self.saves["user"] >= 0)]
        K = len(self.users)
        out = np.zeros((K, X.shape[1]), np.float64)
        np.add.at(out, s["user"].to_numpy(), np.asarray(X, np.float64)[s["row"].to_numpy()])
        n = np.bincount(s["user"].to_numpy(), minlength=K)[:, None]
        return (out / np.maximum(n, 1)).astype(np.float32)


def _word_vectors(store: Store, dataset: str, word_model: str):
    from ..models.checkpoints import CheckpointError, load_word_vectors
    from ..models.text import Vectors, load_glove_pkg

    if word_model == "glove-6b-50":
        return load_glove_pkg()
    if word_model not in WORD_MODELS:
        raise EmbedInputError(f"Unknown word model {word_model!r}; use one of {', '.join(WORD_MODELS)}.")
    if store.model_fingerprint(dataset, word_model) is None:
        raise EmbedInputError(f"The word model {word_model!r} is not built for {dataset!r}: run "
                              f"`pinterest-mm build {dataset} --models {word_model}` first.")
    try:
        matrix, words, sub = load_word_vectors(store.checkpoints_dir(dataset, word_model))
    except CheckpointError as exc:
        raise EmbedInputError(str(exc)) from exc
    return Vectors(matrix, {w: i for i, w in enumerate(words)}, sub)


def encode_words(token_lists: list[list[str]], index: dict[str, int], max_words: int) -> np.ndarray:
    """Token lists -> (n, max_words) word ids (0 = padding; unknown words dropped)."""
    out = np.zeros((len(token_lists), max_words), np.int64)
    for i, toks in enumerate(token_lists):
        ids = [index[t] for t in toks if t in index][:max_words]
        out[i, : len(ids)] = ids
    return out


def load_embed_data(store: Store, dataset: str, image_model: str = "effnet-lite0",
                    word_model: str = "glove-6b-50", max_words: int = 20, text_encoder: str = "cnn",
                    progress: bool = False) -> EmbedData:
    """Read a dataset's pins, saves, cached image features and word vectors (and, with
    ``text_encoder="minilm"``, its cached MiniLM sentence embeddings, computed on first use).

    Raises:
        EmbedInputError: The image model (or trained word model) is not built yet.
        DatasetNotFound: No such dataset.
    """
    if text_encoder not in TEXT_ENCODERS:
        raise EmbedInputError(f"Unknown text encoder {text_encoder!r}; use one of {', '.join(TEXT_ENCODERS)}.")
    info = store.dataset_info(dataset)
    image_fp = store.model_fingerprint(dataset, image_model)
    path = store.features_path(dataset, image_model)
    if image_fp is None or not path.exists():
        raise EmbedInputError(f"The joint space needs the cached image features of {image_model!r} on "
                              f"{dataset!r}: run `pinterest-mm build {dataset} --models {image_model}` first.")
    pins = store.pins(dataset).reset_index(drop=True)
    image = np.array(np.load(path, mmap_mode="r"), np.float32)  # a writable copy
    if image.ndim != 2 or len(image) != len(pins):
        raise EmbedInputError(f"The cached features of {image_model!r} do not match the pins of {dataset!r}; "
                              f"rebuild them with `pinterest-mm build {dataset} --models {image_model}`.")
    vec = _word_vectors(store, dataset, word_model)
    tokens = [str(t or "").lower().split() for t in pins["text_words"].tolist()]
    vocab = sorted({t for toks in tokens for t in toks if vec.vector(t) is not None})
    index = {w: i + 1 for i, w in enumerate(vocab)}
    vectors = np.zeros((len(vocab) + 1, vec.dim), np.float32)
    for w, i in index.items():
        vectors[i] = vec.vector(w)
    words = encode_words(tokens, index, max_words)

    saves = store.saves(dataset)[["pin_id", "user_id", "split"]].drop_duplicates(["pin_id", "user_id"])
    row_of = pd.Series(np.arange(len(pins)), index=pins["pin_id"].to_numpy())
    saves = saves.assign(row=row_of.loc[saves["pin_id"].to_numpy()].to_numpy())
    users = sorted(saves.loc[saves["split"] == "train", "user_id"].astype(str).unique())
    uidx = pd.Series(np.arange(len(users)), index=users)
    saves["user"] = uidx.reindex(saves["user_id"].astype(str).to_numpy()).fillna(-1).astype(np.int64).to_numpy()
    saves = saves.sort_values(["row", "user"], kind="stable").reset_index(drop=True)
    fp = {"dataset": info["fingerprint"], "image": image_fp, "word_model": word_model,
          "word": store.model_fingerprint(dataset, word_model) if word_model != "glove-6b-50" else "pkg",
          "max_words": max_words}
    sentences, has_text = None, (words > 0).any(1)
    if text_encoder == "minilm":
        from .sentence import dataset_sentences

        sentences, fp["sentences"] = dataset_sentences(store, dataset, pins, info["fingerprint"], progress)
        has_text = np.abs(sentences).sum(1) > 0
    return EmbedData(
        dataset=dataset, pins=pins, classes=store.classes(dataset), image=image, words=words, vocab=vocab,
        vectors=vectors, has_image=np.abs(image).sum(1) > 0, has_text=has_text, users=users,
        saves=saves, image_model=image_model, word_model=word_model, fingerprint=fp,
        text_encoder=text_encoder, sentences=sentences,
    )
