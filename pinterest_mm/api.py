"""The library facade: open a store, list datasets, read models, fuse, evaluate, predict.

::

    from pinterest_mm import Lab

    lab = Lab()                                  # the store in $PINTEREST_MM_HOME (or Lab("path"))
    print(lab.datasets())                        # name, n_pins, n_classes, n_users, split_counts
    ds = lab.dataset("demo")
    print(ds.models())                           # every built model and its scores
    res = ds.fuse("mm", l=2)                     # any registered method and config
    ev = ds.evaluate(res)                        # accuracy, top-k, confusion, F1, calibration
    rep = ds.repeats(5)                          # 5 re-splits: mean ± sd, share of repeats per verdict
    pin = ds.predict(image="pin.jpg", text="Chocolate cake recipe")
    print(ds.top_k(pin.fused))                   # [("Food and drink", 0.81), ...]

``Lab`` only reads the store (it can be used beside a running app or build). Fusions are
fitted in the process (settings chosen on validation) and remembered per config; model
predictors are loaded once, on the first prediction that needs them.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from . import compare, metrics
from .outputs import Outputs, load_outputs
from .predict import (
    OUTPUT_COLUMNS,
    PinPrediction,
    clip_text,
    fusion_weights,
    load_image,
    load_predictors,
    open_pin,
    predict_pins,
    prediction_rows,
    read_pin_table,
    top_k,
)
from .safecsv import safe_csv
from .store import Store


class Lab:
    """A store of datasets, opened read-only.

    Args:
        home: The store folder; default ``$PINTEREST_MM_HOME`` (else ``artifacts/``).
    """

    def __init__(self, home: str | Path | None = None) -> None:
        self.store = Store(home, read_only=True)
        self._datasets: dict[str, Dataset] = {}

    def datasets(self) -> pd.DataFrame:
        """One row per imported dataset: name, created_at, n_pins, n_classes, n_users,
        split_counts (split -> pins) and manifest (the imported file)."""
        return self.store.list_datasets()

    def dataset(self, name: str) -> "Dataset":
        """One dataset's models, fusions and predictions.

        Raises:
            DatasetNotFound: No dataset of that name (the message lists the known ones).
        """
        self.store.dataset_info(name)
        version = self.store.version(name)
        cached = self._datasets.get(name)
        if cached is None or cached.version != version:
            cached = self._datasets[name] = Dataset(self.store, name, version)
        return cached


class Dataset:
    """One imported dataset, read at one version (``Lab.dataset`` opens it).

    Attributes:
        name: The dataset's name.
        version: The store version it was read at (a later build or import gives a new one).
        outputs: Every built model's cached probabilities (:class:`~pinterest_mm.outputs.Outputs`).
    """

    def __init__(self, store: Store, name: str, version: str) -> None:
        self.store = store
        self.name = name
        self.version = version
        self.outputs: Outputs = load_outputs(store, name)
        self._fusions: dict[str, object] = {}
        self._predictors: dict[str, object] = {}

    @property
    def classes(self) -> list[str]:
        """Class names; index = label."""
        return self.outputs.classes

    def models(self) -> pd.DataFrame:
        """Every built model, best validation accuracy first.

        Columns: model, family, modality, val_accuracy, test_accuracy, test_top2, test_top5,
        cv_score, seconds, params.
        """
        out, rows = self.outputs, []
        for name, info in out.models.items():
            test = out.probs[name].get("test")
            curve = None if test is None else metrics.topk_curve(test, out.y["test"])
            rows.append({
                "model": name, "family": info.family, "modality": info.modality,
                "val_accuracy": info.val_accuracy, "test_accuracy": info.test_accuracy,
                "test_top2": None if curve is None else float(curve[1]),
                "test_top5": None if curve is None else float(curve[4]),
                "cv_score": info.cv_score, "seconds": info.seconds, "params": info.params,
            })
        df = pd.DataFrame(rows, columns=["model", "family", "modality", "val_accuracy", "test_accuracy",
                                         "test_top2", "test_top5", "cv_score", "seconds", "params"])
        return df.sort_values(["val_accuracy", "model"], ascending=[False, True], ignore_index=True)

    @staticmethod
    def methods() -> list[str]:
        """Every registered fusion method."""
        from .fusion import list_methods

        return list_methods()

    def fuse(self, method: str = "mm", **config):
        """Fit a fusion method (settings chosen on validation) and return its ``FusionResult``.

        Args:
            method: A registered method (see :meth:`methods`).
            **config: Fields of the method's config, e.g. ``l=2`` or ``models=("a", "b")``
                for ``mm``, ``image_model=, text_model=, lam=`` for ``lambda``.

        Raises:
            ValueError: Unknown method or config field, or the method cannot run here.
        """
        from .fusion import fuse, get_method, make_config

        try:
            get_method(method)
            make_config(method, **config)
        except (KeyError, TypeError) as exc:
            raise ValueError(str(exc).strip("'\"")) from exc
        key = json.dumps({"method": method, **{k: list(v) if isinstance(v, tuple) else v
                                                for k, v in config.items()}}, sort_keys=True, default=str)
        if key not in self._fusions:
            self._fusions[key] = fuse(self.outputs, method, version=self.version, **config)
        return self._fusions[key]

    def evaluate(self, what, split: str = "test") -> compare.Evaluation:
        """Score a fusion result or a built model (by name) on ``val`` or ``test``."""
        out = self.outputs
        if isinstance(what, str):
            if what not in out.models or split not in out.probs[what]:
                raise ValueError(f"No {split} probabilities for model {what!r}; built: {sorted(out.models)}.")
            probs = out.probs[what][split]
        else:
            probs = compare.split_probs(what, split)
        return compare.evaluate(probs, out.y[split], out.n_classes, split)

    def compare(self, methods: list[str] | None = None, split: str = "test", n_boot: int = 1000) -> dict:
        """Every method (default configs) vs the best single model; see
        :func:`pinterest_mm.compare.compare_methods`. Methods that cannot run are listed
        under ``errors``."""
        fitted, errors = {}, {}
        for m in methods or self.methods():
            try:
                fitted[m] = self.fuse(m)
            except ValueError as exc:
                errors[m] = str(exc)
        return {**compare.compare_methods(self.outputs, fitted, split, n_boot), "errors": errors}

    def repeats(self, k: int = 5, methods: list[str] | None = None, on_progress=None) -> dict:
        """K stratified re-splits with new seeds: classifiers refit on the cached features, mean ±
        sd per model and fusion, the share of repeats in which each claim holds; see
        :func:`pinterest_mm.repeats.run_repeats` (``on_progress(done, k, message)``)."""
        from .repeats import DEFAULT_METHODS, RepeatConfig, run_repeats

        cfg = RepeatConfig(repeats=k, methods=tuple(methods) if methods else DEFAULT_METHODS)
        return run_repeats(self.store, self.name, cfg, outputs=self.outputs, on_progress=on_progress)

    # ------------------------------------------------------------------------- prediction
    def predictors(self, models: list[str]) -> dict:
        """Model name to its loaded predictor, or why it cannot be loaded (str); loaded once."""
        from .models import load_predictor

        missing = [m for m in models if m not in self._predictors]
        self._predictors.update(load_predictors(missing, partial(load_predictor, self.store, self.name)))
        return {m: self._predictors[m] for m in models}

    def predict(self, image: Image.Image | str | Path | None = None, text: str | None = None,
                method: str = "mm", **config) -> PinPrediction:
        """Each model's probabilities for one new pin and the fused ones.

        Args:
            image: A PIL image or an image file's path (checked as the importer checks), or None.
            text: The pin's description (cut at 5,000 characters), or None.
            method: A fusion method with per-model weights (mm, lambda, equal, optimized,
                log_linear, best_single); its settings are chosen on validation.
            **config: The method's config (see :meth:`fuse`).

        Raises:
            ValueError: No image and no text; an unusable image file; a learned method.
        """
        return self.predict_batch([image], [text], method, **config)[0]

    def predict_batch(self, images: list, texts: list, method: str = "mm", **config) -> list[PinPrediction]:
        """:meth:`predict` for many pins at once (each model predicts the batch in one call).

        ``images[i]`` and ``texts[i]`` belong to pin i; either may be None.
        """
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts: give one of each per pin (None or '').")
        pics = [load_image(im) if isinstance(im, (str, Path)) else im for im in images]
        words = [clip_text(t)[0] for t in texts]
        if any(p is None and not t for p, t in zip(pics, words)):
            raise ValueError("Every pin needs an image or a description.")
        weights, combine = fusion_weights(self.fuse(method, **config))
        modalities = {m: info.modality for m, info in self.outputs.models.items()}
        return predict_pins(self.predictors(list(weights)), modalities, weights, pics, words, combine)

    def predict_file(self, manifest: str | Path, out: str | Path, method: str = "mm", *,
                     images_root: str | Path | None = None, k: int = 3, batch_size: int = 32,
                     progress: bool = False, **config) -> dict:
        """Predict every pin of a CSV/Parquet table and write each model's and the fused top-k.

        Args:
            manifest: A table with ``image`` and/or ``description`` columns (``pin_id``
                optional); image paths are relative to ``images_root`` (default its folder).
            out: The output table, ``.csv`` or ``.parquet``: one row per (pin, source, rank),
                see :func:`pinterest_mm.predict.prediction_rows`.
            method, **config: The fusion (see :meth:`predict`).
            k: Classes per source.
            batch_size: Pins loaded and predicted together.
            progress: Show a progress bar (stderr).

        Returns:
            ``pins``, ``with_image``, ``with_text``, ``unpredicted`` (pins no model could
            vote on), ``notes`` (pins with an input problem), ``out`` and the fusion's ``chosen``.
        """
        from tqdm.auto import tqdm

        out = Path(out)
        if out.suffix.lower() not in (".csv", ".parquet"):
            raise ValueError(f"Write the predictions to a .csv or .parquet file, not {out.name}.")
        if k < 1 or batch_size < 1:
            raise ValueError(f"k and batch_size must be 1 or more (got k={k}, batch_size={batch_size}).")
        result = self.fuse(method, **config)
        fusion_weights(result)  # a learned method fails here, before any model is loaded
        rows = read_pin_table(manifest, images_root)
        records, stats = [], dict(pins=len(rows), with_image=0, with_text=0, unpredicted=0, notes=0)
        with tqdm(total=len(rows), desc="Predicting pins", unit="pin", disable=not progress) as bar:
            for start in range(0, len(rows), batch_size):
                pins = [open_pin(r) for r in rows[start:start + batch_size]]
                todo = [i for i, p in enumerate(pins) if p.image is not None or p.text]
                voted = self.predict_batch([pins[i].image for i in todo], [pins[i].text for i in todo],
                                           method, **config) if todo else []
                preds = dict(zip(todo, voted))
                for i, p in enumerate(pins):
                    stats["with_image"] += p.image is not None
                    stats["with_text"] += bool(p.text)
                    stats["notes"] += bool(p.note)
                    pred = preds.get(i)
                    if pred is None or pred.fused is None:
                        stats["unpredicted"] += 1
                    if pred is None:
                        records.append(dict(pin_id=p.pin_id, source="fused", rank=None, category=None,
                                            probability=None, note=p.note or "no image and no description"))
                    else:
                        records += prediction_rows(p.pin_id, pred, self.classes, k, p.note)
                bar.update(len(pins))
        frame = pd.DataFrame(records, columns=OUTPUT_COLUMNS).astype({"rank": "Int64", "probability": "Float64"})
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".csv":
            out.write_bytes(safe_csv(frame))  # pin ids and notes come from the input table
        else:
            frame.to_parquet(out, index=False)
        return {**stats, "out": str(out), "chosen": result.chosen}

    def top_k(self, probs: np.ndarray | None, k: int = 3) -> list[tuple[str, float]]:
        """The k most probable (class, probability) of probabilities (C,); [] for None."""
        return [] if probs is None else top_k(probs, self.classes, k)
