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
4. The driver writes one Parquet shard per ``chunk_rows`` pins (:mod:`.ray_pipeline`, shared
   with the text encoders' pipeline :mod:`.ray_text`) to
   ``features/<dataset>/<model>.shards/rows_<lo>_<hi>.parquet`` (:mod:`.shards`), atomically
   (temporary file, then rename). A killed build resumes with the missing shards only; shards
   of other settings (``meta.json``) are discarded.
5. When every shard exists they are assembled, in ``row`` order, into the same ``.npy`` + sidecar
   the local build writes (same fingerprint, same statistics), and the shards are removed.

Only the driver needs the store; every worker must read the image paths as stored at import
(a shared filesystem mounted at the same path). Ray is imported only by the engine's modules,
and only when the engine is chosen.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..models.base import BuildContext
from ..models.extract import load_image_batch
from ..models.image import ImageFeatureModel, check_images_present
from .ray_pipeline import PipelineRun, actor_pool, actor_rows, batch_tables, collect_shards, extract_sharded, quiet_progress
from .ray_session import RaySession


def supports(model: object) -> bool:
    """Whether this pipeline extracts the model's features (image feature models)."""
    return isinstance(model, ImageFeatureModel)


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
    """A backbone actor: features of whole local batches (the padding cut off). It runs on
    the CPU when CUDA is not there, even in an actor that holds a GPU.

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

        with tempfile.TemporaryDirectory(prefix="pmm-actor-graph-") as folder:  # loaded eagerly: then removed
            path = Path(folder) / f"backbone.{runtime}.onnx"
            path.write_bytes(payload)
            forward = load_forward(runtime, path, threads=threads, precision=precision)
        self.backbone = GraphBackbone(forward, size, dim, runtime)

    def __call__(self, batch: dict) -> dict:
        """Rows of local batches -> one row per pin (:func:`.ray_pipeline.actor_rows`)."""
        lo_hi, oks, feats = [], [], []
        for i in range(len(batch["lo"])):
            lo, hi = int(batch["lo"][i]), int(batch["hi"][i])
            ok = np.asarray(batch["ok"][i][:hi - lo], dtype=bool)
            f = np.asarray(self.backbone(np.asarray(batch["pixels"][i][:hi - lo])), dtype=np.float32)
            f[~ok] = 0.0
            lo_hi.append((lo, hi))
            oks.append(ok)
            feats.append(f)
        return actor_rows(lo_hi, oks, feats, [str(d) for d in batch["decode_node"]], self.node)


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
                  folder: Path, config, paths: list[str], n_done: int) -> PipelineRun:
    """Extract the ``todo`` shards into ``folder``; return the nodes and GPUs that did it."""
    from tqdm.auto import tqdm

    payload, runtime, size, dim = _backbone_payload(model, ctx)
    bs = model.batch_size
    quiet_progress(ray, ctx.progress)
    pool = actor_pool(ray, config, use_gpus=True, reserve_cpus=config.cpus_per_actor)
    threads = model.threads or max(1, int(config.cpus_per_actor))
    # one block per local batch: a decode task per batch, so decoding streams into the actors
    # (a block per shard decoded a whole shard before the network saw its first batch)
    ds = ray.data.from_arrow(batch_tables(todo, bs, "paths", paths))
    ds = ds.map(decode_batch, fn_kwargs={"size": size, "batch_size": bs}, num_cpus=config.decode_cpus)
    ds = ds.map_batches(
        BackboneActor, batch_size=1, batch_format="numpy",
        fn_constructor_kwargs={"backbone_ref": [ray.put(payload)], "runtime": runtime,
                               "precision": model.precision, "size": size, "dim": dim,
                               "threads": threads, "use_gpu": pool["num_gpus"] > 0},
        **pool,
    )
    bar = tqdm(total=len(paths), initial=n_done, desc=f"{model.spec.name}: features (ray)", unit="img",
               disable=not ctx.progress)
    return collect_shards(ds.iter_batches(batch_size=None, batch_format="numpy"), todo, folder,
                          ctx.pins["pin_id"].astype(str).tolist(), bar,
                          PipelineRun(gpus_per_actor=pool["num_gpus"]))


def _image_stats(bad_rows: list[int]) -> dict:
    """The sidecar statistics of a local image build, from the rows that did not decode."""
    if bad_rows:
        warnings.warn(f"{len(bad_rows)} image(s) could not be decoded; they got zero features.")
    return {"n_corrupt_images": len(bad_rows), "corrupt_rows": bad_rows[:100]}


def extract_features_ray(model: ImageFeatureModel, ctx: BuildContext, session: RaySession) -> tuple[np.ndarray, dict]:
    """Return (features (n_pins, d) memory-mapped, in row order; run info) of an image model
    (:func:`.ray_pipeline.extract_sharded`: cache, resume, assembly; run info keys there)."""
    paths = [str(p) for p in ctx.pins["image"].tolist()]

    def run(todo, folder, n_done):
        return _run_pipeline(session.ensure(), model, ctx, todo, folder, session.config, paths, n_done)

    return extract_sharded(ctx, shard_rows=model.chunk_rows, batch_size=model.batch_size, run=run,
                           stats_of=_image_stats, check=lambda: check_images_present(paths))
