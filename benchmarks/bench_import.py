"""Import speed and memory on a large generated manifest, per import phase.

Writes a manifest of ``--rows`` (pin, user) rows: ``--rows / --saves`` pins, each saved
``--saves`` times (some of them exact repeats of a (pin, user) row), pointing at only
``--images`` distinct tiny PNG files (so the duplicate-image step has large groups), or with
``--distinct`` at one distinct 16x16 noise PNG per pin (every pin survives the duplicate step:
the worst case for memory), in ``--categories`` categories. Then runs ``pinterest-mm import``
on it in a child process on a private store and prints the wall time, the child's CPU seconds
and its peak resident memory, overall and per import phase.

    python benchmarks/bench_import.py [--rows 100000 200000 1000000] [--saves 4] [--images 2000]
        [--distinct] [--max-per-class 1000] [--baseline /tmp/main-copy] [--engine local|ray]
        [--extra-bytes 0] [--timeout 1800] [--json]

Peak memory is the child's own ``VmHWM``; per phase, a thread in the child samples its
resident memory every 5 ms and keeps the largest value seen while each phase of
:data:`pinterest_mm.data.importer.PHASES` runs (``startup``: Python and the imports;
``done``: after the store write). With ``--baseline`` the same manifest is imported by
another checkout right after, so before/after figures come from one run on one machine.
Images are written under the system temp folder and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
WORDS = ["garden", "recipe", "travel", "beach", "football", "laptop", "puppy", "kitten",
         "tulip", "pizza", "journey", "circuit", "compost", "stadium", "island", "baking"]
SIDE = 16  # pixels per side of the generated grayscale images
PER_FOLDER = 1000  # images per sub-folder (a million files never share one folder)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


_PNG_HEAD = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", SIDE, SIDE, 8, 0, 0, 0, 0))
_PNG_END = _png_chunk(b"IEND", b"")


def write_images(folder: Path, n: int, seed: int = 0) -> list[str]:
    """Write ``n`` distinct 16x16 grayscale noise PNGs under ``folder``; return their paths
    relative to ``folder``'s parent. The PNG bytes are assembled here (zlib level 1), ten
    times faster than through PIL: a million images take about a minute. Seeded noise makes
    their 256-bit difference hashes distinct (checked on 100,000: no two equal)."""
    rng = np.random.default_rng(seed)
    names = []
    for start in range(0, n, PER_FOLDER):
        sub = folder / f"d{start // PER_FOLDER}"
        sub.mkdir(parents=True, exist_ok=True)
        count = min(PER_FOLDER, n - start)
        rows = np.zeros((count, SIDE, SIDE + 1), np.uint8)  # each row: filter byte 0, then pixels
        rows[:, :, 1:] = rng.integers(0, 256, (count, SIDE, SIDE), dtype=np.uint8)
        for k in range(count):
            (sub / f"i{start + k}.png").write_bytes(
                _PNG_HEAD + _png_chunk(b"IDAT", zlib.compress(rows[k].tobytes(), 1)) + _PNG_END)
            names.append(f"{folder.name}/{sub.name}/i{start + k}.png")
    return names


def write_manifest(folder: Path, rows: int, saves: int, images: int, categories: int, seed: int = 0,
                   extra_bytes: int = 0, distinct: bool = False) -> Path:
    """Write tiny noise PNGs and a manifest of ``rows`` rows into ``folder``: ``images``
    shared images, or with ``distinct`` one image per pin (``images`` ignored); with
    ``extra_bytes`` > 0, also an unused ``notes`` column of that many characters per row."""
    rng = np.random.default_rng(seed)
    n_pins = rows // saves
    names = np.array(write_images(folder / "images", n_pins if distinct else images, seed))
    pin = np.repeat(np.arange(n_pins), saves)[:rows]
    if distinct:
        image = np.arange(n_pins)
        category = rng.integers(0, categories, n_pins)
    else:
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
        "image": names[image[pin]],
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


# Runs the CLI with a thread sampling the resident memory (statm) every 5 ms, keeping the
# largest value per import phase (the importer's _announce is wrapped to learn the phase);
# prints the peak (VmHWM: ru_maxrss of a child would include this process's size at the fork,
# which Linux keeps across exec), the CPU seconds and the per-phase peaks last.
_WRAP = """
import atexit, json, os, runpy, sys, threading, time
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
phase, peaks, stop = ["startup"], {}, threading.Event()
def _rss_kb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_KB
def _sample():
    while not stop.is_set():
        kb = _rss_kb()
        if kb > peaks.get(phase[0], 0):
            peaks[phase[0]] = kb
        time.sleep(0.005)
