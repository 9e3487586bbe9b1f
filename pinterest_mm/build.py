"""Build a dataset's models: features -> logistic regression -> probability vectors (store).

Per model the stages are: features (cached ``.npy``, reused, resumable in chunks for images)
-> logistic regression with C chosen by 5-fold CV on train (thesis 3.4.1; out-of-fold train
probabilities) -> val/test probabilities -> :meth:`Store.save_model`. End-to-end classifiers
(transformers, TF-IDF) replace the middle stages with their own fit.

Every model is saved with a fingerprint: a hash of the dataset's fingerprint, the model's
name and settings and the classifier settings. A model whose stored fingerprint matches is
skipped, so a second build recomputes nothing and adding a model computes only that one.
A model whose weights are not on this machine is reported and skipped; the others build.

One build of a dataset runs at a time: :func:`build` holds the dataset's lock
(:mod:`pinterest_mm.locks`), which ``import --replace`` takes too, so a second build or a
replace is refused at once instead of overwriting this one's files. Every model is saved only
against the dataset version (:meth:`Store.dataset_version`) the build started from; should the
dataset change anyway (e.g. replaced by a process that ignored the lock), the build stops with
:class:`~pinterest_mm.store.DatasetChanged` and saves nothing of the old version.
"""

from __future__ import annotations

import random
import sys
import time
import traceback
from dataclasses import asdict

import numpy as np

from .config import SPLITS
from .models.base import BuildContext, Classifier, FeatureModel, check_contract, fingerprint_of, pick_device
from .models.checkpoints import FORMAT as CHECKPOINT_FORMAT
from .models.checkpoints import save_estimator
from .models.classify import LogRegConfig, fit_logreg_cv, split_features
from .models.registry import ModelSpec, WeightsUnavailable, default_models, get_model, local_weights, weights_identity
from .store import DatasetChanged, DatasetNotFound, Store

BUILD_VERSION = 2  # bump when a change of this code changes outputs (2: CV really uses 5 folds)


