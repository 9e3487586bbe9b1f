"""The scale benchmark: ``pinterest-mm bench scale --pins N``.

Times the whole lab on a generated dataset of N pins (:mod:`pinterest_mm.data.synthetic`):

1. ``generate``: the manifest and N small JPEGs;
2. ``import``: :func:`pinterest_mm.data.importer.import_manifest` (no cap per class);
3. ``build``: one image model, one word-vector model and TF-IDF (default
   ``effnet-lite0,glove-6b-50,tfidf-lr``) on the chosen engine;
4. ``report``: :func:`pinterest_mm.report.model_report` plus the probability cache loaded
   (:func:`pinterest_mm.outputs.load_outputs`), what ``pinterest-mm report`` and the app read;
5. ``slider``: the Fusion lab's live path: MM fitted on validation, the test stack prepared
   once (:class:`pinterest_mm.fusion.live.FusionStack`) and one l-slider move (fuse + score);
   the move itself is reported separately, as the median of 5 moves in milliseconds.

Each stage runs in its **own child process** (``python -m pinterest_mm.bench_scale --stage``),
so its peak RSS is that process's own high-water mark (``getrusage(RUSAGE_SELF).ru_maxrss``,
with any grandchildren's, ``RUSAGE_CHILDREN``, reported beside it) and no stage inherits
another's memory or caches. Seconds are timed inside the child around the stage's work
(its imports included, interpreter start excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

STAGES = ("generate", "import", "build", "report", "slider")
DATASET = "scale"
DEFAULT_MODELS = ("effnet-lite0", "glove-6b-50", "tfidf-lr")
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class ScaleBenchConfig:
    """One run of the scale benchmark.

    Attributes:
        pins: Number of generated pins N.
        engine: ``local`` or ``ray`` (passed to the build only when not ``local``).
        models: Models built.
        seed: Seed of the generated data and of the build.
        keep: Folder to keep the data and store in; None = a temporary folder, removed after.
    """

    pins: int = 10_000
    engine: str = "local"
    models: tuple[str, ...] = DEFAULT_MODELS
    seed: int = 0
    keep: Path | None = None


@dataclass
class StageResult:
    """One stage's cost: wall and CPU seconds, peak RSS (MB) of its process and of its children, extras.

    ``cpu_seconds`` is user + system time of the stage's process and of the children it waited
    for (decode workers); it is the figure to compare across runs on a shared, loaded machine,
    where wall seconds grow with other people's load. Ray's workers are not the stage's children,
    so on the Ray engine it covers the driver only.
    """

    stage: str
    seconds: float
    peak_rss_mb: float
    children_peak_rss_mb: float
    extra: dict = field(default_factory=dict)
    cpu_seconds: float = 0.0


def _peak_mb(who: int) -> float:
    kb = resource.getrusage(who).ru_maxrss  # kilobytes on Linux
    return kb / 1024.0


# ----------------------------------------------------------------------------- the stages (child side)
def _stage_generate(data: Path, home: Path, cfg: dict) -> dict:
    from .data.synthetic import SyntheticConfig, write_synthetic

    path = write_synthetic(data, SyntheticConfig(n_pins=cfg["pins"], seed=cfg["seed"]))
    import pandas as pd

    rows = pd.read_parquet(path, columns=["pin_id", "user_id"])
    return {"rows": len(rows), "users": int(rows["user_id"].nunique())}


def _stage_import(data: Path, home: Path, cfg: dict) -> dict:
    from .config import CleaningConfig, ImportConfig, SplitConfig
    from .data.importer import import_manifest
    from .store import Store

    config = ImportConfig(cleaning=CleaningConfig(max_per_class=cfg["pins"]), split=SplitConfig(seed=cfg["seed"]))
    res = import_manifest(Store(home), data / "manifest.parquet", DATASET, config, replace=True, progress=False)
    info = Store(home, read_only=True).dataset_info(DATASET)
    return {"pins_kept": int(info["n_pins"]), "split_counts": info["split_counts"],
            "dropped": int(cfg["pins"] - info["n_pins"]), "result": type(res).__name__}


def _stage_build(data: Path, home: Path, cfg: dict) -> dict:
    from .build import build
    from .store import Store

    kw = {} if cfg["engine"] == "local" else {"engine": cfg["engine"]}  # older builds know no engine
    results = build(Store(home), DATASET, list(cfg["models"]), progress=False, seed=cfg["seed"], **kw)
    return {r["model"]: {"status": r["status"], "seconds": round(float(r["seconds"]), 2),
                         "test_accuracy": r.get("test_accuracy")} for r in results}


def _stage_report(data: Path, home: Path, cfg: dict) -> dict:
    from .outputs import load_outputs
    from .report import model_report
    from .store import Store

    store = Store(home, read_only=True)
    model_report(store, DATASET)
    out = load_outputs(store, DATASET)
    return {"models": sorted(out.models), "test_pins": int(len(out.y["test"]))}


def _stage_slider(data: Path, home: Path, cfg: dict) -> dict:
    import numpy as np

    from .fusion.late import mm_weights
    from .fusion.live import FusionStack
    from .fusion.registry import fuse
    from .outputs import load_outputs
    from .store import Store

    out = load_outputs(Store(home, read_only=True), DATASET)
    models = sorted(m for m in out.models if "test" in out.probs[m] and "val" in out.probs[m])
    res = fuse(out, "mm", models=tuple(models))
    accs = np.array([out.models[m].val_accuracy for m in models])
    stack = FusionStack.from_outputs(out, models, "test")
    times = []
    for i in range(6):
        t0 = time.perf_counter()
        view = stack.view(mm_weights(accs, 0.5 + i))
        times.append((time.perf_counter() - t0) * 1000)
    return {"move_ms_median": round(statistics.median(times[1:]), 2), "first_move_ms": round(times[0], 2),
            "test_accuracy": round(float(view.accuracy), 4), "chosen_l": res.chosen.get("l")}


_RUN = {"generate": _stage_generate, "import": _stage_import, "build": _stage_build,
        "report": _stage_report, "slider": _stage_slider}


def _cpu_seconds() -> float:
    """User + system seconds of this process and of its reaped children so far."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                   resource.getrusage(resource.RUSAGE_CHILDREN)))


