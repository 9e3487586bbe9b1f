"""The live slider path: one selection's probabilities prepared once, then per move one fused
array with its accuracy, top-k curve and confusion counts, all from a single fusion pass.

::

    from pinterest_mm.fusion.live import FusionStack
    fs = FusionStack.from_outputs(outputs, models, "test")   # once per selection and split
    view = fs.view(mm_weights(accs, l))                      # per move: fused, accuracy, topk, confusion

:func:`evaluate` gives the same scores for probabilities fused elsewhere (a learned method).
The results equal the reference metrics in :mod:`pinterest_mm.metrics` (top-k ties as
scikit-learn, argmax as numpy), computed blockwise in one pass for speed.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..metrics import KMAX
from ..outputs import Outputs
from .late import prob_stack
from .registry import blas_threads


@dataclass
class LiveScores:
    """What the live view shows after each slider move.

    Attributes:
        accuracy: Top-1 accuracy (argmax).
        topk: Top-k accuracy for k = 1..kmax, shape (kmax,).
        confusion: Counts, shape (C, C), rows = true class.
    """

    accuracy: float
    topk: np.ndarray
    confusion: np.ndarray


@dataclass
class LiveView(LiveScores):
    """:class:`LiveScores` plus the fused probabilities they score.

    Attributes:
        fused: Fused probabilities, shape (n, C), float32.
    """

    fused: np.ndarray | None = None


def _eval_block(pT: np.ndarray, y: np.ndarray, kmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank histogram and flat confusion counts of one transposed block.

    Reductions run over the class axis 0 of a (C, rows) block, so each step is a
    vectorized elementwise pass over ``rows`` values (a reduction over a 29-wide last axis
    is several times slower in numpy).

    Args:
        pT: Probabilities, shape (C, rows), C < 256.
        y: True labels, shape (rows,), int64.
        kmax: Largest k.

    Returns:
        (hist of min(rank, kmax), shape (kmax+1,); confusion counts, shape (C*C,)).
    """
    C, rows = pT.shape
    mx = pT.max(0)
    # argmax with numpy's first-index rule: largest descending code among the maxima.
    eq_max = (pT == mx).view(np.uint8)
    pred = (C - 1) - np.maximum.reduce(eq_max * _desc_codes(C), axis=0).astype(np.int64)
    pt = pT[y, np.arange(rows)]
    rank = np.add.reduce(pT > pt, axis=0, dtype=np.uint8)
    n_eq = np.add.reduce(pT == pt, axis=0, dtype=np.uint8)
    tied = np.flatnonzero(n_eq > 1)
    if tied.size:  # scikit-learn's rule: a tied class with a higher index ranks first
        sub = pT[:, tied]
        higher = np.arange(C)[:, None] > y[tied][None, :]
        rank[tied] += ((sub == pt[tied]) & higher).sum(0, dtype=np.uint8)
    hist = np.bincount(np.minimum(rank, kmax), minlength=kmax + 1)
    cm = np.bincount(y * C + pred, minlength=C * C)
    return hist, cm


_CODES: dict[int, np.ndarray] = {}


def _desc_codes(C: int) -> np.ndarray:
    if C not in _CODES:
        _CODES[C] = np.arange(C - 1, -1, -1, dtype=np.uint8)[:, None]
    return _CODES[C]


def _check_classes(C: int) -> None:
    if C > 255:
        raise ValueError(f"The live view supports at most 255 classes, not {C}.")


def _reduce(parts: list, n: int, C: int, kmax: int) -> LiveScores:
    hist = np.zeros(kmax + 1, dtype=np.int64)
    cm = np.zeros(C * C, dtype=np.int64)
    for h, c in parts:
        hist += h
        cm += c
    cm = cm.reshape(C, C)
    denom = max(n, 1)
    return LiveScores(float(np.trace(cm) / denom), np.cumsum(hist[:kmax]) / denom, cm)


def evaluate(
    fused_probs: np.ndarray,
    y: np.ndarray,
    C: int,
    kmax: int = KMAX,
    chunk: int = 8192,
    pool: ThreadPoolExecutor | None = None,
) -> LiveView:
    """Accuracy, top-k for k = 1..kmax and confusion counts of fused probabilities, one pass.

    Args:
        fused_probs: Probabilities, shape (n, C), float32 preferred.
        y: True labels, shape (n,), int64 preferred.
        C: Number of classes (at most 255).
        kmax: Largest k of the top-k curve.
        chunk: Rows per chunk (keeps the working set in cache).
        pool: Optional thread pool to spread chunks over cores.

    Returns:
        :class:`LiveView` holding ``fused_probs``. Accuracy counts the confusion diagonal.
    """
    _check_classes(C)
    y = np.asarray(y, dtype=np.int64)
    n = len(y)

    def work(s: int):
        block = np.ascontiguousarray(fused_probs[s : s + chunk].T)
        return _eval_block(block, y[s : s + chunk], kmax)

    starts = range(0, n, chunk)
    parts = list(pool.map(work, starts)) if pool is not None else [work(s) for s in starts]
    scores = _reduce(parts, n, C, kmax)
    return LiveView(scores.accuracy, scores.topk, scores.confusion, np.asarray(fused_probs))


