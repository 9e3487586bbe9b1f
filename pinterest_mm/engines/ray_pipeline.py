"""The part of a Ray feature pipeline that image and text models share: shards to do, the
local build's batches as Arrow blocks, the actor pool's size and resources, collecting the
actors' rows into Parquet shards, and assembling the shards into the local build's ``.npy``.

A model's pipeline (:mod:`.ray_extract` for images, :mod:`.ray_text` for frozen text
encoders) builds the Ray Data dataset of its missing shards (one Arrow block per local batch
-> its own tasks -> ``map_batches`` over an actor pool) and hands the output to
:func:`collect_shards`; :func:`extract_sharded` does the rest the same way for every model:
the cache (same ``.npy`` + sidecar as a local build), the shard folder of these settings,
resuming with the missing shards only, the assembly in ``row`` order and the statistics.

The actors return one row per pin: ``row``, ``ok``, ``features`` (m, d) float32, and the Ray
node ids ``decode_node`` (the node that prepared the inputs) and ``extract_node`` (the node
that ran the network), and ``extract_gpus`` (GPUs the actor held).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..models.base import BuildContext, load_cached_features, write_sidecar
from .ray_session import RayEngineConfig
from .shards import assemble, local_batches, prepare_folder, shard_dir, shard_file, shard_ranges, write_shard

ROW_KEYS = ("row", "ok", "features", "decode_node", "extract_node", "extract_gpus")


@dataclass
class PipelineRun:
    """What a pipeline run reports: the node ids that prepared inputs and ran the network, and
    the GPUs per actor asked for and held (for the shards computed in this run)."""

    decode_nodes: set = field(default_factory=set)
    extract_nodes: set = field(default_factory=set)
    gpus_per_actor: int = 0
    actor_gpus: set = field(default_factory=set)


def batch_tables(todo: list[tuple[int, int]], batch_size: int, column: str, values: list) -> list:
    """One Arrow table (one block, one row: ``lo``, ``hi``, ``column`` = ``values[lo:hi]``) per
    local batch of the ``todo`` shards, so that each task and actor call sees one local batch."""
    import pyarrow as pa

    return [pa.table({"lo": [a], "hi": [b], column: [values[a:b]]})
            for lo, hi in todo for a, b in local_batches(lo, hi, batch_size)]


def actor_pool(ray, config: RayEngineConfig, *, use_gpus: bool, reserve_cpus: float) -> dict:
    """``map_batches`` keyword arguments of the actor pool: ``compute`` (``ActorPoolStrategy``
    from 1 to the largest pool), ``num_cpus`` and ``num_gpus`` per actor.

    Args:
        use_gpus: The model's network can run on a GPU: one actor per GPU, each holding one,
            when the cluster has GPUs.
        reserve_cpus: CPUs of the cluster kept for the pipeline's other tasks (decoding).
    """
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0)) if use_gpus else 0
    cpus = float(resources.get("CPU", 1))
    largest = config.max_actors or (gpus if gpus else max(1, int((cpus - reserve_cpus) / config.cpus_per_actor)))
    return {"compute": ray.data.ActorPoolStrategy(min_size=1, max_size=largest),
            "num_cpus": config.cpus_per_actor, "num_gpus": 1 if gpus else 0}


def quiet_progress(ray, progress: bool) -> None:
    """One progress bar, the driver's (pins written); no Ray Data log lines in quiet builds."""
    ray.data.DataContext.get_current().enable_progress_bars = False
    if not progress:
        import logging

        logging.getLogger("ray.data").setLevel(logging.WARNING)


def actor_rows(lo_hi: list[tuple[int, int]], oks: list, feats: list, decode_nodes: list, node: str) -> dict:
    """The output batch of an actor: one row per pin of its local batches (see module doc)."""
    import ray

    rows = [np.arange(lo, hi, dtype=np.int64) for lo, hi in lo_hi]
    m = sum(len(r) for r in rows)
    return {"row": np.concatenate(rows), "ok": np.concatenate(oks), "features": np.concatenate(feats),
            "decode_node": np.array([d for (lo, hi), d in zip(lo_hi, decode_nodes) for _ in range(hi - lo)], dtype=object),
            "extract_node": np.array([node] * m, dtype=object),
            "extract_gpus": np.full(m, len(ray.get_gpu_ids()), dtype=np.int64)}


