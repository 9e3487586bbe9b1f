"""Search speed of the joint space: one query, warm, on synthetic spaces of growing size.

Times (medians of ``--repeats`` queries) the exact NumPy search over N unit pin vectors
(D = 256), and for N = 30,000 the whole text query of the Search page: cleaning + word ids +
text CNN + nearest 12 pins + nearest 12 users + the result tables.

    python benchmarks/bench_embed_search.py [--sizes 30000,200000,1000000] [--repeats 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pinterest_mm.embed.model import JointModel  # noqa: E402
from pinterest_mm.embed.search import SearchContext, nearest  # noqa: E402
from pinterest_mm.embed.space import JointSpace, unit  # noqa: E402


def median_ms(fn, repeats: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def synthetic_context(n: int, k_users: int, dim: int = 256, vocab: int = 20_000, seed: int = 0) -> SearchContext:
    rng = np.random.default_rng(seed)
    words = [f"word{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{chr(97 + i // 676 % 26)}" for i in range(vocab)]
    vectors = np.concatenate([np.zeros((1, 50), np.float32), rng.normal(size=(vocab, 50)).astype(np.float32)])
    model = JointModel(1280, vectors, rng.normal(size=(k_users, 50)).astype(np.float32), dim=dim).eval()
    V = unit(rng.normal(size=(n, dim)))
    users = unit(rng.normal(size=(k_users, dim)))
    cats = np.array(["Fashion", "Food", "Travel", "Home"])[rng.integers(0, 4, n)]
    ids = [f"p{i}" for i in range(n)]
    uids = [f"u{i}" for i in range(k_users)]
    space = JointSpace("bench", {"max_words": 20, "image_model": "effnet-lite0"}, ids, V, V,
                       np.ones(n, bool), np.ones(n, bool), uids, users, {"vocab": words}, model)
    pins = pd.DataFrame({"pin_id": ids, "category": cats, "description": "a pin", "image": "", "split": "test"})
    saves = pd.DataFrame({"pin_id": ids, "user_id": [uids[i % k_users] for i in range(n)], "row": np.arange(n)})
    return SearchContext(space, pins, saves, sorted(set(cats)), V, users)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="30000,200000,1000000")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    out = {"exact_numpy_ms": {}}
    rng = np.random.default_rng(1)
    for n in (int(s) for s in a.sizes.split(",")):
        M = unit(rng.normal(size=(n, 256)))
        q = unit(rng.normal(size=(1, 256)))[0]
        out["exact_numpy_ms"][n] = round(median_ms(lambda: nearest(M, q, 12), a.repeats), 2)
        del M
    ctx = synthetic_context(30_000, 2_000)
    out["text_query_30000_pins_ms"] = round(median_ms(
        lambda: ctx.search(ctx.space.embed_texts(["worda wordb summer dress with flowers"])[0], 12), a.repeats), 2)
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for n, ms in out["exact_numpy_ms"].items():
            print(f"exact NumPy nearest 12 of {n:>9,} vectors (D = 256): {ms:8.2f} ms")
        print(f"whole text query, 30,000 pins + 2,000 users:       {out['text_query_30000_pins_ms']:8.2f} ms")


if __name__ == "__main__":
    main()
