"""The joint space's two text encoders side by side, with uncertainty.

For each text encoder (the word-vector CNN of 001 and the frozen MiniLM) and each seed, one
space with the same lambdas is trained (or loaded) and scored on the **test** pins. Two kinds
of uncertainty are reported per (encoder, task):

- across seeds: the mean and standard deviation of the mean median rank and recall@10 (the
  training's randomness);
- across test queries: a 95% percentile-bootstrap interval of the seed-averaged per-query
  values, and of the MiniLM - CNN difference (paired by query when both encoders score the
  same queries, as they do when every pin has a known word).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..store import Store
from .data import load_embed_data
from .train import EmbedConfig, evaluate, space_vectors, train


@dataclass(frozen=True)
class CompareConfig:
    """Settings of the comparison.

    Attributes:
        lambdas: (lambda1 text-user, lambda2 image-text) of every space.
        seeds: Training seeds per encoder.
        encoders: Text encoders compared (the first is the reference of the differences).
        n_boot: Bootstrap resamples of the test queries.
        base: The other settings of every space.
    """

    lambdas: tuple[float, float] = (0.33, 0.33)
    seeds: tuple[int, ...] = (0, 1, 2)
    encoders: tuple[str, ...] = ("cnn", "minilm")
    n_boot: int = 2000
    base: EmbedConfig = EmbedConfig()


def _boot_ci(values: np.ndarray, n_boot: int, rng) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of ``values`` (Q,) over resampled queries."""
    idx = rng.integers(0, len(values), (n_boot, len(values)))
    means = values[idx].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def compare_text_encoders(store: Store, dataset: str, cfg: CompareConfig = CompareConfig(),
                          progress: bool = False) -> dict[str, pd.DataFrame]:
    """Train/load the spaces and score them (see the module docstring).

    Returns:
        ``runs``: one row per (encoder, seed, task): mean median rank, recall@10, queries;
        ``summary``: per (encoder, task): seed mean and sd of both, and query-bootstrap 95%
        intervals of the seed-averaged values; ``differences``: per task and metric, the
        second encoder minus the first with its query-bootstrap interval.
    """
    rng = np.random.default_rng(0)
    runs, per_query = [], {}
    for enc in cfg.encoders:
        base = replace(cfg.base, text_encoder=enc, lambdas=tuple(cfg.lambdas))
        data = load_embed_data(store, dataset, base.image_model, base.word_model, base.max_words, enc, progress)
        for seed in cfg.seeds:
            sp = train(store, dataset, replace(base, seed=int(seed)), data=data, progress=progress).space
            for task, s in evaluate(data, space_vectors(sp), "test").items():
                runs.append({"encoder": enc, "seed": int(seed), "task": task, "mean_median_rank": s.mean_median_rank,
                             "recall_at_10": s.recall_at_k, "queries": s.n_queries, "candidates": s.n_candidates,
                             "random_median_rank": s.random_median_rank, "random_recall_at_10": s.random_recall_at_k})
                per_query.setdefault((enc, task), []).append(s.per_query)
    runs = pd.DataFrame(runs)
    summary, avg = [], {}
    for (enc, task), lists in per_query.items():
        med = np.mean([m for m, _ in lists], axis=0)
        rec = np.mean([r for _, r in lists], axis=0)
        avg[(enc, task)] = (med, rec)
        r = runs[(runs["encoder"] == enc) & (runs["task"] == task)]
        lo_m, hi_m = _boot_ci(med, cfg.n_boot, rng)
        lo_r, hi_r = _boot_ci(rec, cfg.n_boot, rng)
        summary.append({"encoder": enc, "task": task, "seeds": len(r),
                        "medr_mean": r["mean_median_rank"].mean(), "medr_sd": r["mean_median_rank"].std(ddof=1),
                        "medr_ci_low": lo_m, "medr_ci_high": hi_m,
                        "r10_mean": r["recall_at_10"].mean(), "r10_sd": r["recall_at_10"].std(ddof=1),
                        "r10_ci_low": lo_r, "r10_ci_high": hi_r, "queries": int(r["queries"].iloc[0]),
                        "random_medr": float(r["random_median_rank"].iloc[0]),
                        "random_r10": float(r["random_recall_at_10"].iloc[0])})
    diffs = []
    if len(cfg.encoders) >= 2:
        a, b = cfg.encoders[0], cfg.encoders[1]
        for task in sorted({t for _, t in avg}):
            if (a, task) not in avg or (b, task) not in avg:
                continue
            for i, metric in enumerate(("mean_median_rank", "recall_at_10")):
                x, y = avg[(a, task)][i], avg[(b, task)][i]
                paired = len(x) == len(y)
                if paired:
                    lo, hi = _boot_ci(y - x, cfg.n_boot, rng)
                else:  # different query sets: resample each independently
                    bx = x[rng.integers(0, len(x), (cfg.n_boot, len(x)))].mean(1)
                    by = y[rng.integers(0, len(y), (cfg.n_boot, len(y)))].mean(1)
                    lo, hi = (float(v) for v in np.percentile(by - bx, [2.5, 97.5]))
                diffs.append({"task": task, "metric": metric, "difference": f"{b} - {a}",
                              "value": float(y.mean() - x.mean()), "ci_low": lo, "ci_high": hi, "paired": paired})
    return {"runs": runs, "summary": pd.DataFrame(summary), "differences": pd.DataFrame(diffs)}


def format_comparison(res: dict[str, pd.DataFrame]) -> str:
    """Plain-text tables of :func:`compare_text_encoders`'s result."""
    s = res["summary"]
    lines = ["Text encoders of the joint space on the test pins (mean +- sd over seeds; [95% query-bootstrap "
             "interval of the seed-averaged value])"]
    for _, r in s.iterrows():
        lines.append(f"{r['encoder']:>7} {r['task']:<12} MedR {r['medr_mean']:6.2f} +- {r['medr_sd']:.2f} "
                     f"[{r['medr_ci_low']:.1f}, {r['medr_ci_high']:.1f}]  R@10 {r['r10_mean']:.3f} +- "
                     f"{r['r10_sd']:.3f} [{r['r10_ci_low']:.3f}, {r['r10_ci_high']:.3f}]  (random MedR "
                     f"{r['random_medr']:.1f}, R@10 {r['random_r10']:.3f}; {r['queries']} queries)")
    if len(res["differences"]):
        lines.append("")
        for _, d in res["differences"].iterrows():
            lines.append(f"{d['difference']} {d['task']:<12} {d['metric']:<17} {d['value']:+.3f} "
                         f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" + ("" if d["paired"] else " (unpaired)"))
    return "\n".join(lines)