def collect_shards(batches: Iterable[dict], todo: list[tuple[int, int]], folder: Path, pin_ids: list[str],
                   bar, run: PipelineRun) -> PipelineRun:
    """Write each ``todo`` shard as soon as the actors returned all its rows; return ``run``
    with the nodes and GPUs seen.

    Raises:
        RuntimeError: A shard got a row twice or the pipeline ended with shards unfinished.
    """
    pending = {lo: {"hi": hi, "parts": []} for lo, hi in todo}
    starts = np.array(sorted(pending), dtype=np.int64)
    for out in batches:
        bar.update(len(out["row"]))
        first = starts[np.searchsorted(starts, out["row"], side="right") - 1]  # each row's shard
        for lo in np.unique(first):
            sel = first == lo
            entry = pending[int(lo)]
            entry["parts"].append({k: out[k][sel] for k in ROW_KEYS})
            if sum(len(p["row"]) for p in entry["parts"]) < entry["hi"] - int(lo):
                continue
            merged = {k: np.concatenate([p[k] for p in entry["parts"]]) for k in ROW_KEYS}
            order = np.argsort(merged["row"], kind="stable")
            merged = {k: v[order] for k, v in merged.items()}
            if not np.array_equal(merged["row"], np.arange(int(lo), entry["hi"])):
                raise RuntimeError(f"The Ray pipeline returned rows {merged['row'][:5]}... for shard "
                                   f"{int(lo)}-{entry['hi']}; a shard must hold each of its rows once.")
            write_shard(shard_file(folder, int(lo), entry["hi"]), merged["row"],
                        [pin_ids[r] for r in merged["row"]], merged["ok"], merged["features"],
                        merged["decode_node"].tolist(), merged["extract_node"].tolist())
            run.decode_nodes.update(merged["decode_node"].tolist())
            run.extract_nodes.update(merged["extract_node"].tolist())
            run.actor_gpus.update(int(g) for g in merged["extract_gpus"])
            del pending[int(lo)]
    bar.close()
    if pending:
        raise RuntimeError(f"The Ray pipeline ended with {len(pending)} shard(s) unfinished; run the build again.")
    return run


RunFn = Callable[[list[tuple[int, int]], Path, int], PipelineRun]


def extract_sharded(ctx: BuildContext, *, shard_rows: int, batch_size: int, run: RunFn,
                    stats_of: Callable[[list[int]], dict], check: Callable[[], None] | None = None,
                    ranges: list[tuple[int, int]] | None = None, pin_ids: list[str] | None = None,
                    out_path: Path | None = None) -> tuple[np.ndarray, dict]:
    """Return (features (n, d) memory-mapped, in row order; run info) of one model.

    The cache (same ``.npy`` + sidecar as the local build) is used when its fingerprint
    matches. Otherwise ``check()`` runs, the shards of other settings are discarded, ``run(todo,
    folder, n_done)`` writes the missing shards (:func:`collect_shards`), and all are assembled
    into ``out_path`` (default ``ctx.features_path``) with the sidecar ``stats_of(rows whose ok
    is False)``. Rows are the pins in ``ctx.pins`` order, cut into shards of ``shard_rows``,
    unless ``pin_ids`` (the pin of each row) and ``ranges`` (the shards) say otherwise.

    The run info has ``shards``, ``reused`` (shards found from an earlier run), ``computed``,
    ``decode_nodes`` and ``extract_nodes`` (Ray node ids, for the shards computed in this
    run), ``gpus_per_actor`` (asked for) and ``actor_gpus`` (GPU counts the actors held).
    """
    out_path = Path(out_path or ctx.features_path)
    cached = load_cached_features(out_path, ctx.feature_fingerprint)
    if cached is not None:
        ctx.stats.update(cached[1])
        return cached[0], {"shards": 0, "reused": 0, "computed": 0, "decode_nodes": [], "extract_nodes": [],
                           "gpus_per_actor": 0, "actor_gpus": []}
    if check is not None:
        check()
    pin_ids = pin_ids if pin_ids is not None else ctx.pins["pin_id"].astype(str).tolist()
    n = len(pin_ids)
    folder = shard_dir(out_path)
    prepare_folder(folder, {"fingerprint": ctx.feature_fingerprint, "n": n, "shard_rows": shard_rows,
                            "batch_size": batch_size})
    ranges = ranges if ranges is not None else shard_ranges(n, shard_rows)
    todo = [(lo, hi) for lo, hi in ranges if not shard_file(folder, lo, hi).exists()]
    done = run(todo, folder, n - sum(hi - lo for lo, hi in todo)) if todo else PipelineRun()
    stats = stats_of(assemble(folder, ranges, pin_ids, out_path))
    write_sidecar(out_path, ctx.feature_fingerprint, stats)
    shutil.rmtree(folder, ignore_errors=True)
    ctx.stats.update(stats)
    info = {"shards": len(ranges), "reused": len(ranges) - len(todo), "computed": len(todo),
            "decode_nodes": sorted(done.decode_nodes), "extract_nodes": sorted(done.extract_nodes),
            "gpus_per_actor": done.gpus_per_actor, "actor_gpus": sorted(done.actor_gpus)}
    return np.load(out_path, mmap_mode="r"), info