def _child(stage: str, data: Path, home: Path, cfg: dict, out: Path) -> None:
    os.environ["PINTEREST_MM_HOME"] = str(home)
    t0, c0 = time.perf_counter(), _cpu_seconds()
    extra = _RUN[stage](data, home, cfg)
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    result = StageResult(stage, round(seconds, 3), round(_peak_mb(resource.RUSAGE_SELF), 1),
                         round(_peak_mb(resource.RUSAGE_CHILDREN), 1), extra, round(cpu, 3))
    out.write_text(json.dumps(asdict(result), default=str))


# ----------------------------------------------------------------------------- the driver (parent side)
def _check(config: ScaleBenchConfig) -> None:
    if config.engine not in ENGINES:
        raise ValueError(f"Unknown engine {config.engine!r}: use one of {', '.join(ENGINES)}.")
    if config.pins < 580:
        raise ValueError(f"The scale benchmark needs at least 580 pins (20 per category); got {config.pins}.")


def run_stage(stage: str, data: Path, home: Path, config: ScaleBenchConfig) -> StageResult:
    """Run one stage in a child process and return what it measured.

    Raises:
        RuntimeError: The stage failed; the message holds the end of its output.
    """
    cfg = {"pins": config.pins, "engine": config.engine, "models": list(config.models), "seed": config.seed}
    out = home.parent / f".stage-{stage}.json"
    out.unlink(missing_ok=True)
    env = dict(os.environ, PINTEREST_MM_HOME=str(home))
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(
        [sys.executable, "-m", "pinterest_mm.bench_scale", "--stage", stage, "--data", str(data),
         "--home", str(home), "--config", json.dumps(cfg), "--out", str(out)],
        env=env, capture_output=True, text=True,
    )
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-12:]
        raise RuntimeError(f"The scale benchmark's {stage} stage failed (exit {proc.returncode}):\n"
                           + "\n".join(tail))
    return StageResult(**json.loads(out.read_text()))


