"""Cross-modal retrieval scores: the mean median rank of the true items (001 §4.2) and recall@k.

A query (e.g. a test pin's image) ranks every candidate (every test pin's text, or every
user) by cosine similarity. The rank of a true candidate is 1 + the number of candidates
scored strictly higher; a query with several true candidates (a pin saved by several users)
takes the median of their ranks. Averaged over queries: the mean median rank (1 is perfect).
A random ranking gives (K + 1) / 2 in expectation for K candidates (the median of a random
subset of 1..K is symmetric around (K + 1) / 2) and recall@k = k / K.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np


@dataclass
class RetrievalScore:
    """One retrieval task's scores.

    Attributes:
        task: e.g. ``image->text``.
        n_queries: Queries scored.
        n_candidates: K, candidates per query.
        mean_median_rank: Mean over queries of the median rank of the true candidates.
        recall_at_k: Mean over queries of the share of true candidates in the top k.
        k: The k of recall@k.
        random_median_rank: (K + 1) / 2; random_recall_at_k: min(k, K) / K.
        per_query: (median rank (Q,), recall@k (Q,)) of each query, for intervals (not in
            :meth:`to_dict`).
    """

    task: str
    n_queries: int
    n_candidates: int
    mean_median_rank: float
    recall_at_k: float
    k: int
    random_median_rank: float
    random_recall_at_k: float
    per_query: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def normalized_rank(self) -> float:
        """Mean median rank / K (001's normalized rank; lower is better)."""
        return self.mean_median_rank / max(self.n_candidates, 1)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "per_query"}
        return {**d, "normalized_rank": self.normalized_rank}


def true_ranks(scores: np.ndarray, truth: list[np.ndarray]) -> list[np.ndarray]:
    """Ranks (1 = best) of the true candidates of each query.

    Args:
        scores: (Q, K) similarity of each query to each candidate.
        truth: Per query, the indices of its true candidates.

    Returns:
        Per query, the ranks of its true candidates (same order as ``truth``).
    """
    out = []
    for q, t in enumerate(truth):
        s = scores[q]
        out.append(1 + (s[None, :] > s[np.asarray(t)][:, None]).sum(1))
    return out


def score_ranks(task: str, ranks: list[np.ndarray], n_candidates: int, k: int = 10) -> RetrievalScore:
    """Summarize the true candidates' ranks of every query (see the module docstring)."""
    med = np.array([np.median(r) for r in ranks], np.float64)
    rec = np.array([np.mean(r <= k) for r in ranks], np.float64)
    K = max(int(n_candidates), 1)
    return RetrievalScore(
        task=task, n_queries=len(ranks), n_candidates=int(n_candidates),
        mean_median_rank=float(med.mean()) if len(med) else float("nan"),
        recall_at_k=float(rec.mean()) if len(rec) else float("nan"), k=k,
        random_median_rank=(K + 1) / 2, random_recall_at_k=min(k, K) / K, per_query=(med, rec),
    )


def retrieve(task: str, queries: np.ndarray, candidates: np.ndarray, truth: list[np.ndarray],
             k: int = 10) -> RetrievalScore:
    """Score a retrieval task from embeddings.

    Args:
        task: Its name.
        queries: (Q, D) query vectors; candidates: (K, D) candidate vectors (cosine: rows are
            normalized here).
        truth: Per query, the indices of its true candidates (non-empty).
    """
    def unit(X):
        X = np.asarray(X, np.float32)
        return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)

    scores = unit(queries) @ unit(candidates).T
    return score_ranks(task, true_ranks(scores, truth), len(candidates), k)
