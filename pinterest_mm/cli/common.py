"""Helpers shared by the command modules: the store, argument types, runtime options."""

from __future__ import annotations

import argparse
import json
import sys


PARTIAL_BUILD = 3  # exit status of a build that saved some models while others failed


def open_store(read_only: bool = False):
    from ..store import Store

    return Store(read_only=read_only)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_runtime_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=positive_int, default=None,
                   help="intra-op threads of the network (default: one per core; env PINTEREST_MM_THREADS)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="image-decoding threads (default: one per core; env PINTEREST_MM_DECODE_WORKERS)")


def runtime_settings(args: argparse.Namespace):
    """The image models' inference settings of ``build --backend/--threads/--workers``."""
    from ..models.base import pick_device
    from ..models.runtimes import RuntimeSettings, resolve_backend

    # an unknown, missing or precision-less runtime is a one-paragraph error before any work
    resolve_backend(args.backend, pick_device(None), args.precision)
    return RuntimeSettings(backend=args.backend, precision=args.precision, threads=args.threads,
                           workers=args.workers)


def dumps(obj) -> str:
    """Indented JSON; numpy values as numbers and lists, anything else as text."""
    from ..jsonable import to_json_lenient

    return json.dumps(obj, indent=2, default=to_json_lenient)

def build_status(results: list[dict], dataset: str) -> int:
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
