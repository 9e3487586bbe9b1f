"""The ``pinterest-mm`` command line: import, list, build, report, benchmark.

Every command exits 0 on success and non-zero with a one-paragraph reason otherwise: 2 for a
known problem (bad input, a damaged, locked, busy or read-only store, no model built), 3 when
a build saved some models but others failed, 1 for anything unexpected, 130 on Ctrl-C.
Commands that only read (``datasets``, ``report``) open the store read-only, so they work on a
read-only filesystem and while the app serves it. Heavy modules (torch, models) are imported
only by the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import DEMO_DIR, DEMO_NAME, SPLITS, CleaningConfig, ImportConfig, SplitConfig

PARTIAL_BUILD = 3  # exit status of a build that saved some models while others failed


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
            merge_case_variants=args.merge_case_variants,
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
    store = _store(read_only=True)
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
    from .textable import text_table

    print(text_table(["name", "pins", "classes", "users", "train", "val", "test"], [
        [r["name"], int(r["n_pins"]), int(r["n_classes"]), int(r["n_users"]),
         *(int(r["split_counts"].get(s, 0)) for s in SPLITS)] for r in df.to_dict("records")]))
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


def _profile_or_models(args: argparse.Namespace) -> list[str] | None:
    """The model names of ``--models`` or ``--profile`` (None: neither given)."""
    if getattr(args, "models", None) and getattr(args, "profile", None):
        raise ValueError("Give --models or --profile, not both.")
    if getattr(args, "profile", None):
        from .models.registry import profile_models

        return [s.name for s in profile_models(args.profile)]
    return [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None


def _c_grid_arg(text: str) -> tuple[float, ...]:
    from .models.classify import parse_c_grid

    try:
        return parse_c_grid(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_build(args: argparse.Namespace) -> int:
    from .build import build, format_build_summary

    models = _profile_or_models(args)
    store = _store()
    store.dataset_info(args.name)
    if getattr(args, "profile", None) in ("thesis", "all"):
        from .models.registry import get_model
        from .models.weights_store import missing_hint

        missing = [m for m in models if not get_model(m).available()[0]]
        if missing:
            print(f"{len(missing)} of the {len(models)} models of profile {args.profile!r} have no "
                  f"weights here; the others build. {missing_hint(missing)}", file=sys.stderr)
    from .models.classify import LogRegConfig

    logreg = LogRegConfig(c_grid=args.c_grid) if args.c_grid else LogRegConfig()
    results = build(store, args.name, models, progress=not args.quiet, logreg=logreg,
                    runtime=_runtime_settings(args))
    print(format_build_summary(results))
    return _build_status(results, args.name)


def _build_status(results: list[dict], dataset: str) -> int:
    """0 when every requested model is built or cached; else say which are not and return 3."""
    missing = [r for r in results if r["status"] not in {"built", "cached"}]
    if not missing:
        return 0
    names = ", ".join(f"{r['model']} ({r['status']})" for r in missing)
    print(
        f"error: {len(missing)} of {len(results)} models were not built: {names}; the reasons "
        "are printed above. The others are saved. Fix the cause, then run "
        f"`pinterest-mm build {dataset} --models {','.join(r['model'] for r in missing)}`.",
        file=sys.stderr,
    )
    return PARTIAL_BUILD


def cmd_weights(args: argparse.Namespace) -> int:
    """List, download, pack or unpack the hub models' pretrained weights."""
    from .models import weights_store as ws
    from .models.registry import get_model, list_models

    action = args.action or "list"
    names = _profile_or_models(args)
    specs = [get_model(n) for n in names] if names is not None else None
    if action == "list":
        rows = ws.weights_status(specs)
        if args.json:
            print(json.dumps({"weights": [
                dict(model=r.model, source=r.source, thesis=r.thesis, found=r.found is not None,
                     path=str(r.found) if r.found else None, size=r.size, looks=list(r.looks))
                for r in rows]}, indent=2))
        else:
            print(ws.format_weights_table(rows))
        return 0
    if action == "download":
        results = ws.download(specs if specs is not None else [s for s in list_models() if s.thesis],
                              progress=not args.quiet)
        for r in results:
            print(f"{r['model']:<26} {r['status']:<10} {', '.join(r['files'])}")
        return 0
    if action == "pack":
        manifest = ws.pack(specs if specs is not None else list_models(), Path(args.dir), progress=not args.quiet)
        models = sorted({e["model"] for e in manifest["files"]})
        size = sum(e["size"] for e in manifest["files"])
        print(f"Packed {len(models)} models ({size / 2**30:.2f} GiB) into {args.dir}: {', '.join(models)}.")
        if manifest["missing"]:
            print(f"Not on this machine (not packed): {', '.join(manifest['missing'])}.")
        print(f"Copy the folder to the other machine and run: pinterest-mm weights unpack {args.dir}")
        return 0
    placed = ws.unpack(Path(args.dir), progress=not args.quiet)
    print(f"Unpacked and checked {len(placed)} models: {', '.join(placed)}. They build without any variable set.")
    return 0


