"""The joint space's tables (the analogue of 001 Tables 2 and 3 on our data) for the CLI and the note.

:func:`embed_report` trains (or loads) one space per lambda setting, then scores on the
**test** pins: image->text, text->user and image->user retrieval (mean median rank and
recall@10, next to random and, for the user tasks, the Avg-Text / Avg-Image baselines),
the user-interest F1 of every space's user vectors against Avg-Text, Avg-Image and random
vectors, and k-means clusters of the users of the best all-pairs space.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..store import Store
from .data import load_embed_data
from .interests import InterestConfig, interest_table, user_clusters
from .train import EmbedConfig, baseline_vectors, evaluate, space_vectors, train

# 001 Table 2's settings: single pairs, two pairs, all pairs (lambda1 text-user, lambda2 image-text)
SWEEP = ((1.0, 0.0), (0.0, 1.0), (0.0, 0.0), (0.5, 0.5), (0.5, 0.0), (0.0, 0.5), (0.33, 0.33), (0.1, 0.45))
NO_USERS_NOTE = ("This dataset has no users (no saves with a user_id), so only image<->text retrieval "
                 "is trained and scored; the user tasks, interests and clusters are left out.")


def pairs_label(weights: tuple[float, float, float]) -> str:
    """``single pair``, ``two pairs`` or ``all pairs`` of a (l1, l2, l3) setting."""
    n = sum(w > 0 for w in weights)
    return {1: "single pair", 2: "two pairs", 3: "all pairs"}[n]


@dataclass
class EmbedReport:
    """Everything ``pinterest-mm embed`` prints.

    Attributes:
        retrieval: One row per (setting, task): setting, lambdas, pairs, task, mean_median_rank,
            recall_at_10, queries, candidates, val_score, best_epoch; plus ``random``,
            ``avg-text`` and ``avg-image`` rows.
        interests: User-interest F1 per representation (empty without users).
        clusters: Clusters of the main space's users (empty without users).
        main: The tag of the space the clusters (and the Search page's default) use.
        notes: Sentences about what was left out and why.
    """

    dataset: str
    retrieval: pd.DataFrame
    interests: pd.DataFrame
    clusters: pd.DataFrame
    main: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        def records(df):
            return df.replace({np.nan: None}).to_dict(orient="records")

        return {"dataset": self.dataset, "main": self.main, "notes": self.notes,
                "retrieval": records(self.retrieval), "interests": records(self.interests),
                "clusters": records(self.clusters)}


def embed_report(store: Store, dataset: str, settings=SWEEP, base: EmbedConfig = EmbedConfig(),
                 interests: InterestConfig = InterestConfig(), k_clusters: int = 8,
                 progress: bool = False, data=None) -> EmbedReport:
    """Train/load the spaces of ``settings`` and score them (see the module docstring).

    ``data``: preloaded :class:`~pinterest_mm.embed.data.EmbedData` (default: read from the store).
    """
    if data is None:
        data = load_embed_data(store, dataset, base.image_model, base.word_model, base.max_words,
                               base.text_encoder, progress)
    notes = []
    if not data.has_users:
        settings = [(0.0, 1.0)]
        notes.append(NO_USERS_NOTE)
    rows, users, spaces, seen = [], {}, {}, {}
    for lam in settings:
        cfg = replace(base, lambdas=tuple(lam))
        res = train(store, dataset, cfg, data=data, progress=progress)
        sp = res.space
        spaces[cfg.tag] = (cfg, sp)
        users[cfg.tag] = sp.users
        for task, s in evaluate(data, space_vectors(sp), "test").items():
            seen[task] = s
            rows.append({"setting": cfg.tag, "lambdas": "({:g}, {:g}, {:g})".format(*cfg.weights),
                         "pairs": pairs_label(cfg.weights), "task": task,
                         "mean_median_rank": s.mean_median_rank, "recall_at_10": s.recall_at_k,
                         "queries": s.n_queries, "candidates": s.n_candidates,
                         "val_score": sp.meta["val_score"], "best_epoch": sp.meta["best_epoch"]})
    for task, s in seen.items():  # random: same queries and candidates, expected scores
        rows.append({"setting": "random", "lambdas": "", "pairs": "", "task": task,
                     "mean_median_rank": s.random_median_rank, "recall_at_10": s.random_recall_at_k,
                     "queries": s.n_queries, "candidates": s.n_candidates})
    if data.has_users:
        bl = baseline_vectors(data)
        for name, task in (("avg-text", "text->user"), ("avg-image", "image->user")):
            s = evaluate(data, bl[name], "test", tasks=(task,)).get(task)
            if s is not None:
                rows.append({"setting": name, "lambdas": "", "pairs": "baseline", "task": task,
                             "mean_median_rank": s.mean_median_rank, "recall_at_10": s.recall_at_k,
                             "queries": s.n_queries, "candidates": s.n_candidates})
    retrieval = pd.DataFrame(rows)
    all_pairs = {t: v for t, v in spaces.items() if pairs_label(v[0].weights) == "all pairs"} or spaces
    main = min(all_pairs, key=lambda t: all_pairs[t][1].meta["val_score"])
    if data.has_users:
        bl = baseline_vectors(data)
        reps = {"avg-text": bl["avg-text"]["user"], "avg-image": bl["avg-image"]["user"], **users}
        inter = interest_table(data, reps, interests)
        sp = spaces[main][1]
        clusters = user_clusters(data, sp.users, sp.pin_vectors(), k=k_clusters, seed=base.seed)
    else:
        inter, clusters = pd.DataFrame(), pd.DataFrame()
    return EmbedReport(dataset, retrieval, inter, clusters, main, notes)


def format_report(rep: EmbedReport) -> str:
    """Plain-text tables of an :class:`EmbedReport`."""
    out = [f"Joint space of {rep.dataset!r}: cross-modal retrieval on the test pins "
           "(mean median rank, lower is better; recall@10, higher is better)"]
    if len(rep.retrieval):
        wide = rep.retrieval.pivot_table(index=["setting", "lambdas"], columns="task",
                                         values=["mean_median_rank", "recall_at_10"], sort=False)
        wide.columns = [f"{task} {'MedR' if m == 'mean_median_rank' else 'R@10'}" for m, task in wide.columns]
        out.append(wide.to_string(float_format=lambda x: f"{x:.3f}" if x < 1 else f"{x:.1f}"))
        cand = rep.retrieval.drop_duplicates("task").set_index("task")["candidates"]
        out.append("candidates per query: " + ", ".join(f"{t} {int(c)}" for t, c in cand.items()))
    if len(rep.interests):
        out += ["", "User interests from user vectors (linear SVM, C = 1, 5-fold stratified CV; F1):",
                rep.interests.to_string(index=False, float_format=lambda x: f"{x:.3f}")]
    if len(rep.clusters):
        out += ["", f"Clusters of users ({rep.main}):",
                rep.clusters.to_string(index=False, max_colwidth=70)]
    out += [""] + rep.notes if rep.notes else []
    return "\n".join(out)