threading.Thread(target=_sample, daemon=True).start()
import pinterest_mm.data.importer as importer
_real = importer._announce
def _announce(bar, name):
    peaks.setdefault(name, _rss_kb())
    phase[0] = name
    _real(bar, name)
importer._announce = _announce
_real_import = importer.import_manifest
def _import(*args, **kwargs):
    try:
        return _real_import(*args, **kwargs)
    finally:
        phase[0] = "done"
importer.import_manifest = _import
def _peak():
    stop.set()
    kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
    t = os.times()
    print(f"\\nPEAK_RSS_KB {kb}", flush=True)
    print(f"CPU_SECONDS {t.user + t.system:.1f}", flush=True)
    print("PHASE_PEAKS_KB " + json.dumps(peaks), flush=True)
atexit.register(_peak)
sys.argv = ["pinterest-mm", *sys.argv[1:]]
runpy.run_module("pinterest_mm.cli", run_name="__main__")
"""


def _last(out: str, key: str) -> str | None:
    found = [line[len(key) + 1:] for line in out.splitlines() if line.startswith(key + " ")]
    return found[-1] if found else None


def run_import(manifest: Path, home: Path, timeout: float, repo: Path = REPO, engine: str = "local",
               max_per_class: int = 1000) -> dict:
    """Run ``pinterest-mm import`` in a child process; return seconds, CPU seconds, peak RSS
    (overall and per phase, MB) and the exit status.

    Args:
        repo: The checkout whose package runs (another one gives a before/after in one run).
        engine: ``local`` or ``ray`` (``--engine``; the checkout must know it).
        max_per_class: ``--max-per-class`` (a large value keeps every pin).
    """
    env = dict(os.environ, PINTEREST_MM_HOME=str(home), PYTHONPATH=str(repo))
    cmd = [sys.executable, "-c", _WRAP, "import", str(manifest), "--name", "big",
           "--min-per-class", "20", "--max-per-class", str(max_per_class)]
    cmd += ["--engine", engine] if engine != "local" else []
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=repo,  # cwd: `-c` puts it first on sys.path
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        status = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        status = "timeout"
    seconds = time.perf_counter() - start
    peak = _last(out, "PEAK_RSS_KB")
    cpu = _last(out, "CPU_SECONDS")
    phases = json.loads(_last(out, "PHASE_PEAKS_KB") or "{}")
    return dict(seconds=round(seconds, 1), cpu_seconds=float(cpu) if cpu else float("nan"),
                peak_rss_mb=round(int(peak) / 1024) if peak else float("nan"), status=status,
                phase_peak_mb={k: round(v / 1024) for k, v in phases.items()}, output_tail=out[-1500:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[461_000], help="one import per size")
    parser.add_argument("--saves", type=int, default=4, help="rows per pin")
    parser.add_argument("--images", type=int, default=2000, help="distinct image files (without --distinct)")
    parser.add_argument("--distinct", action="store_true", help="one distinct image per pin")
    parser.add_argument("--categories", type=int, default=12)
    parser.add_argument("--max-per-class", type=int, default=1000, help="the import's cap (10**9: keep all)")
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
        with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
            t0 = time.perf_counter()
            manifest = write_manifest(Path(tmp) / "data", rows, args.saves, args.images, args.categories,
                                      extra_bytes=args.extra_bytes, distinct=args.distinct)
            made = time.perf_counter() - t0
            runs = {"this": (REPO, args.engine)}
            if args.baseline is not None:
                runs["baseline"] = (args.baseline.resolve(), "local")
            for label, (repo, engine) in runs.items():
                result = run_import(manifest, Path(tmp) / f"home-{label}", args.timeout, repo, engine,
                                    args.max_per_class)
                result.update(checkout=label, engine=engine, rows=rows, pins=rows // args.saves,
                              extra_bytes=args.extra_bytes,
                              images=rows // args.saves if args.distinct else args.images,
                              generate_seconds=round(made, 1))
                ok &= result["status"] == 0
                tail = result.pop("output_tail")
                if args.json:
                    print(json.dumps(result), flush=True)
                else:
                    print(tail if result["status"] != 0 else "", " ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
