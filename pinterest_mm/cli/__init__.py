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
import sys

from . import bench_cmds, build_cmds, data_cmds, report_cmds
from .common import PARTIAL_BUILD

__all__ = ["PARTIAL_BUILD", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``pinterest-mm``."""
    parser = argparse.ArgumentParser(
        prog="pinterest-mm",
        description="Predict users' interests from multimodal pins: import, build, fuse, report.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (data_cmds, build_cmds, report_cmds, bench_cmds):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("Interrupted; what finished is kept, run the command again to resume.", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last line of defence: one paragraph, no traceback
        if isinstance(exc, _expected_errors()):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1


# the known problems (exit 2): module and class; a class can only have been raised when its
# module was imported, so none is imported here (``datasets`` stays quick: no scikit-learn)
_KNOWN_ERRORS = (("pinterest_mm.data.manifest", "ManifestError"), ("pinterest_mm.data.importer", "ImportFailed"),
                 ("pinterest_mm.store", "StoreError"), ("pinterest_mm.locks", "DatasetBusy"),
                 ("pinterest_mm.build", "BuildFailed"), ("pinterest_mm.models.weights_store", "WeightsStoreError"))


def _expected_errors() -> tuple[type[BaseException], ...]:
    """The exception classes reported as a known problem (exit status 2)."""
    loaded = tuple(getattr(sys.modules[m], c) for m, c in _KNOWN_ERRORS if m in sys.modules)
    return (*loaded, ValueError, FileNotFoundError, PermissionError)
