"""The ``pinterest-mm`` command line: import, list, build, report, benchmark.

Every command exits 0 on success and non-zero with a one-paragraph reason otherwise.
Heavy modules (torch, models) are imported only by the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import DEMO_DIR, DEMO_NAME, CleaningConfig, ImportConfig, SplitConfig


def _store(read_only: bool = False):
    from .store import Store

    return Store(read_only=read_only)


def cmd_import(args: argparse.Namespace) -> int:
    from .data.importer import format_report, import_manifest

    defaults = CleaningConfig()
    config = ImportConfig(
        cleaning=CleaningConfig(
            min_words=args.min_words if args.min_words is not None else defaults.min_words,
            min_per_class=args.min_per_class if args.min_per_class is not None else defaults.min_per_class,
            max_per_class=args.max_per_class if args.max_per_class is not None else defaults.max_per_class,
        ),
        split=SplitConfig(seed=args.seed),
    )
    result = import_manifest(
        _store(), args.manifest, args.name, config,
        images_root=args.images_root, replace=args.replace, progress=not args.quiet,
    )
    print(format_report(result.report))
    print(
        f"\nImported {result.name!r}: {result.n_pins:,} pins, {len(result.classes)} classes, "
        f"{result.n_users:,} users; splits {result.split_counts}."
    )
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    store = _store()
    df = store.list_datasets()
    if args.json:
        rows = [
            dict(name=r["name"], pins=int(r["n_pins"]), classes=int(r["n_classes"]),
                 users=int(r["n_users"]), splits=r["split_counts"], created_at=str(r["created_at"]))
            for r in df.to_dict("records")
        ]
        print(json.dumps({"datasets": rows}, indent=2))
        return 0
    if df.empty:
        print("No datasets yet. Import one: pinterest-mm import MANIFEST --name NAME")
        return 0
    print(f"{'name':<20} {'pins':>7} {'classes':>7} {'users':>7} {'train':>7} {'val':>6} {'test':>6}")
    for r in df.to_dict("records"):
        s = r["split_counts"]
        print(f"{r['name']:<20} {r['n_pins']:>7,} {r['n_classes']:>7} {r['n_users']:>7,} "
              f"{s.get('train', 0):>7,} {s.get('val', 0):>6,} {s.get('test', 0):>6,}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .models.registry import format_models_table, list_models

    specs = list_models(args.pattern)
    if args.json:
        rows = []
        for s in specs:
            ok, why = s.available()
            rows.append(dict(name=s.name, modality=s.modality, family=s.family, dim=s.dim,
                             source=s.source, offline=s.offline, available=ok, reason=why))
        print(json.dumps({"models": rows}, indent=2))
    else:
        print(format_models_table(specs))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from .build import build, format_build_summary

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    store = _store()
    store.dataset_info(args.name)
    results = build(store, args.name, models, progress=not args.quiet)
    print(format_build_summary(results))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import format_model_report, model_report

    store = _store()
    store.dataset_info(args.name)
    report = model_report(store, args.name)
    if args.thesis:
        from .outputs import load_outputs
        from .thesis import format_thesis_report, thesis_report

        thesis = thesis_report(load_outputs(store, args.name), store=store)
        report = {**report, **thesis}
        text = format_model_report(report) + "\n\n" + format_thesis_report(thesis)
    else:
        text = format_model_report(report)
    if args.json:
        print(json.dumps(report, indent=2, default=_json_default))
    else:
        print(text)
    return 0


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    result = bench.run_benchmarks()
    if args.json:
        print(json.dumps(result, indent=2, default=_json_default))
    else:
        for b in result["benchmarks"]:
            print(f"{b['name']:<40} n={b.get('n_pins', ''):>9} median {b['median_ms']:.2f} ms")
        for key, value in result.items():
            if key != "benchmarks":
                print(f"{key}: {value}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Import and build the embedded demo unless it is already there."""
    from .data.importer import format_report, import_manifest

    store = _store()
    if DEMO_NAME not in store.dataset_names():
        print("Importing the embedded demo dataset ...")
        result = import_manifest(
            store, DEMO_DIR / "manifest.csv", DEMO_NAME, demo_config(), progress=not args.quiet
        )
        print(format_report(result.report))
    else:
        print("Demo dataset already imported.")
    if not args.no_build:
        from .build import build, format_build_summary

        print(format_build_summary(build(store, DEMO_NAME, None, progress=not args.quiet)))
    return 0


def demo_config() -> ImportConfig:
    """The import settings of the embedded demo (small classes: min 30 pins)."""
    return ImportConfig(cleaning=CleaningConfig(min_per_class=30, max_per_class=100))


