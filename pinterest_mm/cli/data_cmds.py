"""Commands that bring data in: ``import``, ``datasets``, ``demo``, ``prepare-hm``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import DEMO_DIR, DEMO_NAME, SPLITS, CleaningConfig, ImportConfig, SplitConfig
from .common import build_status, open_store


def cmd_import(args: argparse.Namespace) -> int:
    from ..data.importer import format_report, import_manifest

    defaults = CleaningConfig()
    config = ImportConfig(
        cleaning=CleaningConfig(
            min_words=args.min_words if args.min_words is not None else defaults.min_words,
            min_per_class=args.min_per_class if args.min_per_class is not None else defaults.min_per_class,
            max_per_class=args.max_per_class if args.max_per_class is not None else defaults.max_per_class,
            merge_case_variants=args.merge_case_variants,
        ),
        split=SplitConfig(seed=args.seed),
    )
    checker = None
    if args.engine == "ray":
        from ..engines.ray_import import RayImportConfig, ray_image_checker

        checker = ray_image_checker(RayImportConfig(address=args.address))
    result = import_manifest(
        open_store(), args.manifest, args.name, config,
        images_root=args.images_root, replace=args.replace, progress=not args.quiet,
        image_checker=checker,
    )
    print(format_report(result.report))
    print(
        f"\nImported {result.name!r}: {result.n_pins:,} pins, {len(result.classes)} classes, "
        f"{result.n_users:,} users; splits " + ", ".join(f"{k} {v:,}" for k, v in result.split_counts.items()) + "."
    )
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    store = open_store(read_only=True)
    df = store.list_datasets() if store.path.exists() else None
    if df is None or df.empty:
        if args.json:
            print(json.dumps({"datasets": []}, indent=2))
        else:
            print("No datasets yet. Import one: pinterest-mm import MANIFEST --name NAME")
        return 0
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
    from ..textable import text_table

    print(text_table(["name", "pins", "classes", "users", "train", "val", "test"], [
        [r["name"], int(r["n_pins"]), int(r["n_classes"]), int(r["n_users"]),
         *(int(r["split_counts"].get(s, 0)) for s in SPLITS)] for r in df.to_dict("records")]))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Import and build the embedded demo unless it is already there."""
    from ..data.importer import format_report, import_manifest

    store = open_store()
    if DEMO_NAME not in store.dataset_names():
        print("Importing the embedded demo dataset ...")
        result = import_manifest(
            store, DEMO_DIR / "manifest.csv", DEMO_NAME, demo_config(), progress=not args.quiet
        )
        print(format_report(result.report))
    else:
        print("Demo dataset already imported.")
    if not args.no_build:
        from ..build import build, format_build_summary

        results = build(store, DEMO_NAME, None, progress=not args.quiet)
        print(format_build_summary(results))
        return build_status(results, DEMO_NAME)
    return 0


def demo_config() -> ImportConfig:
    """The import settings of the embedded demo (small classes: min 30 pins)."""
    return ImportConfig(cleaning=CleaningConfig(min_per_class=30, max_per_class=100))


def cmd_prepare_hm(args: argparse.Namespace) -> int:
    from ..data.sources.hm import write_hm_manifest

    out = write_hm_manifest(Path(args.hm_dir), args.recipe, Path(args.out))
    print(
        f"Wrote {out}. Import it with:\n  pinterest-mm import {out} --name {args.recipe} "
        f"--images-root {args.hm_dir} --min-per-class 100 --max-per-class 100"
    )
    return 0


def register(sub) -> None:
    """Add this module's commands to the ``pinterest-mm`` subparsers."""
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
    p.add_argument("--merge-case-variants", action="store_true",
                   help="merge category names that differ only in case into the most used spelling")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="where the image checks and hashing run: local threads or Ray tasks")
    p.add_argument("--address", default=None,
                   help="with --engine ray: the cluster (auto, ray://HOST:PORT); default a local one")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("datasets", help="list imported datasets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("demo", help="import and build the embedded demo (nothing rebuilt twice)")
    p.add_argument("--no-build", action="store_true", help="import only")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("prepare-hm", help="write a manifest for the H&M sample (hm-section, hm-25)")
    p.add_argument("hm_dir")
    p.add_argument("--recipe", default="hm-section", choices=["hm-section", "hm-25"])
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_prepare_hm)