class FusionStack:
    """One split's model probabilities prepared once; fuse + score per slider move.

    The (M, n, C) stack is re-laid once into row blocks of shape (M, C, rows), contiguous.
    Per move, each block is fused by one BLAS call ``w @ block.reshape(M, C*rows)`` (every
    model's values read exactly once) into a preallocated (C, rows) buffer, and argmax,
    true-class rank and confusion counts are computed on it while it is in cache, with
    reductions over the class axis 0 (vectorized). Blocks may be spread over a thread pool
    (numpy releases the GIL). Calls are serialized by a lock, so one instance may be shared
    between sessions (e.g. ``st.cache_resource``).

    Args:
        stack: Probabilities, shape (M, n, C).
        y: True labels, shape (n,).
        threads: Worker threads; None = 2 when n >= 200,000 and 2+ cores, else 1.
        chunk: Rows per block.
    """

    def __init__(self, stack: np.ndarray, y: np.ndarray, threads: int | None = None, chunk: int = 8192):
        stack = np.asarray(stack)
        self.M, self.n, self.C = stack.shape
        _check_classes(self.C)
        self.y = np.ascontiguousarray(y, dtype=np.int64)
        self.chunk = int(chunk)
        self.starts = list(range(0, self.n, self.chunk))
        self.blocks = [
            np.ascontiguousarray(stack[:, s : s + self.chunk].transpose(0, 2, 1), dtype=np.float32)
            for s in self.starts
        ]
        self._out = [np.empty(b.shape[1:], dtype=np.float32) for b in self.blocks]
        if threads is None:
            threads = 2 if (self.n >= 200_000 and (os.cpu_count() or 1) >= 2) else 1
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self._lock = threading.Lock()

    @classmethod
    def from_outputs(cls, outputs: Outputs, models: list[str], split: str = "test", **kw) -> "FusionStack":
        """Build from an :class:`Outputs` for the given models and split."""
        return cls(prob_stack(outputs, models, split), outputs.y[split], **kw)

    def _fuse_block(self, w: np.ndarray, i: int) -> np.ndarray:
        block, out = self.blocks[i], self._out[i]
        np.matmul(w, block.reshape(self.M, -1), out=out.reshape(-1))
        return out

    def _score_block(self, w: np.ndarray, i: int, kmax: int):
        s = self.starts[i]
        return _eval_block(self._fuse_block(w, i), self.y[s : s + self.chunk], kmax)

    def _map(self, fn):
        idx = range(len(self.blocks))
        if self._pool is None:
            return [fn(i) for i in idx]
        return list(self._pool.map(fn, idx))

    def _fused(self) -> np.ndarray:
        if not self._out:
            return np.zeros((0, self.C), np.float32)
        return np.concatenate([o.T for o in self._out])

    def fuse(self, weights) -> np.ndarray:
        """Fused probabilities sum_i w_i b_i, shape (n, C), float32 (a new array)."""
        w = np.asarray(weights, dtype=np.float32)
        with self._lock, blas_threads(1):
            self._map(lambda i: self._fuse_block(w, i))
            return self._fused()

    def evaluate(self, weights, kmax: int = KMAX) -> LiveScores:
        """Fuse with ``weights`` (M,) and return accuracy, top-1..kmax and confusion counts."""
        w = np.asarray(weights, dtype=np.float32)
        with self._lock, blas_threads(1):
            return _reduce(self._map(lambda i: self._score_block(w, i, kmax)), self.n, self.C, kmax)

    def view(self, weights, kmax: int = KMAX) -> LiveView:
        """One slider move: fuse once with ``weights`` (M,), score the fused blocks while they
        are in cache, and return them with the fused probabilities (n, C)."""
        w = np.asarray(weights, dtype=np.float32)
        with self._lock, blas_threads(1):
            scores = _reduce(self._map(lambda i: self._score_block(w, i, kmax)), self.n, self.C, kmax)
            return LiveView(scores.accuracy, scores.topk, scores.confusion, self._fused())

    def close(self) -> None:
        """Stop the worker threads."""
        if self._pool is not None:
            self._pool.shutdown()
