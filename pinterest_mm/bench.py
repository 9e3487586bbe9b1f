"""Benchmarks of the live fusion path, and synthetic data for tests and benchmarks.

``python -m pinterest_mm.bench`` prints one JSON object::

    {"benchmarks": [{"name", "n_pins", "n_models", "n_classes", "median_ms", ...}],
     "read_ratio_1m": fuse+evaluate time / one read of the 6 models' arrays at 1M pins}

Targets: 29k pins <= 5 ms, 1M pins <= 150 ms and <= 3x one read.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .outputs import SPLITS, ModelInfo, Outputs


# ----------------------------------------------------------------------------- synthetic data
@dataclass(frozen=True)
class SynthModel:
    """One synthetic model: ``signal`` sets its accuracy (logit boost of the true class)."""

    name: str
    family: str
    modality: str
    signal: float
    has_train: bool = True
    feat_dim: int = 0


DEFAULT_SYNTH = (
    SynthModel("img_a", "image", "image", 1.6, True, 24),
    SynthModel("img_b", "image", "image", 1.3, True, 16),
    SynthModel("we_a", "word_embedding", "text", 1.4, True, 12),
    SynthModel("we_b", "word_embedding", "text", 1.1, True, 10),
    SynthModel("tr_a", "transformer", "text", 1.9, False, 0),
)


def synthetic_probs(y: np.ndarray, C: int, signal: float, rng: np.random.Generator) -> np.ndarray:
    """Probabilities softmax(signal * onehot(y) + N(0, 1)), shape (n, C), float32."""
    logits = rng.standard_normal((len(y), C)).astype(np.float32)
    logits[np.arange(len(y)), y] += signal
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def synthetic_outputs(
    n: tuple[int, int, int] = (600, 200, 200),
    C: int = 8,
    models: tuple[SynthModel, ...] = DEFAULT_SYNTH,
    n_users: int = 12,
    seed: int = 0,
    dataset: str = "synthetic",
) -> Outputs:
    """Build an :class:`Outputs` with independent noisy models, features and users.

    Args:
        n: Pins in (train, val, test).
        C: Classes.
        models: Model specs; ``has_train`` False leaves out OOF train probabilities;
            ``feat_dim`` > 0 adds class-informative features.
        n_users: Users; each pin is saved by one user drawn by a per-user class preference.
        seed: Seed.
        dataset: Dataset name.
    """
    rng = np.random.default_rng(seed)
    splits = SPLITS
    y = {s: rng.integers(0, C, k).astype(np.int64) for s, k in zip(splits, n)}
    probs, infos, feats = {}, {}, {}
    for m in models:
        probs[m.name] = {s: synthetic_probs(y[s], C, m.signal, rng) for s in splits if s != "train" or m.has_train}
        acc = {s: float((probs[m.name][s].argmax(1) == y[s]).mean()) for s in ("val", "test")}
        infos[m.name] = ModelInfo(m.name, m.family, m.modality, acc["val"], acc["test"], {"synthetic": True})
        if m.feat_dim:
            # Class means scaled so a linear model on the features is about as accurate as
            # the model's probabilities (separation ~ signal, whatever the dimension).
            means = rng.standard_normal((C, m.feat_dim)).astype(np.float32) * (1.2 * m.signal / np.sqrt(m.feat_dim))
            feats[m.name] = {
                s: (means[y[s]] + rng.standard_normal((len(y[s]), m.feat_dim))).astype(np.float32)
                for s in splits
            }
            if m.family == "image":  # CNN pooled features are non-negative (post-ReLU)
                feats[m.name] = {s: np.maximum(f + 0.5, 0) for s, f in feats[m.name].items()}
    pin_ids = {s: np.array([f"{s}-{i}" for i in range(len(y[s]))], dtype=object) for s in splits}
    pref = rng.dirichlet(np.full(C, 0.3), size=n_users)  # (U, C)
    rows = []
    for s in splits:
        for i, lab in enumerate(y[s]):
            w = pref[:, lab] / pref[:, lab].sum()
            u = int(rng.choice(n_users, p=w))
            rows.append((pin_ids[s][i], f"user{u:03d}", s, i, int(lab)))
    saves = pd.DataFrame(rows, columns=["pin_id", "user_id", "split", "split_row", "label"])
    return Outputs(
        dataset=dataset,
        classes=[f"class{c}" for c in range(C)],
        y=y,
        pin_ids=pin_ids,
        probs=probs,
        models=infos,
        saves=saves,
        feature_loader=lambda name: feats.get(name),
    )


# ----------------------------------------------------------------------------- benchmarks
def _median_ms(fn, repeats: int, warmup: int = 2) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1e3), float(np.min(ts) * 1e3)


def _random_stack(M: int, n: int, C: int, rng) -> np.ndarray:
    """(M, n, C) float32 random rows normalized to sum to 1, filled in place (low peak memory)."""
    st = np.empty((M, n, C), np.float32)
    step = 200_000
    for m in range(M):
        for s in range(0, n, step):
            block = rng.random((min(step, n - s), C), dtype=np.float32)
            block /= block.sum(1, keepdims=True)
            st[m, s : s + step] = block
    return st


def run_benchmarks(sizes: tuple[int, ...] = (29_000, 1_000_000), n_models: int = 11, n_fused: int = 6,
                   C: int = 29, repeats: int = 15, seed: int = 0) -> dict:
    """Time fusing ``n_fused`` of ``n_models`` cached models + accuracy + top-1..10 + confusion.

    For each size the 11 models' (n, C) arrays are generated, 6 are selected and prepared
    once as a :class:`~pinterest_mm.fusion.live.FusionStack` (as the app does when the
    selection changes); each timed call is one slider move: new MM weights, fuse, evaluate.
    "One read" is ``np.add.reduce`` over the 6 models' arrays (each value read once, a
    small output written), timed in the same run.

    Returns:
        ``{"benchmarks": [...], "read_ratio_1m": float | None, "cpu_count": int}``.
    """
    from .fusion.late import mm_weights
    from .fusion.live import FusionStack

    rng = np.random.default_rng(seed)
    out, ratio = [], None
    for n in sizes:
        y = rng.integers(0, C, n).astype(np.int64)
        accs = rng.uniform(0.35, 0.6, n_models)
        chosen = np.argsort(-accs)[:n_fused]
        cache = _random_stack(n_models, n, C, rng)  # every model's (n, C) array
        t0 = time.perf_counter()
        stack = cache[chosen]  # the selected models, gathered once per selection change
        fs = FusionStack(stack, y)
        prep_ms = (time.perf_counter() - t0) * 1e3
        ls = iter(np.linspace(1, 5, 10_000))
        med, best = _median_ms(lambda: fs.evaluate(mm_weights(accs[chosen], next(ls))), repeats)
        read_med, read_best = _median_ms(lambda: np.add.reduce(stack, axis=0), repeats)
        copy_med, _ = _median_ms(lambda: np.copy(stack), max(3, repeats // 3), warmup=1)
        fs.close()
        row = {
            "name": f"fuse{n_fused}of{n_models}+accuracy+topk10+confusion",
            "n_pins": n, "n_models": n_fused, "n_models_cached": n_models, "n_classes": C,
            "median_ms": round(med, 3), "min_ms": round(best, 3),
            "read_median_ms": round(read_med, 3), "read_min_ms": round(read_best, 3),
            "copy_median_ms": round(copy_med, 3),
            "ratio_to_read": round(med / read_med, 3),
            "prepare_ms": round(prep_ms, 1),
            "target_ms": 5.0 if n <= 29_000 else 150.0,
            "repeats": repeats,
        }
        row["meets_target"] = bool(med <= row["target_ms"] and (n < 1_000_000 or row["ratio_to_read"] <= 3))
        out.append(row)
        if n == 1_000_000:
            ratio = row["ratio_to_read"]
        del stack, fs, cache
    return {"benchmarks": out, "read_ratio_1m": ratio, "cpu_count": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    """Print the benchmark JSON object to stdout."""
    print(json.dumps(run_benchmarks(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
