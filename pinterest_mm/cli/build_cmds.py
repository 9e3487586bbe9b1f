"""Commands about models: ``models``, ``build``, ``weights``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import add_runtime_options, build_status, open_store, runtime_settings


def cmd_models(args: argparse.Namespace) -> int:
    from ..models.registry import format_models_table, list_models

    specs = list_models(args.pattern)
    if args.json:
        rows = []
        for s in specs:
            ok, why = s.available()
            rows.append(dict(name=s.name, modality=s.modality, family=s.family, dim=s.dim,
                             source=s.source, offline=s.offline, available=ok, reason=why))
        print(json.dumps({"models": rows}, indent=2))
    elif not specs:
        print(f"No model name matches {args.pattern!r}. A pattern matches as a substring, or as "
              "a glob over the whole name when it holds * ? or [ (e.g. 'convnext-*'); "
              "`pinterest-mm models` lists every model.")
    else:
        print(format_models_table(specs))
    return 0


def _profile_or_models(args: argparse.Namespace) -> list[str] | None:
    """The model names of ``--models`` or ``--profile`` (None: neither given)."""
    if getattr(args, "models", None) and getattr(args, "profile", None):
        raise ValueError("Give --models or --profile, not both.")
    if getattr(args, "profile", None):
        from ..models.registry import profile_models

        return [s.name for s in profile_models(args.profile)]
    return [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None


def _c_grid_arg(text: str) -> tuple[float, ...]:
    from ..models.classify import parse_c_grid

    try:
        return parse_c_grid(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_build(args: argparse.Namespace) -> int:
    from ..build import build, format_build_summary

    models = _profile_or_models(args)
    store = open_store()
    store.dataset_info(args.name)
    if getattr(args, "profile", None) in ("thesis", "all"):
        from ..models.registry import get_model
        from ..models.weights_store import missing_hint

        missing = [m for m in models if not get_model(m).available()[0]]
        if missing:
            print(f"{len(missing)} of the {len(models)} models of profile {args.profile!r} have no "
                  f"weights here; the others build. {missing_hint(missing)}", file=sys.stderr)
    from ..models.classify import LogRegConfig

    from ..repeats import RepeatConfig

    repeats = RepeatConfig(repeats=args.repeats) if args.repeats is not None else None  # checked before the build
    logreg = LogRegConfig(c_grid=args.c_grid) if args.c_grid else LogRegConfig()
    results = build(store, args.name, models, progress=not args.quiet, logreg=logreg,
                    runtime=runtime_settings(args), engine=args.engine, address=args.address)
    print(format_build_summary(results))
    from ..coverage import coverage_warnings

    for warning in coverage_warnings(store, args.name, [r["model"] for r in results if r["status"] in ("built", "cached")]):
        print(f"warning: {warning}", file=sys.stderr)
    status = build_status(results, args.name)
    if repeats is not None and status == 0:
        from ..repeats import format_repeats, run_repeats

        print(format_repeats(run_repeats(store, args.name, repeats)))
    return status


def cmd_weights(args: argparse.Namespace) -> int:
    """List, download, pack or unpack the hub models' pretrained weights."""
    from ..models import weights_store as ws
    from ..models.registry import get_model, list_models

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


def register(sub) -> None:
    """Add this module's commands to the ``pinterest-mm`` subparsers."""
    p = sub.add_parser("models", help="list every model the registry knows")
    p.add_argument("pattern", nargs="?", default=None, help="part of a name (convnext) or a glob over names ('effnet-*')")
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
    add_runtime_options(p)
    p.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="where image and frozen text encoders run: local (this process, default) or "
                        "ray (Ray Data pipelines; needs `pip install -e '.[ray]'`); same features")
    p.add_argument("--address", default=None, metavar="auto|HOST:6379",
                   help="Ray cluster to run on with --engine ray, from a node of it (default: a local "
                        "cluster on this machine); ray:// is refused: submit the build with `ray job submit`")
    p.add_argument("--repeats", type=int, default=None, metavar="K",
                   help="after the build, K stratified re-splits (as `report --repeats K`): mean ± sd per model")
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
