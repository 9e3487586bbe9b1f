"""Image-model feature extraction as a Ray Data pipeline: ``pinterest-mm build NAME --engine ray``.

The pipeline, for the pins whose shards are missing:

1. The pins' image paths, cut into the *local build's batches* (``batch_size`` rows, restarting
   at every ``chunk_rows`` boundary, as :func:`~pinterest_mm.models.image.extract_to_file`
   cuts them), become Arrow tables: one table (one block, one row) per batch.
2. Read + decode tasks (:func:`decode_batch`, ``Dataset.map``) turn each row into a
   (batch_size, S, S, 3) uint8 tensor with the local build's decoder
   (:func:`~pinterest_mm.models.extract.load_image_batch`), padded with zeros to a fixed shape.
3. A pool of backbone actors (:class:`BackboneActor`, ``map_batches`` with
   ``compute=ActorPoolStrategy(min_size=1, max_size=...)``, ``num_gpus=1`` per actor when the
   cluster has GPUs) runs the network on exactly the local batch (the padding is cut off), so
   batch composition never differs from a local build and the features are the same bits. The
   actors get the backbone from the driver through the object store (the exported ONNX /
   OpenVINO graph's bytes, or the torch module), so workers need the package, not the weights.
4. The driver writes one Parquet shard per ``chunk_rows`` pins to
   ``features/<dataset>/<model>.shards/rows_<lo>_<hi>.parquet`` (:mod:`.shards`), atomically
   (temporary file, then rename). A killed build resumes with the missing shards only; shards
   of other settings (``meta.json``) are discarded.
5. When every shard exists they are assembled, in ``row`` order, into the same ``.npy`` + sidecar
   the local build writes (same fingerprint, same statistics), and the shards are removed.

Only the driver needs the store; every worker must read the image paths as stored at import
(a shared filesystem mounted at the same path). Ray is imported only by this module, and only
when the engine is chosen.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models.base import BuildContext, cpu_count, load_cached_features, write_sidecar
from ..models.extract import load_image_batch
from ..models.image import ImageFeatureModel, check_images_present
from .shards import assemble, local_batches, prepare_folder, shard_dir, shard_file, shard_ranges, write_shard

INSTALL_HINT = "pip install -e '.[ray]'"
ENV_TMPDIR = "RAY_TMPDIR"
_MAX_TEMP_DIR = 60  # Ray's session sockets must fit a 107-byte AF_UNIX path


class EngineUnavailable(ValueError):
    """The Ray engine was asked for but Ray is not installed, or its cluster cannot be reached."""


def require_ray():
    """Return the ``ray`` module, or raise :class:`EngineUnavailable` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray without its Data extra cannot run the pipeline)
    except ImportError as exc:
        raise EngineUnavailable(
            f"The Ray engine needs Ray Data, which is not installed here ({exc}). Install the "
            f"extra with `{INSTALL_HINT}` (it brings ray[data]), or build with the default "
            "`--engine local`, which needs nothing more."
        ) from None
    return ray


def supports(model: object) -> bool:
    """Whether the Ray engine extracts this model's features (image feature models; text feature
    models and end-to-end classifiers build in the driver process as in a local build)."""
    return isinstance(model, ImageFeatureModel)


@dataclass(frozen=True)
class RayEngineConfig:
    """Where and how the Ray engine runs.

    Attributes:
        address: ``auto`` (the cluster this machine belongs to), ``ray://HOST:PORT`` (Ray
            Client) or a GCS address; None starts a local one-machine cluster.
        max_actors: Largest backbone actor pool (None: one per GPU on GPU clusters, else the
            cluster's CPUs less the decoding tasks' share, at least 1).
        cpus_per_actor: CPUs reserved per backbone actor; also its network's intra-op threads
            unless the model sets ``threads``.
        decode_cpus: CPUs reserved per read + decode task. It must differ from
            ``cpus_per_actor``: Ray Data fuses consecutive operators of equal resources, which
            would move the decoding into the actors (no decoding while the network runs).
        temp_dir: Session folder of a local cluster (None: ``$RAY_TMPDIR`` when set, else
            ``<store>/ray`` when short enough for Ray's sockets, else a folder named after
            the store in the system temp folder).
    """

    address: str | None = None
    max_actors: int | None = None
    cpus_per_actor: float = 1.0
    decode_cpus: float = 0.5
    temp_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.decode_cpus == self.cpus_per_actor:
            raise ValueError(f"decode_cpus and cpus_per_actor are both {self.decode_cpus}; make them "
                             "differ so that Ray Data keeps decoding in tasks of its own.")


