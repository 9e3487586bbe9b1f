"""Pickle-free checkpoints of what a build fits: scikit-learn estimators and word vectors.

A pickle runs code when it is loaded, so a store folder that someone else can write would be a
way in. Nothing here unpickles:

- fitted scikit-learn pipelines (the logistic regression on features, ``tfidf-lr``) are saved
  with ``skops.io``, whose loader rebuilds only types it trusts (scikit-learn, NumPy, SciPy)
  and refuses a file that names any other;
- trained Word2Vec / FastText vectors are a float32 ``.npy`` matrix (read with
  ``allow_pickle=False``) plus a JSON word list; FastText adds its subword n-gram matrix and
  JSON settings, so words never seen in training still get vectors.

Checkpoints of an older version (``*.joblib`` pickles, gensim ``vectors.kv``) are not loaded:
the loaders say to rebuild (a plain ``pinterest-mm build`` does, as the model fingerprint
includes :data:`FORMAT`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

FORMAT = "skops+npy-1"  # part of the model fingerprints: a new format rebuilds old checkpoints


class CheckpointError(RuntimeError):
    """A checkpoint is missing, from an older version, or holds types we do not load."""


def _rebuild_hint(folder: Path) -> str:
    """The command that rebuilds the model of ``folder`` (``checkpoints/<dataset>/<model>``)."""
    return f"rebuild it with `pinterest-mm build {folder.parent.name} --models {folder.name}`"


def _atomic(path: Path, write) -> None:
    """Write ``path`` through a temporary file, renamed when complete (a kill leaves no half file)."""
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    write(tmp)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- estimators
def save_estimator(estimator, path: Path) -> None:
    """Save a fitted scikit-learn estimator or pipeline to ``path`` (``.skops``)."""
    import skops.io as sio

    path = Path(path)
    _atomic(path, lambda tmp: sio.dump(estimator, tmp))
    path.with_suffix(".joblib").unlink(missing_ok=True)  # an older version's pickle, replaced


# Private scikit-learn types that skops does not trust by default but that are plain data
# holders of a public estimator (``CalibratedClassifierCV``'s fitted calibrators).
SKLEARN_PRIVATE_TYPES = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
)


def load_estimator(path: Path, trusted: tuple[str, ...] = ()):
    """Load an estimator saved by :func:`save_estimator`, trusting scikit-learn types only.

    Args:
        path: The ``.skops`` file.
        trusted: Further type names to accept beyond skops's defaults (only scikit-learn's
            own private types, e.g. :data:`SKLEARN_PRIVATE_TYPES`).

    Raises:
        CheckpointError: The file is missing (with a hint when an older pickle is there), or
            it names a type outside skops's trusted defaults.
    """
    import skops.io as sio

    path = Path(path)
    if not path.exists():
        legacy = path.with_suffix(".joblib")
        why = (f"{legacy.name} is a pickle saved by an older pinterest-mm and is no longer loaded"
               if legacy.exists() else f"{path.name} is missing")
        raise CheckpointError(f"Cannot load {path.parent.name}: {why}; {_rebuild_hint(path.parent)}.")
    try:
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in trusted]
        estimator = None if untrusted else sio.load(path, trusted=list(trusted) or None)
    except Exception as exc:  # truncated or not a skops file at all
        raise CheckpointError(f"{path} is damaged ({type(exc).__name__}: {exc}); "
                              f"{_rebuild_hint(path.parent)}.") from exc
    if untrusted:
        raise CheckpointError(f"Refusing to load {path}: it names types outside scikit-learn/NumPy "
                              f"({', '.join(untrusted[:5])}); {_rebuild_hint(path.parent)}.")
    return estimator


# ----------------------------------------------------------------------------- word vectors
VECTOR_FILES = ("vectors.npy", "words.json")


def save_word_vectors(matrix: np.ndarray, words: list[str], folder: Path, subwords=None) -> None:
    """Save trained word vectors to ``folder`` without pickles.

    Args:
        matrix: (V, d) vectors, row i is ``words[i]``.
        words: The V words.
        subwords: A gensim ``FastTextKeyedVectors`` whose n-gram matrix and settings are kept
            (None for Word2Vec).
    """
    folder = Path(folder)
    if subwords is not None:
        _atomic(folder / "ngrams.npy", lambda tmp: np.save(tmp, np.asarray(subwords.vectors_ngrams, np.float32)))
        meta = {"min_n": int(subwords.min_n), "max_n": int(subwords.max_n), "bucket": int(subwords.bucket)}
        _atomic(folder / "fasttext.json", lambda tmp: tmp.write_text(json.dumps(meta)))
    _atomic(folder / "vectors.npy", lambda tmp: np.save(tmp, np.asarray(matrix, np.float32)))
    # written last: its presence means the set is complete
    _atomic(folder / "words.json", lambda tmp: tmp.write_text(json.dumps(list(words), ensure_ascii=False)))
    for old in folder.glob("vectors.kv*"):  # an older version's gensim pickle, replaced
        old.unlink()


def has_word_vectors(folder: Path) -> bool:
    """True when :func:`save_word_vectors` completed in ``folder``."""
    return all((Path(folder) / f).exists() for f in VECTOR_FILES)


def load_word_vectors(folder: Path):
    """Load vectors saved by :func:`save_word_vectors`.

    Returns:
        (matrix (V, d) float32, words, subword lookup or None): the lookup is a gensim
        ``FastTextKeyedVectors`` rebuilt from the arrays (FastText only).

    Raises:
        CheckpointError: The files are missing or do not match.
    """
    folder = Path(folder)
    if not has_word_vectors(folder):
        why = ("vectors.kv is a pickle saved by an older pinterest-mm and is no longer loaded"
               if (folder / "vectors.kv").exists() else "the trained vectors are missing")
        raise CheckpointError(f"Cannot load {folder.name}: {why}; {_rebuild_hint(folder)}.")
    matrix = np.load(folder / "vectors.npy", allow_pickle=False)
    words = json.loads((folder / "words.json").read_text())
    if matrix.ndim != 2 or len(words) != len(matrix):
        raise CheckpointError(f"{folder}: {len(words)} words for a {matrix.shape} matrix; "
                              f"{_rebuild_hint(folder)}.")
    sub = None
    if (folder / "fasttext.json").exists():
        from gensim.models.fasttext import FastTextKeyedVectors

        meta = json.loads((folder / "fasttext.json").read_text())
        sub = FastTextKeyedVectors(int(matrix.shape[1]), int(meta["min_n"]), int(meta["max_n"]), int(meta["bucket"]))
        sub.index_to_key = list(words)
        sub.key_to_index = {w: i for i, w in enumerate(words)}
        sub.vectors = matrix
        sub.vectors_ngrams = np.load(folder / "ngrams.npy", allow_pickle=False)
    return matrix, words, sub
