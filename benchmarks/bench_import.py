"""Import speed and memory on a large generated manifest with many repeats.

Writes a manifest of ``--rows`` (pin, user) rows: ``--rows / --saves`` pins, each saved
``--saves`` times (some of them exact repeats of a (pin, user) row), pointing at only
``--images`` distinct tiny PNG files (so the duplicate-image step has large groups), in
``--categories`` categories (an image's pins mostly in one category). Then runs ``pinterest-mm import`` on it in a child process on a
private store and prints the wall time and the child's peak resident memory.

    python benchmarks/bench_import.py [--rows 100000 200000 1000000] [--saves 4] [--images 2000]
        [--baseline /tmp/main-copy] [--engine local|ray] [--extra-bytes 0] [--timeout 1800] [--json]

Peak memory is the child's own ``VmHWM``. With ``--baseline`` the same manifest is imported
by another checkout right after, so before/after figures come from one run on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
WORDS = ["garden", "recipe", "travel", "beach", "football", "laptop", "puppy", "kitten",
         "tulip", "pizza", "journey", "circuit", "compost", "stadium", "island", "baking"]


def write_manifest(folder: Path, rows: int, saves: int, images: int, categories: int, seed: int = 0,
                   extra_bytes: int = 0) -> Path:
    """Write ``images`` distinct 16x16 noise PNGs and a manifest of ``rows`` rows into ``folder``
    (with ``extra_bytes`` > 0, also an unused ``notes`` column of that many characters per row)."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for k in range(images):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"images/i{k}.png")
    n_pins = rows // saves
    pin = np.repeat(np.arange(n_pins), saves)[:rows]
    image = rng.integers(0, images, n_pins)
    # an image's pins are mostly in its own category; one in ten elsewhere
    category = np.where(rng.random(n_pins) < 0.9, image % categories, rng.integers(0, categories, n_pins))
    words = rng.choice(WORDS, (n_pins, 6))
    descriptions = np.array([" ".join(w) for w in words])
    # every pin: `saves` rows by users u0..; one of them repeats an earlier (pin, user) row
    user = np.tile(np.arange(saves), n_pins)[:rows]
    user[saves - 1 :: saves] = 0
    df = pd.DataFrame({
        "pin_id": np.char.add("p", pin.astype(str)),
        "image": np.char.add(np.char.add("images/i", image[pin].astype(str)), ".png"),
        "description": descriptions[pin],
        "category": np.char.add("Category ", category[pin].astype(str)),
        "user_id": np.char.add("u", ((pin * 7 + user) % 5000).astype(str)),
        "board": "board",
    })
    if extra_bytes > 0:
        df["notes"] = "x" * extra_bytes
    path = folder / "manifest.csv"
    df.to_csv(path, index=False)
    return path


# Runs the CLI, then prints the process's peak resident memory (VmHWM) last: ru_maxrss of a
# child would include this process's size at the fork, which Linux keeps across exec.
_WRAP = """
import atexit, runpy, sys
def _peak():
    kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
    print(f"\\nPEAK_RSS_KB {kb}", flush=True)
atexit.register(_peak)
sys.argv = ["pinterest-mm", *sys.argv[1:]]
runpy.run_module("pinterest_mm.cli", run_name="__main__")
"""


def run_import(manifest: Path, home: Path, timeout: float, repo: Path = REPO, engine: str = "local") -> dict:
    """Run ``pinterest-mm import`` in a child process; return seconds, peak RSS, exit status.

    Args:
        repo: The checkout whose package runs (another one gives a before/after in one run).
        engine: ``local`` or ``ray`` (``--engine``; the checkout must know it).
    """
    env = dict(os.environ, PINTEREST_MM_HOME=str(home), PYTHONPATH=str(repo))
    cmd = [sys.executable, "-c", _WRAP, "import", str(manifest), "--name", "big",
           "--min-per-class", "20", "--max-per-class", "1000"] + (["--engine", engine] if engine != "local" else [])
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        status = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        status = "timeout"
    seconds = time.perf_counter() - start
    peaks = [int(line.split()[1]) for line in out.splitlines() if line.startswith("PEAK_RSS_KB ")]
    peak_mb = peaks[-1] / 1024 if peaks else float("nan")
    return dict(seconds=round(seconds, 1), peak_rss_mb=round(peak_mb), status=status, output_tail=out[-1500:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[461_000], help="one import per size")
    parser.add_argument("--saves", type=int, default=4, help="rows per pin")
    parser.add_argument("--images", type=int, default=2000, help="distinct image files")
    parser.add_argument("--categories", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before the import is killed")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout (e.g. `git archive main`) imported too, right after, for a before/after")
    parser.add_argument("--engine", choices=["local", "ray"], default="local")
    parser.add_argument("--extra-bytes", type=int, default=0,
                        help="add an unused column of this many characters per row (crawls carry URLs, titles)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ok = True
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            manifest = write_manifest(Path(tmp) / "data", rows, args.saves, args.images, args.categories,
                                      extra_bytes=args.extra_bytes)
            made = time.perf_counter() - t0
            runs = {"this": (REPO, args.engine)}
            if args.baseline is not None:
                runs["baseline"] = (args.baseline.resolve(), "local")
            for label, (repo, engine) in runs.items():
                result = run_import(manifest, Path(tmp) / f"home-{label}", args.timeout, repo, engine)
                result.update(checkout=label, engine=engine, rows=rows, pins=rows // args.saves,
                              extra_bytes=args.extra_bytes,
                              images=args.images, generate_seconds=round(made, 1))
                ok &= result["status"] == 0
                tail = result.pop("output_tail")
                if args.json:
                    print(json.dumps(result), flush=True)
                else:
                    print(tail if result["status"] != 0 else "", " ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