def local_temp_dir(store_root: Path) -> Path | None:
    """The session folder of a local cluster (None: Ray's ``$RAY_TMPDIR`` is honoured)."""
    if os.environ.get(ENV_TMPDIR):
        return None
    preferred = Path(store_root).resolve() / "ray"
    if len(str(preferred)) <= _MAX_TEMP_DIR:
        return preferred
    import hashlib

    tag = hashlib.sha256(str(preferred).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"pmm-ray-{tag}"


class RaySession:
    """Connects to Ray once, on first use, and disconnects at :meth:`close` if it connected."""

    def __init__(self, config: RayEngineConfig, store_root: Path) -> None:
        self.config = config
        self.store_root = Path(store_root)
        self.started = False

    def ensure(self):
        """Return ``ray``, initialised (an existing session is used as it is)."""
        ray = require_ray()
        if ray.is_initialized():
            return ray
        if self.config.address:  # the cluster's own settings (Ray Client takes no local ones)
            kwargs: dict = {"address": self.config.address}
        else:
            kwargs = {"include_dashboard": False, "configure_logging": False}
            temp = self.config.temp_dir or local_temp_dir(self.store_root)
            if temp is not None:
                Path(temp).mkdir(parents=True, exist_ok=True)
                kwargs["_temp_dir"] = str(temp)
            kwargs["num_cpus"] = cpu_count()
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise EngineUnavailable(
                f"No Ray cluster answered at {self.config.address!r} ({exc}). Start one with "
                "`ray start --head` (and `ray start --address HEAD:6379` on the workers), give "
                "its address as --address auto or ray://HOST:10001, or leave --address out to "
                "run a cluster on this machine only."
            ) from None
        self.started = True
        return ray

    def close(self) -> None:
        """Shut Ray down if this session started or joined it."""
        if self.started:
            import ray

            ray.shutdown()
            self.started = False


# ---------------------------------------------------------------------- the pipeline's UDFs
def decode_batch(row: dict, size: int, batch_size: int) -> dict:
    """Read + decode task: one local batch's paths -> ``pixels`` (batch_size, size, size, 3)
    uint8 padded with zeros, ``ok`` (batch_size,) bool, plus ``lo``, ``hi`` and the node."""
    import ray

    paths = [str(p) for p in row["paths"]]
    arr, ok = load_image_batch(paths, size)
    pixels = np.zeros((batch_size, size, size, 3), dtype=np.uint8)
    good = np.zeros(batch_size, dtype=bool)
    pixels[:len(paths)], good[:len(paths)] = arr, ok
    return {"lo": int(row["lo"]), "hi": int(row["hi"]), "pixels": pixels, "ok": good,
            "decode_node": ray.get_runtime_context().get_node_id()}


class BackboneActor:
    """A backbone actor: features of whole local batches (the padding cut off).

    Args:
        backbone_ref: Object ref of the driver's backbone: graph bytes (runtimes other than
            torch) or the torch module (:class:`~pinterest_mm.models.image._Pooled`, on CPU).
        runtime: ``torch``, ``onnxruntime`` or ``openvino`` (the driver's, as fingerprinted).
        precision: ``fp32`` or ``bf16``.
        size, dim: Input side and feature dimension.
        threads: Intra-op threads of the network.
        use_gpu: The actor holds a GPU (torch runs on ``cuda``).
    """

    def __init__(self, backbone_ref, runtime: str, precision: str, size: int, dim: int, threads: int,
                 use_gpu: bool) -> None:
        import ray

        from ..models.image import GraphBackbone

        payload = ray.get(backbone_ref[0])
        self.node = ray.get_runtime_context().get_node_id()
        if runtime == "torch":
            import torch

            torch.set_num_threads(threads)
            device = "cuda" if use_gpu and torch.cuda.is_available() else "cpu"
            self.backbone = payload.to(device)
            return
        from ..models.runtimes import load_forward

        self._folder = tempfile.mkdtemp(prefix="pmm-actor-graph-")
        path = Path(self._folder) / f"backbone.{runtime}.onnx"
        path.write_bytes(payload)
        forward = load_forward(runtime, path, threads=threads, precision=precision)
        self.backbone = GraphBackbone(forward, size, dim, runtime)

    def __call__(self, batch: dict) -> dict:
        """Rows of local batches -> one row per pin: ``row``, ``ok``, ``features`` (m, dim)."""
        rows, oks, feats, nodes = [], [], [], []
        for i in range(len(batch["lo"])):
            lo, hi = int(batch["lo"][i]), int(batch["hi"][i])
            ok = np.asarray(batch["ok"][i][:hi - lo], dtype=bool)
            f = np.asarray(self.backbone(np.asarray(batch["pixels"][i][:hi - lo])), dtype=np.float32)
            f[~ok] = 0.0
            rows.append(np.arange(lo, hi, dtype=np.int64))
            oks.append(ok)
            feats.append(f)
            nodes.extend([str(batch["decode_node"][i])] * (hi - lo))
        m = sum(len(r) for r in rows)
        return {"row": np.concatenate(rows), "ok": np.concatenate(oks), "features": np.concatenate(feats),
                "decode_node": np.array(nodes, dtype=object), "extract_node": np.array([self.node] * m, dtype=object)}


# ---------------------------------------------------------------------- the driver
def _backbone_payload(model: ImageFeatureModel, ctx: BuildContext):
    """(payload, runtime, size, dim): what the actors need to run the driver's backbone."""
    model.graph_dir = Path(ctx.checkpoints)
    bb = model.backbone(ctx.device)  # exports (and checks) the graph once, as a local build does
    runtime = model.resolved_runtime()
    if runtime == "torch":
        return model.torch_backbone("cpu"), runtime, bb.size, bb.dim
    return (Path(model.graph_dir) / f"backbone.{runtime}.onnx").read_bytes(), runtime, bb.size, bb.dim


def _run_pipeline(ray, model: ImageFeatureModel, ctx: BuildContext, todo: list[tuple[int, int]],
                  folder: Path, config: RayEngineConfig, paths: list[str], n_done: int) -> tuple[set, set]:
    """Extract the ``todo`` shards into ``folder``; return the ids of the nodes that decoded
    and of those that ran the network."""
    import pyarrow as pa
    from tqdm.auto import tqdm

    payload, runtime, size, dim = _backbone_payload(model, ctx)
    bs = model.batch_size
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    max_actors = config.max_actors or (gpus if gpus else max(1, int(resources.get("CPU", 1) - config.cpus_per_actor)))
    threads = model.threads or max(1, int(config.cpus_per_actor))
    data_ctx = ray.data.DataContext.get_current()
    data_ctx.enable_progress_bars = False  # one bar, the driver's, counts written pins
    if not ctx.progress:  # quiet builds: no "Starting execution of Dataset ..." lines
        import logging

        logging.getLogger("ray.data").setLevel(logging.WARNING)
    # one block per local batch: a decode task per batch, so decoding streams into the actors
    # (a block per shard decoded a whole shard before the network saw its first batch)
    tables = [pa.table({"lo": [a], "hi": [b], "paths": [paths[a:b]]})
              for lo, hi in todo for a, b in local_batches(lo, hi, bs)]
    ds = ray.data.from_arrow(tables)
    ds = ds.map(decode_batch, fn_kwargs={"size": size, "batch_size": bs}, num_cpus=config.decode_cpus)
    ds = ds.map_batches(
        BackboneActor, batch_size=1, batch_format="numpy",
        fn_constructor_kwargs={"backbone_ref": [ray.put(payload)], "runtime": runtime,
                               "precision": model.precision, "size": size, "dim": dim,
                               "threads": threads, "use_gpu": gpus > 0},
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max_actors),
        num_cpus=config.cpus_per_actor, num_gpus=1 if gpus else 0,
    )
    pin_ids = ctx.pins["pin_id"].astype(str).tolist()
    pending = {lo: {"hi": hi, "parts": []} for lo, hi in todo}
    shard_rows = model.chunk_rows
    decode_nodes: set[str] = set()
    extract_nodes: set[str] = set()
    bar = tqdm(total=len(paths), initial=n_done, desc=f"{model.spec.name}: features (ray)", unit="img",
               disable=not ctx.progress)
    for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
        bar.update(len(out["row"]))
        for lo in np.unique(out["row"] // shard_rows * shard_rows):
            sel = out["row"] // shard_rows * shard_rows == lo
            entry = pending[int(lo)]
            entry["parts"].append({k: out[k][sel] for k in ("row", "ok", "features", "decode_node", "extract_node")})
            got = sum(len(p["row"]) for p in entry["parts"])
            if got < entry["hi"] - int(lo):
                continue
            merged = {k: np.concatenate([p[k] for p in entry["parts"]]) for k in entry["parts"][0]}
            order = np.argsort(merged["row"], kind="stable")
            merged = {k: v[order] for k, v in merged.items()}
            if not np.array_equal(merged["row"], np.arange(int(lo), entry["hi"])):
                raise RuntimeError(f"The Ray pipeline returned rows {merged['row'][:5]}... for shard "
                                   f"{int(lo)}-{entry['hi']}; a shard must hold each of its rows once.")
            write_shard(shard_file(folder, int(lo), entry["hi"]), merged["row"],
                        [pin_ids[r] for r in merged["row"]], merged["ok"], merged["features"],
                        merged["decode_node"].tolist(), merged["extract_node"].tolist())
            decode_nodes.update(merged["decode_node"].tolist())
            extract_nodes.update(merged["extract_node"].tolist())
            del pending[int(lo)]
    bar.close()
    if pending:
        raise RuntimeError(f"The Ray pipeline ended with {len(pending)} shard(s) unfinished; run the build again.")
    return decode_nodes, extract_nodes


def extract_features_ray(model: ImageFeatureModel, ctx: BuildContext, session: RaySession) -> tuple[np.ndarray, dict]:
    """Return (features (n_pins, d) memory-mapped, in row order; run info) of an image model.

    The cache (same ``.npy`` + sidecar as the local build) is used when its fingerprint
    matches; otherwise the missing shards are extracted on Ray and all are assembled. The run
    info has ``shards``, ``reused`` (shards found from an earlier run), ``computed``,
    ``decode_nodes`` and ``extract_nodes`` (ids of the Ray nodes that decoded images and that
    ran the network, for the shards computed in this run).
    """
    cached = load_cached_features(ctx.features_path, ctx.feature_fingerprint)
    if cached is not None:
        ctx.stats.update(cached[1])
        return cached[0], {"shards": 0, "reused": 0, "computed": 0, "decode_nodes": [], "extract_nodes": []}
    paths = [str(p) for p in ctx.pins["image"].tolist()]
    check_images_present(paths)
    n, shard_rows = len(paths), model.chunk_rows
    folder = shard_dir(ctx.features_path)
    prepare_folder(folder, {"fingerprint": ctx.feature_fingerprint, "n": n, "shard_rows": shard_rows,
                             "batch_size": model.batch_size})
    ranges = shard_ranges(n, shard_rows)
    todo = [(lo, hi) for lo, hi in ranges if not shard_file(folder, lo, hi).exists()]
    decode_nodes: set[str] = set()
    extract_nodes: set[str] = set()
    if todo:
        done = n - sum(hi - lo for lo, hi in todo)
        decode_nodes, extract_nodes = _run_pipeline(session.ensure(), model, ctx, todo, folder, session.config, paths, done)
    stats = assemble(folder, ranges, ctx.pins["pin_id"].astype(str).tolist(), ctx.features_path)
    write_sidecar(ctx.features_path, ctx.feature_fingerprint, stats)
    shutil.rmtree(folder, ignore_errors=True)
    if stats["n_corrupt_images"]:
        import warnings

        warnings.warn(f"{stats['n_corrupt_images']} image(s) could not be decoded; they got zero features.")
    ctx.stats.update(stats)
    info = {"shards": len(ranges), "reused": len(ranges) - len(todo), "computed": len(todo),
            "decode_nodes": sorted(decode_nodes), "extract_nodes": sorted(extract_nodes)}
    return np.load(ctx.features_path, mmap_mode="r"), info