def run_scale_bench(config: ScaleBenchConfig, *, echo=None) -> dict:
    """Generate N pins, then import, build, report and move the slider; each stage timed.

    Args:
        config: Size, engine, models, seed, folder to keep.
        echo: Called with each stage's :class:`StageResult` as it finishes (progress).

    Returns:
        A JSON-able dict: config, machine (CPUs, load average at the start), ``stages`` (one
        dict per stage: seconds, cpu_seconds, peak_rss_mb, children_peak_rss_mb, ms_per_pin,
        cpu_ms_per_pin, extra) and
        ``total_seconds`` / ``total_ms_per_pin`` (generation excluded: it is not the lab's work).
    """
    _check(config)
    base = Path(config.keep) if config.keep is not None else Path(tempfile.mkdtemp(prefix="pmm-scale-"))
    data, home = base / "data", base / "home"
    home.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    stages = []
    try:
        for stage in STAGES:
            r = run_stage(stage, data, home, config)
            stages.append(r)
            if echo is not None:
                echo(r)
    finally:
        if config.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    rows = [{**asdict(s), "ms_per_pin": round(s.seconds * 1000 / config.pins, 4),
             "cpu_ms_per_pin": round(s.cpu_seconds * 1000 / config.pins, 4)} for s in stages]
    lab = [s for s in stages if s.stage != "generate"]
    total = sum(s.seconds for s in lab)
    total_cpu = sum(s.cpu_seconds for s in lab)
    machine["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return {"config": {**asdict(config), "keep": str(config.keep) if config.keep else None},
            "machine": machine, "stages": rows, "total_seconds": round(total, 2),
            "total_ms_per_pin": round(total * 1000 / config.pins, 4),
            "total_cpu_seconds": round(total_cpu, 2), "total_cpu_ms_per_pin": round(total_cpu * 1000 / config.pins, 4),
            "peak_rss_mb": max(s.peak_rss_mb for s in stages)}


def format_scale_bench(result: dict) -> str:
    """The benchmark as a text table: stage, seconds, ms per pin, peak RSS."""
    from .textable import text_table

    c = result["config"]
    rows = [[s["stage"], s["seconds"], s["ms_per_pin"], s.get("cpu_ms_per_pin"), s["peak_rss_mb"],
             s["children_peak_rss_mb"]] for s in result["stages"]]
    rows.append(["total (no generate)", result["total_seconds"], result["total_ms_per_pin"],
                 result.get("total_cpu_ms_per_pin"), result["peak_rss_mb"], None])
    head = (f"scale benchmark: {c['pins']:,} pins, engine {c['engine']}, models {', '.join(c['models'])}; "
            f"{result['machine']['cpus']} CPUs, load {result['machine']['load_avg_start']}")
    slider = next((s["extra"] for s in result["stages"] if s["stage"] == "slider"), {})
    tail = f"one slider move: {slider.get('move_ms_median')} ms (median of 5)" if slider else ""
    table = text_table(["stage", "seconds", "ms / pin", "CPU ms / pin", "peak RSS MB", "children MB"], rows,
                       digits=3)
    return "\n".join(x for x in (head, table, tail) if x)


def main(argv: list[str] | None = None) -> int:
    """The child entry point: run one stage and write its :class:`StageResult` as JSON."""
    ap = argparse.ArgumentParser(description="one stage of the scale benchmark (internal)")
    ap.add_argument("--stage", choices=STAGES, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    _child(a.stage, a.data, a.home, json.loads(a.config), a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
