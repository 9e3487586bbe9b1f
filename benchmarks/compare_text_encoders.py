"""The joint space's text encoders (word-vector CNN vs frozen MiniLM) on a built dataset, with
uncertainty over seeds and test queries (see ``pinterest_mm.embed.compare``).

    python benchmarks/compare_text_encoders.py demo [--seeds 0,1,2] [--lambdas 0.33,0.33] [--json]

Needs the dataset's image features (``pinterest-mm build NAME --models effnet-lite0``); the
spaces are trained into the store (``PINTEREST_MM_HOME``) or loaded when already there.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pinterest_mm.embed.compare import CompareConfig, compare_text_encoders, format_comparison  # noqa: E402
from pinterest_mm.embed.train import EmbedConfig  # noqa: E402
from pinterest_mm.store import Store  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--lambdas", default="0.33,0.33")
    ap.add_argument("--image-model", default="effnet-lite0")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    cfg = CompareConfig(lambdas=tuple(float(x) for x in a.lambdas.split(",")),
                        seeds=tuple(int(x) for x in a.seeds.split(",")),
                        base=replace(EmbedConfig(), image_model=a.image_model))
    res = compare_text_encoders(Store(), a.dataset, cfg, progress=not a.json)
    if a.json:
        print(json.dumps({k: v.to_dict(orient="records") for k, v in res.items()}, indent=2, default=float))
    else:
        print(format_comparison(res))


if __name__ == "__main__":
    main()