class BuildFailed(RuntimeError):
    """Every requested model failed or was unavailable; ``results`` holds the summary."""

    def __init__(self, message: str, results: list[dict]) -> None:
        super().__init__(message)
        self.results = results


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (when imported)."""
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


def _say(msg: str, progress: bool) -> None:
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(msg, file=sys.stderr)


def resolve_models(models: list[str] | str | None) -> list[ModelSpec]:
    """Return the specs to build: the named ones (comma list allowed), or the available defaults.

    Raises:
        UnknownModelError: A name is not registered (before any work is done).
    """
    if models is None:
        return default_models(available_only=True)
    names = models.split(",") if isinstance(models, str) else list(models)
    return [get_model(n.strip()) for n in names if n.strip()]


def split_index(store: Store, dataset: str):
    """Return (pins in row order, split -> global rows, split -> labels)."""
    pins = store.pins(dataset).reset_index(drop=True)
    if not np.array_equal(pins["row"].to_numpy(), np.arange(len(pins))):
        raise RuntimeError(f"Dataset {dataset!r}: pin rows are not 0..n-1; re-import it.")
    rows, labels = {}, {}
    for split in SPLITS:
        part = pins[pins["split"] == split].sort_values("split_row")
        rows[split] = part["row"].to_numpy()
        labels[split] = part["label"].to_numpy().astype(int)
    return pins, rows, labels


def model_fingerprints(spec: ModelSpec, model: FeatureModel | Classifier, dataset_fp: str, logreg: LogRegConfig) -> tuple[str, str]:
    """Return (feature fingerprint, model fingerprint)."""
    config = model.config()
    weights = local_weights(spec.name, getattr(model, "options", None))
    if weights is None and not spec.offline:  # hub weights from a local cache (downloaded, unpacked)
        from .models.weights_store import locate

        weights = locate(spec)
    if weights is not None:  # other weights, other features: identify the file, not its path
        config = {**config, "weights": weights_identity(weights)}
    feat = fingerprint_of({"dataset": dataset_fp, "model": spec.name, "config": config})
    payload = {"features": feat, "kind": spec.kind, "v": BUILD_VERSION}
    if spec.kind == "features":
        payload["logreg"] = asdict(logreg)
        payload["checkpoint"] = CHECKPOINT_FORMAT
    return feat, fingerprint_of(payload)


def _ray_extractor(model):
    """The Ray engine's feature extraction of ``model``, or None when it builds in this process
    (word-vector averages; classifiers: see :func:`_ray_frozen_embedder`, :mod:`.engines.ray_text`)."""
    from .engines import ray_extract, ray_text

    if ray_extract.supports(model):
        return ray_extract.extract_features_ray
    if ray_text.supports(model):
        return ray_text.extract_text_features_ray
    return None


def _say_engine(name: str, info: dict | None, progress: bool) -> None:
    """Say how many shards the Ray engine extracted and on how many nodes."""
    if info and info["shards"]:
        nodes = len(set(info["decode_nodes"]) | set(info["extract_nodes"]))
        _say(f"{name}: ray engine: {info['computed']} of {info['shards']} shards extracted "
             f"({info['reused']} kept from an earlier run) on {nodes} node(s)", progress)


def _ray_frozen_embedder(model, session):
    """For a classifier whose fit embeds with a frozen encoder (``minilm-l6`` on a CPU), on the
    Ray engine: the embedder its fit uses instead of embedding here (None otherwise)."""
    if session is None:
        return None
    from .engines import ray_text

    if not ray_text.supports_frozen_transformer(model):
        return None
    model.frozen_embedder = ray_text.FrozenTransformerEmbedder(session)
    return model.frozen_embedder


def _compute_features(model, ctx: BuildContext, name: str, session, progress: bool) -> tuple[np.ndarray, dict | None]:
    """(features (n_pins, d), Ray run info or None) of a feature model: on Ray when ``session``
    is a Ray session and the engine covers the model (image models, frozen text encoders), else
    in this process."""
    if session is not None:
        extract = _ray_extractor(model)
        if extract is not None:
            X, info = extract(model, ctx, session)
            _say_engine(name, info, progress)
            return X, info
        _say(f"{name}: features computed in this process (the ray engine runs image models and "
             "frozen text encoders)", progress)
    return model.compute_features(ctx), None


def _accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float((probs.argmax(1) == y).mean()) if len(y) else 0.0


def _build_one(store: Store, dataset: str, spec: ModelSpec, *, info: dict, version: str, pins, rows,
               labels, n_classes: int, device: str, progress: bool, options: dict,
               logreg: LogRegConfig, force: bool, seed: int, session=None) -> dict:
    model = check_contract(spec.create(**options), spec.kind, spec.name)
    model.device = device
    feat_fp, fp = model_fingerprints(spec, model, info["fingerprint"], logreg)
    if not force and store.model_fingerprint(dataset, spec.name) == fp:
        _say(f"{spec.name}: up to date (cached)", progress)
        return {"model": spec.name, "status": "cached", "seconds": 0.0, "message": ""}
    seed_everything(seed)
    t0 = time.perf_counter()
    ckpt = store.checkpoints_dir(dataset, spec.name)
    ctx = BuildContext(
        store=store, dataset=dataset, pins=pins, n_classes=n_classes, rows=rows, labels=labels,
        features_path=store.features_path(dataset, spec.name), checkpoints=ckpt,
        feature_fingerprint=feat_fp, device=device, progress=progress, seed=seed,
    )
    stages: dict[str, float] = {}
    engine_info = None
    if spec.kind == "features":
        X, engine_info = _compute_features(model, ctx, spec.name, session, progress)
        shape = X.shape
        del X  # saved to ctx.features_path; the classifiers read it memory-mapped, split by split
        stages["features"] = time.perf_counter() - t0
        _say(f"{spec.name}: features {shape} ready ({stages['features']:.1f}s); logistic regression CV", progress)
        t1 = time.perf_counter()
        split_X = split_features(ctx.features_path, {s: rows[s] for s in SPLITS})
        res = fit_logreg_cv(split_X["train"], labels["train"], n_classes, logreg,
                            progress=spec.name if progress else None)
        probs = {"train": res.oof_probs}
        for s in ("val", "test"):
            probs[s] = res.predict_proba(split_X[s], n_classes) if len(rows[s]) else np.zeros((0, n_classes), np.float32)
        save_estimator(res.estimator, ckpt / "logreg.skops")
        model.save_state(ckpt)
        stages["logreg"] = time.perf_counter() - t1
        params = {"C": res.C, "cv_scores": {str(k): v for k, v in res.cv_scores.items()},
                  "dim": int(shape[1]), **ctx.stats}
        cv_score = res.cv_score
    else:
        embedder = _ray_frozen_embedder(model, session)
        out = model.fit(ctx)
        stages["fit"] = time.perf_counter() - t0
        engine_info = embedder.info if embedder is not None else None
        _say_engine(spec.name, engine_info, progress)
        probs, params, cv_score = out["probs"], dict(out["params"]), out["cv_score"]
    seconds = time.perf_counter() - t0
    params.update({"stage_seconds": {k: round(v, 3) for k, v in stages.items()},
                   "config": model.config(), "options": options, "seed": seed})
    params.setdefault("n_unknown_text", ctx.stats.get("n_unknown_text", 0) if spec.modality == "text" else None)
    val_acc, test_acc = _accuracy(probs["val"], labels["val"]), _accuracy(probs["test"], labels["test"])
    store.save_model(
        dataset, spec.name, family=spec.family, modality=spec.modality, params=params,
        cv_score=cv_score, val_accuracy=val_acc, test_accuracy=test_acc, seconds=seconds,
        fingerprint=fp, probs=probs, dataset_version=version,
    )
    _say(f"{spec.name}: built in {seconds:.1f}s, val {val_acc:.4f}, test {test_acc:.4f}", progress)
    out = {"model": spec.name, "status": "built", "seconds": seconds, "message": "",
           "val_accuracy": val_acc, "test_accuracy": test_acc}
    if engine_info is not None:
        out["engine"] = engine_info  # the ray engine's shards and nodes
    return out


def build(
    store: Store,
    dataset: str,
    models: list[str] | str | None = None,
    *,
    progress: bool = True,
    device: str | None = None,
    options: dict[str, dict] | None = None,
    logreg: LogRegConfig = LogRegConfig(),
    force: bool = False,
    seed: int = 0,
    runtime=None,
    engine: str = "local",
    address: str | None = None,
) -> list[dict]:
    """Build models of a dataset into the store and return one summary dict per model.

    Args:
        store: The store.
        dataset: An imported dataset's name.
        models: Model names (list or comma-separated); default: the offline default set
            that is available here.
        progress: Show progress bars and stage messages (stderr).
        device: Torch device; default ``cuda`` when present, else ``cpu``.
        options: Per model name, constructor options (e.g. ``{"minilm-l6": {"epochs": 1}}``).
        logreg: Classifier settings of feature models (thesis defaults).
        force: Rebuild even when the stored fingerprint matches.
        seed: Seed of every random step.
        runtime: :class:`~pinterest_mm.models.runtimes.RuntimeSettings` of the image models
            (backend, precision, threads, decoding threads); ``options`` win over it.
        engine: ``local`` (this process) or ``ray``: image and frozen text encoders' features
            (e5, and MiniLM's frozen mode inside its fit) extracted by Ray Data pipelines (:mod:`pinterest_mm.engines.ray_extract`,
            :mod:`~pinterest_mm.engines.ray_text`), same features and probabilities.
        address: Ray cluster address (``auto`` or ``HOST:6379``); None: a local cluster.
            Only with ``engine="ray"``; ``ray://`` (Ray Client) is refused with the
            ``ray job submit`` command that runs the build on the cluster.

    Returns:
        Dicts with ``model``, ``status`` (``built``, ``cached``, ``unavailable``,
        ``failed``), ``seconds`` and ``message`` (+ accuracies when built; + ``engine``, the
        run info of :func:`~pinterest_mm.engines.ray_pipeline.extract_sharded`, for models
        the Ray engine extracted).

    Raises:
        UnknownModelError: An unknown name was requested (nothing is built).
        BuildFailed: Every requested model was unavailable or failed.
        EngineUnavailable: ``engine="ray"`` without Ray installed, or with a ``ray://``
            address (nothing is built).
        DatasetBusy: Another build or an import of this dataset is running (nothing is done).
        DatasetChanged: The dataset was replaced or deleted during the build; the model being
            built then was not saved (models finished before were saved on the old version,
            which the replace removed).
    """
    specs = resolve_models(models)
    options = options or {}
    session = _engine_session(store, engine, address, dataset)
    with store.lock_dataset(dataset, "a build"):
        version = store.dataset_version(dataset)  # first: pins read after a change never pass as this version
        info = store.dataset_info(dataset)
        pins, rows, labels = split_index(store, dataset)
        n_classes = len(store.classes(dataset))
        try:
            return _build_all(store, dataset, specs, info=info, version=version, pins=pins, rows=rows,
                              labels=labels, n_classes=n_classes, device=pick_device(device),
                              progress=progress, options=options, runtime=runtime, logreg=logreg,
                              force=force, seed=seed, session=session)
        finally:
            if session is not None:
                session.close()


def _engine_session(store: Store, engine: str, address: str | None, dataset: str = "NAME"):
    """None for the local engine; for ``ray`` a session that connects on first use.

    Raises:
        ValueError: An unknown engine, or an address without the Ray engine.
        EngineUnavailable: Ray is not installed, or a Ray Client address.
    """
    if engine not in ("local", "ray"):
        raise ValueError(f"Unknown build engine {engine!r}; choose 'local' (this process) or 'ray'.")
    if engine == "local":
        if address:
            raise ValueError("A Ray address was given with the local engine; add --engine ray "
                             "(engine='ray') to build on that cluster, or leave the address out.")
        return None
    from .engines.ray_session import RayEngineConfig, RaySession, check_address, require_ray

    require_ray()
    check_address(address, dataset)
    return RaySession(RayEngineConfig(address=address), store.root)


def _check_unchanged(store: Store, dataset: str, version: str, cause: BaseException | None = None) -> None:
    """Raise :class:`DatasetChanged` when ``dataset`` is no longer at ``version``."""
    try:
        now = store.dataset_version(dataset)
    except DatasetNotFound:
        now = "deleted"
    if now != version:
        raise DatasetChanged(
            f"Dataset {dataset!r} was replaced or deleted while this build ran, so it stopped: "
            "results of the old version are not saved under the new one. Run "
            f"`pinterest-mm build {dataset}` again to build on the current version."
        ) from cause


def _build_all(store: Store, dataset: str, specs: list[ModelSpec], *, version: str,
               options: dict[str, dict], progress: bool, runtime=None, **common) -> list[dict]:
    results = []
    for spec in specs:
        _check_unchanged(store, dataset, version)
        opts = dict(options.get(spec.name, {}))
        if runtime is not None and spec.modality == "image" and spec.kind == "features":
            opts = {**runtime.model_options(), **opts}
        try:
            results.append(_build_one(
                store, dataset, spec, version=version, options=opts,
                progress=progress, **common,
            ))
        except DatasetChanged:
            raise
        except WeightsUnavailable as exc:
            print(f"{spec.name}: skipped. {exc}", file=sys.stderr)
            results.append({"model": spec.name, "status": "unavailable", "seconds": 0.0, "message": str(exc)})
        except Exception as exc:  # one broken model must not stop the others
            _check_unchanged(store, dataset, version, exc)  # files gone because it was replaced?
            print(f"{spec.name}: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            if progress and not isinstance(exc, OSError):  # disk full, files gone: the message says it all
                traceback.print_exc()
            results.append({"model": spec.name, "status": "failed", "seconds": 0.0,
                            "message": f"{type(exc).__name__}: {exc}"})
    ok = [r for r in results if r["status"] in {"built", "cached"}]
    if results and not ok:
        lines = "; ".join(f"{r['model']}: {r['status']}" for r in results)
        raise BuildFailed(f"No model could be built ({lines}).", results)
    return results


def format_build_summary(results: list[dict]) -> str:
    """Return a short text table of :func:`build` results."""
    from .textable import text_table

    return text_table(["model", "status", "seconds", "val_acc"],
                      [[r["model"], r["status"], r["seconds"], r.get("val_accuracy")] for r in results],
                      digits=[0, 0, 1, 4], rule=False)