def cmd_prepare_hm(args: argparse.Namespace) -> int:
    from .data.sources.hm import write_hm_manifest

    out = write_hm_manifest(Path(args.hm_dir), args.recipe, Path(args.out))
    print(
        f"Wrote {out}. Import it with:\n  pinterest-mm import {out} --name {args.recipe} "
        f"--images-root {args.hm_dir} --min-per-class 100 --max-per-class 100"
    )
    return 0


def _lambdas(text: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lambdas {text!r}: give two numbers a,b (e.g. 0.33,0.33)") from None
    return a, b


def cmd_embed(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .embed.interests import InterestConfig
    from .embed.report import SWEEP, embed_report, format_report
    from .embed.train import EmbedConfig

    splits = ("val", "test") if args.interest_labels == "held-out" else ("train", "val", "test")
    base = replace(EmbedConfig(), image_model=args.image_model, word_model=args.word_model,
                   **({"epochs": args.epochs} if args.epochs is not None else {}))
    rep = embed_report(_store(), args.name, settings=args.lambdas or SWEEP, base=base,
                       interests=InterestConfig(threshold=args.threshold, label_splits=splits),
                       progress=not args.quiet)
    print(json.dumps(rep.to_dict(), indent=2) if args.json else format_report(rep))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``pinterest-mm``."""
    parser = argparse.ArgumentParser(
        prog="pinterest-mm",
        description="Predict users' interests from multimodal pins: import, build, fuse, report.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("import", help="import a manifest (CSV/Parquet) as a dataset")
    p.add_argument("manifest", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--min-per-class", type=int, default=None,
                   help=f"keep categories with at least N pins (default {CleaningConfig.min_per_class}; thesis: 1000)")
    p.add_argument("--max-per-class", type=int, default=None,
                   help=f"draw at most N pins per category (default {CleaningConfig.max_per_class}; thesis: 1000)")
    p.add_argument("--min-words", type=int, default=None,
                   help=f"drop pins with fewer cleaned words (default and thesis: {CleaningConfig.min_words})")
    p.add_argument("--seed", type=int, default=0, help="seed of the class draw and splits")
    p.add_argument("--images-root", type=Path, default=None,
                   help="folder image paths are relative to (default: the manifest's folder)")
    p.add_argument("--replace", action="store_true", help="replace an existing dataset of that name")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("datasets", help="list imported datasets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("models", help="list every model the registry knows")
    p.add_argument("pattern", nargs="?", default=None, help="glob on names, e.g. 'effnet*'")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("build", help="extract features, train classifiers, cache probabilities")
    p.add_argument("name")
    p.add_argument("--models", default=None, help="comma-separated model names (default: offline set)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("report", help="per-model figures (and the thesis tables with --thesis)")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.add_argument("--thesis", action="store_true", help="add fusions and the thesis's claims")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("bench", help="fusion + metrics speed benchmark")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="import and build the embedded demo (nothing rebuilt twice)")
    p.add_argument("--no-build", action="store_true", help="import only")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("prepare-hm", help="write a manifest for the H&M sample (hm-section, hm-25)")
    p.add_argument("hm_dir")
    p.add_argument("--recipe", default="hm-section", choices=["hm-section", "hm-25"])
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_prepare_hm)

    p = sub.add_parser("embed", help="users, images and texts in one space: retrieval, interests, clusters")
    p.add_argument("name")
    p.add_argument("--lambdas", type=_lambdas, action="append", default=None, metavar="L1,L2",
                   help="text-user and image-text weights (image-user: 1 - L1 - L2); repeatable; "
                        "default: the 8 settings of seed 001's Table 2")
    p.add_argument("--image-model", default="effnet-lite0", help="built image model whose features are used")
    p.add_argument("--word-model", default="glove-6b-50", help="glove-6b-50, word2vec-train or fasttext-train")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 20)")
    p.add_argument("--threshold", type=float, default=0.2,
                   help="a user is interested in a category holding at least this share of their saves")
    p.add_argument("--interest-labels", choices=["held-out", "all"], default="held-out",
                   help="whose saves define the interest labels: val+test pins (default; the user "
                        "vectors never saw them) or all pins (as seed 001)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.set_defaults(func=cmd_embed)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    from .data.importer import ImportFailed
    from .data.manifest import ManifestError
    from .store import StoreError

    expected: tuple[type[BaseException], ...] = (ManifestError, ImportFailed, StoreError, ValueError,
                                                 FileNotFoundError, PermissionError)
    if args.command in ("build", "demo"):
        from .build import BuildFailed

        expected = (*expected, BuildFailed)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("Interrupted; what finished is kept, run the command again to resume.", file=sys.stderr)
        return 130
    except expected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - last line of defence: one paragraph, no traceback
        print(f"error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
