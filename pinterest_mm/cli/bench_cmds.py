"""Speed benchmarks: ``bench`` (fusion + metrics), ``bench extract`` and ``bench scale``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import add_runtime_options, dumps, positive_int


def cmd_bench(args: argparse.Namespace) -> int:
    if getattr(args, "bench_what", None) == "extract":
        return cmd_bench_extract(args)
    if getattr(args, "bench_what", None) == "scale":
        return cmd_bench_scale(args)
    if getattr(args, "bench_what", None) == "index":
        return cmd_bench_index(args)
    from .. import bench

    result = bench.run_benchmarks()
    if args.json:
        print(dumps(result))
    else:
        from ..textable import text_table

        print(text_table(["benchmark", "pins", "median ms"],
                         [[b["name"], b.get("n_pins"), b["median_ms"]] for b in result["benchmarks"]], digits=2))
        for key, value in result.items():
            if key != "benchmarks":
                print(f"{key}: {value}")
    return 0


def cmd_bench_extract(args: argparse.Namespace) -> int:
    from ..bench_extract import ExtractBenchConfig, format_extract_bench, run_extract_bench

    backends = tuple(b.strip() for b in args.backend.split(",") if b.strip()) if args.backend else None
    config = ExtractBenchConfig(model=args.model, backends=backends, images=args.images, n=args.n,
                                repeats=args.repeats, batch_size=args.batch_size,
                                threads=args.threads, workers=args.workers)
    result = run_extract_bench(config)
    print(json.dumps(result, indent=2) if args.json else format_extract_bench(result))
    return 0


def cmd_bench_scale(args: argparse.Namespace) -> int:
    import sys

    from ..bench_scale import ScaleBenchConfig, format_scale_bench, run_scale_bench

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    config = ScaleBenchConfig(pins=args.pins, engine=args.engine, models=models, seed=args.seed, keep=args.keep)

    def echo(r) -> None:
        print(f"{r.stage}: {r.seconds:.1f} s, peak RSS {r.peak_rss_mb:.0f} MB, {json.dumps(r.extra, default=str)}",
              file=sys.stderr, flush=True)

    result = run_scale_bench(config, echo=echo)  # stage lines on stderr as they finish, --json too
    print(dumps(result) if args.json else format_scale_bench(result))
    return 0


def cmd_bench_index(args: argparse.Namespace) -> int:
    from ..embed.index import IndexConfig
    from ..embed.index_bench import BACKENDS, IndexBenchConfig, format_index_bench, run_index_bench

    def sizes(text: str) -> tuple[int, ...]:
        return tuple(int(float(x)) for x in text.split(",") if x.strip())

    cfg = IndexBenchConfig(sizes=sizes(args.sizes), glove_sizes=sizes(args.glove_sizes), queries=args.queries,
                           index=IndexConfig(target_recall=args.recall), threads=sizes(args.threads),
                           backends=BACKENDS if args.backends == "all" else
                           tuple(b.strip() for b in args.backends.split(",") if b.strip()))
    result = run_index_bench(cfg, progress=not args.json)
    print(dumps(result) if args.json else format_index_bench(result))
    return 0


def register(sub) -> None:
    """Add this module's commands to the ``pinterest-mm`` subparsers."""
    p = sub.add_parser("bench", help="fusion + metrics speed benchmark (`bench extract`: feature extraction)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)
    bench_sub = p.add_subparsers(dest="bench_what")
    q = bench_sub.add_parser("extract", help="images/s of each inference runtime vs a naive loop")
    q.add_argument("--model", default="effnet-lite0", help="an image model (default effnet-lite0)")
    q.add_argument("--backend", default=None,
                   help="comma-separated runtimes, e.g. onnxruntime,openvino:bf16 (default: all installed)")
    q.add_argument("--images", type=Path, default=None, help="a folder of JPEG/PNG files (default: generated pins)")
    q.add_argument("--n", type=positive_int, default=128, help="images (default 128)")
    q.add_argument("--repeats", type=positive_int, default=3, help="repeats; medians are shown (default 3)")
    q.add_argument("--batch-size", type=positive_int, default=32)
    add_runtime_options(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_bench)
    r = bench_sub.add_parser("scale", help="generate N pins, then time import, build, report and a slider move")
    r.add_argument("--pins", type=positive_int, default=10_000, help="generated pins N (default 10,000)")
    r.add_argument("--engine", choices=("local", "ray"), default="local", help="where the build runs")
    r.add_argument("--models", default="effnet-lite0,glove-6b-50,tfidf-lr",
                   help="models built (default: one image, one word-vector model, TF-IDF)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--keep", type=Path, default=None, help="keep the data and store in this folder")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_bench)
    q = bench_sub.add_parser("index", help="joint-space search: exact NumPy vs faiss indexes (latency, recall@10)")
    q.add_argument("--sizes", default="30000,200000,1000000", help="clustered vector counts (D = 256)")
    q.add_argument("--glove-sizes", default="399000", help="GloVe word-vector counts (real features)")
    q.add_argument("--backends", default="all", help="comma-separated, of numpy,flat,ivf,ivf4,hnsw (default all)")
    q.add_argument("--threads", default="1", help="faiss thread counts, e.g. 1,2 (each faiss index once per count)")
    q.add_argument("--queries", type=positive_int, default=200, help="queries per set (half tune, half measure)")
    q.add_argument("--recall", type=float, default=0.95, help="recall@10 nprobe / efSearch are tuned to")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_bench)
