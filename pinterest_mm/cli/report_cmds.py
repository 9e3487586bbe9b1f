"""Commands that read built models: ``report``, ``predict``, ``embed``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import dumps, open_store


def cmd_report(args: argparse.Namespace) -> int:
    from ..report import format_model_report, model_report

    repeats = None
    if args.repeats is not None:
        from ..repeats import RepeatConfig

        repeats = RepeatConfig(repeats=args.repeats)  # a bad K is refused before any work
    store = open_store(read_only=True)  # fused results are not cached: nothing is written
    store.dataset_info(args.name)
    report = model_report(store, args.name)
    if args.thesis:
        from ..outputs import load_outputs
        from ..thesis import format_thesis_report, thesis_report

        thesis = thesis_report(load_outputs(store, args.name), store=store, progress=not args.quiet)
        report = {**report, **thesis}
        text = format_model_report(report) + "\n\n" + format_thesis_report(thesis)
    else:
        text = format_model_report(report)
    if repeats is not None:
        from ..repeats import format_repeats, run_repeats

        def say(done: int, k: int, msg: str) -> None:
            if not args.quiet:
                print(f"[repeats] {msg}", file=sys.stderr, flush=True)

        rep = run_repeats(store, args.name, repeats, on_progress=say)
        report = {**report, "repeats": rep}
        text += "\n\n" + format_repeats(rep)
    if args.interests:
        interests = _interests(store, args.name, args.interests)
        report = {**report, "interests": {"method": args.interests, **interests.to_dict()}}
        from ..topk_interests import format_topk_report

        text += f"\n\nFusion {args.interests}. " + format_topk_report(interests)
    if args.json:
        print(dumps(report))
    else:
        print(text)
    return 0


def _interests(store, name: str, method: str):
    """003's top-K interests of the test users from one fusion's val/test probabilities."""
    from ..fusion import fuse
    from ..outputs import load_outputs
    from ..topk_interests import topk_report

    outputs = load_outputs(store, name)
    res = fuse(outputs, method)
    return topk_report(outputs, {"val": res.val_probs, "test": res.test_probs})


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
    from ..api import Lab
    from ..textable import text_table

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
            print(dumps(summary))
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
        print(dumps({
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
    from ..compare import short_setting

    return short_setting(chosen) or "defaults"


def _lambdas(text: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lambdas {text!r}: give two numbers a,b (e.g. 0.33,0.33)") from None
    return a, b


def cmd_embed(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..embed.interests import InterestConfig
    from ..embed.report import SWEEP, embed_report, format_report
    from ..embed.train import EmbedConfig

    splits = ("val", "test") if args.interest_labels == "held-out" else ("train", "val", "test")
    base = replace(EmbedConfig(), image_model=args.image_model, word_model=args.word_model,
                   text_encoder=args.text_encoder,
                   **({"epochs": args.epochs} if args.epochs is not None else {}))
    rep = embed_report(open_store(), args.name, settings=args.lambdas or SWEEP, base=base,
                       interests=InterestConfig(threshold=args.threshold, label_splits=splits),
                       progress=not args.quiet)
    print(json.dumps(rep.to_dict(), indent=2) if args.json else format_report(rep))
    return 0


def register(sub) -> None:
    """Add this module's commands to the ``pinterest-mm`` subparsers."""
    p = sub.add_parser("report", help="per-model figures (and the thesis tables with --thesis)")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.add_argument("--thesis", action="store_true", help="add fusions and the thesis's claims")
    p.add_argument("--repeats", type=int, default=None, metavar="K",
                   help="also K stratified re-splits (new seeds, classifiers refit on the cached features): "
                        "mean ± sd per model and fusion, and the share of repeats in which each claim holds")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr (--thesis bar, --repeats lines)")
    p.add_argument("--interests", nargs="?", const="mm", default=None, metavar="METHOD",
                   help="add 003's top-K interests per test user (hit rate, precision, recall, F1 at "
                        "K = 1..10) from a fusion method's predictions (default mm)")
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

    p = sub.add_parser("embed", help="users, images and texts in one space: retrieval, interests, clusters")
    p.add_argument("name")
    p.add_argument("--lambdas", type=_lambdas, action="append", default=None, metavar="L1,L2",
                   help="text-user and image-text weights (image-user: 1 - L1 - L2); repeatable; "
                        "default: the 8 settings of seed 001's Table 2")
    p.add_argument("--image-model", default="effnet-lite0", help="built image model whose features are used")
    p.add_argument("--word-model", default="glove-6b-50", help="glove-6b-50, word2vec-train or fasttext-train")
    p.add_argument("--text-encoder", choices=["cnn", "minilm"], default="cnn",
                   help="cnn: a CNN over the word model's frozen vectors (default, seed 001); minilm: the "
                        "packaged MiniLM's frozen sentence embeddings (computed once, cached)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 30)")
    p.add_argument("--threshold", type=float, default=0.2,
                   help="a user is interested in a category holding at least this share of their saves")
    p.add_argument("--interest-labels", choices=["held-out", "all"], default="held-out",
                   help="whose saves define the interest labels: val+test pins (default; the user "
                        "vectors never saw them) or all pins (as seed 001)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.set_defaults(func=cmd_embed)