def _runtime_settings(args: argparse.Namespace):
    """The image models' inference settings of ``build --backend/--threads/--workers``."""
    from .models.base import pick_device
    from .models.runtimes import RuntimeSettings, resolve_backend

    # an unknown, missing or precision-less runtime is a one-paragraph error before any work
    resolve_backend(args.backend, pick_device(None), args.precision)
    return RuntimeSettings(backend=args.backend, precision=args.precision, threads=args.threads,
                           workers=args.workers)


def cmd_report(args: argparse.Namespace) -> int:
    from .report import format_model_report, model_report

    store = _store(read_only=True)  # fused results are not cached: nothing is written
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
        print(_dumps(report))
    else:
        print(text)
    return 0


def _fusion_config(args: argparse.Namespace) -> dict:
    """The fusion config given on the command line (only the options set)."""
    cfg: dict = {}
    if args.models:
        cfg["models"] = tuple(m.strip() for m in args.models.split(",") if m.strip())
    for key in ("l", "lam", "image_model", "text_model"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    return cfg


def cmd_predict(args: argparse.Namespace) -> int:
    from .api import Lab
    from .textable import text_table

    if args.manifest is not None:
        if args.image is not None or args.text is not None:
            raise ValueError("Give either --manifest (many pins) or --image/--text (one pin), not both.")
        if args.out is None:
            raise ValueError("--manifest needs --out FILE (.csv or .parquet) for the predictions.")
    elif args.image is None and not args.text:
        raise ValueError("Give a pin: --image PATH and/or --text TEXT, or --manifest FILE --out FILE.")
    if args.top_k < 1:
        raise ValueError(f"--top-k must be 1 or more, not {args.top_k}.")
    ds = Lab().dataset(args.name)
    cfg = _fusion_config(args)
    if args.manifest is not None:
        summary = ds.predict_file(args.manifest, args.out, args.method, images_root=args.images_root,
                                  k=args.top_k, batch_size=args.batch_size, progress=not args.quiet, **cfg)
        if args.json:
            print(_dumps(summary))
        else:
            print(f"Predicted {summary['pins']:,} pins ({summary['with_image']:,} with an image, "
                  f"{summary['with_text']:,} with a description) with {args.method}; "
                  f"{summary['unpredicted']:,} got no fused prediction, {summary['notes']:,} had an "
                  f"input problem (see the note column). Wrote {summary['out']}.")
        return 0
    pin = ds.predict(image=args.image, text=args.text, method=args.method, **cfg)
    res = ds.fuse(args.method, **cfg)
    votes = {"fused": pin.fused, **pin.probs}
    if args.json:
        print(_dumps({
            "dataset": ds.name, "method": args.method, "chosen": res.chosen, "weights": pin.weights,
            "image_share": pin.image_share,
            "top_k": {m: [{"category": c, "probability": p} for c, p in ds.top_k(v, args.top_k)]
                      for m, v in votes.items() if v is not None},
            "probabilities": {m: dict(zip(ds.classes, v.tolist())) for m, v in votes.items() if v is not None},
            "skipped": pin.skipped,
        }))
        return 0
    rows = [[m, r, c, p, pin.weights.get(m) if r == 1 else None]
            for m, v in votes.items() if v is not None for r, (c, p) in enumerate(ds.top_k(v, args.top_k), 1)]
    print(f"Dataset {ds.name}, fusion {args.method} ({_setting(res.chosen)})")
    print(text_table(["source", "rank", "category", "probability", "weight"], rows))
    if pin.fused is None:
        print("No model of the fusion could vote on this pin.")
    for m, why in pin.skipped.items():
        print(f"{m}: no vote, {why}")
    return 0 if pin.fused is not None else 2


def _setting(chosen: dict) -> str:
    from .compare import short_setting

    return short_setting(chosen) or "defaults"


def _dumps(obj) -> str:
    """Indented JSON; numpy values as numbers and lists, anything else as text."""
    from .jsonable import to_json_lenient

    return json.dumps(obj, indent=2, default=to_json_lenient)


def cmd_bench(args: argparse.Namespace) -> int:
    if getattr(args, "bench_what", None) == "extract":
        return cmd_bench_extract(args)
    from . import bench

    result = bench.run_benchmarks()
    if args.json:
        print(_dumps(result))
    else:
        from .textable import text_table

        print(text_table(["benchmark", "pins", "median ms"],
                         [[b["name"], b.get("n_pins"), b["median_ms"]] for b in result["benchmarks"]], digits=2))
        for key, value in result.items():
            if key != "benchmarks":
                print(f"{key}: {value}")
    return 0


def cmd_bench_extract(args: argparse.Namespace) -> int:
    from .bench_extract import ExtractBenchConfig, format_extract_bench, run_extract_bench

    backends = tuple(b.strip() for b in args.backend.split(",") if b.strip()) if args.backend else None
    config = ExtractBenchConfig(model=args.model, backends=backends, images=args.images, n=args.n,
                                repeats=args.repeats, batch_size=args.batch_size,
                                threads=args.threads, workers=args.workers)
    result = run_extract_bench(config)
    print(json.dumps(result, indent=2) if args.json else format_extract_bench(result))
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _add_runtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=_positive, default=None,
                   help="intra-op threads of the network (default: one per core; env PINTEREST_MM_THREADS)")
    p.add_argument("--workers", type=_positive, default=None,
                   help="image-decoding threads (default: one per core; env PINTEREST_MM_DECODE_WORKERS)")


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

        results = build(store, DEMO_NAME, None, progress=not args.quiet)
        print(format_build_summary(results))
        return _build_status(results, DEMO_NAME)
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
    p.add_argument("--merge-case-variants", action="store_true",
                   help="merge category names that differ only in case into the most used spelling")
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
    p.add_argument("--profile", default=None, choices=["offline", "thesis", "all"],
                   help="offline: the packaged models (default); thesis: the thesis's eleven; all")
    p.add_argument("--backend", default=None, choices=["torch", "onnxruntime", "openvino"],
                   help="inference runtime of the image models (default: onnxruntime on CPU when "
                        "installed, torch on a GPU; env PINTEREST_MM_BACKEND)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="image-model precision (default fp32; bf16: OpenVINO only, features move)")
    _add_runtime_options(p)
    p.add_argument("--c-grid", default=None, type=_c_grid_arg, metavar="C1,C2,...",
                   help="C values the logistic regressions try by CV (default: the thesis grid "
                        "0.1,0.01,0.001,0.0001); a model whose C lands on the grid's edge is flagged by `report`")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("weights", help="pretrained weights: list, download, pack/unpack for air-gapped machines")
    wsub = p.add_subparsers(dest="action")
    p.add_argument("--json", action="store_true", help="list as JSON")
    for action, text in (("list", "where the lab looks for each model's weights, found or not, size"),
                         ("download", "fetch weights once (internet), resumable (default: --profile thesis)"),
                         ("pack", "copy the weights here into DIR with checksums"),
                         ("unpack", "check DIR's checksums and place its weights into the local caches")):
        w = wsub.add_parser(action, help=text)
        if action in ("pack", "unpack"):
            w.add_argument("dir")
        if action != "unpack":
            w.add_argument("--models", default=None, help="comma-separated model names")
            w.add_argument("--profile", default=None, choices=["offline", "thesis", "all"])
        w.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
        w.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_weights, models=None, profile=None, quiet=False)

    p = sub.add_parser("report", help="per-model figures (and the thesis tables with --thesis)")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.add_argument("--thesis", action="store_true", help="add fusions and the thesis's claims")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("predict", help="predict new pins: each model's and the fused top-k")
    p.add_argument("name", help="the dataset whose built models predict")
    p.add_argument("--image", type=Path, default=None, help="the pin's image file")
    p.add_argument("--text", default=None, help="the pin's description")
    p.add_argument("--manifest", type=Path, default=None,
                   help="a CSV/Parquet table of pins (image and/or description columns, pin_id optional)")
    p.add_argument("--out", type=Path, default=None, help="with --manifest: the .csv or .parquet to write")
    p.add_argument("--images-root", type=Path, default=None,
                   help="with --manifest: folder image paths are relative to (default: the table's folder)")
    p.add_argument("--method", default="mm",
                   help="fusion with per-model weights: mm (default), lambda, equal, optimized, log_linear, best_single")
    p.add_argument("--l", type=float, default=None, help="MM / log-linear l (default: chosen on validation)")
    p.add_argument("--lam", type=float, default=None, help="lambda of lambda fusion (default: chosen on validation)")
    p.add_argument("--models", default=None, help="comma-separated models to fuse (default: the thesis selection)")
    p.add_argument("--image-model", default=None, help="lambda fusion's image model")
    p.add_argument("--text-model", default=None, help="lambda fusion's text model")
    p.add_argument("--top-k", type=int, default=3, help="classes shown per model (default 3)")
    p.add_argument("--batch-size", type=int, default=32, help="with --manifest: pins predicted together")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("bench", help="fusion + metrics speed benchmark (`bench extract`: feature extraction)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)
    bench_sub = p.add_subparsers(dest="bench_what")
    q = bench_sub.add_parser("extract", help="images/s of each inference runtime vs a naive loop")
    q.add_argument("--model", default="effnet-lite0", help="an image model (default effnet-lite0)")
    q.add_argument("--backend", default=None,
                   help="comma-separated runtimes, e.g. onnxruntime,openvino:bf16 (default: all installed)")
    q.add_argument("--images", type=Path, default=None, help="a folder of JPEG/PNG files (default: generated pins)")
    q.add_argument("--n", type=_positive, default=128, help="images (default 128)")
    q.add_argument("--repeats", type=_positive, default=3, help="repeats; medians are shown (default 3)")
    q.add_argument("--batch-size", type=_positive, default=32)
    _add_runtime_options(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_bench)

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
    from .locks import DatasetBusy
    from .store import StoreError

    expected: tuple[type[BaseException], ...] = (ManifestError, ImportFailed, StoreError, DatasetBusy,
                                                 ValueError, FileNotFoundError, PermissionError)
    if args.command in ("build", "demo"):
        from .build import BuildFailed

        expected = (*expected, BuildFailed)
    if args.command == "weights":
        from .models.weights_store import WeightsStoreError

        expected = (*expected, WeightsStoreError)
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
