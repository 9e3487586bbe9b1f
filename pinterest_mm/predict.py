"""Predicting new pins: every model's vote and their fusion (the Predict page, ``Lab.predict``
and ``pinterest-mm predict``).

A fusion result with per-model weights (MM, lambda, equal, optimized, log-linear, best single)
applies to a new pin as it is: each model that can vote gives probabilities (C,), and the
weights of the models that voted are renormalized and combined (weighted sum, or log-linear
pooling for ``log_linear``). Learned fusions (stacking, gated, MLPs) have no per-model weights
and cannot be applied this way: :func:`fusion_weights` says so.

Nothing here imports Streamlit or torch; predictors come from
:func:`pinterest_mm.models.load_predictor` (imported when models are loaded).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from .errors import one_line

MAX_TEXT_CHARS = 5_000


@dataclass
class PinPrediction:
    """One pin's prediction.

    Attributes:
        probs: Model name to probabilities (C,) for the models that could predict.
        skipped: Model name to why it gave no vote.
        weights: The fusion weights used (renormalized over the models that voted).
        fused: Fused probabilities (C,), or None when no model of the fusion voted.
        image_share: Share of the fusion weight on image models.
        seconds: Model name to prediction time (for a batch: the model's time per pin).
    """

    probs: dict[str, np.ndarray]
    skipped: dict[str, str]
    weights: dict[str, float]
    fused: np.ndarray | None
    image_share: float
    seconds: dict[str, float]


def fusion_weights(result) -> tuple[dict[str, float], str]:
    """The (per-model weights, combine rule) with which a fusion result predicts a new pin.

    Args:
        result: A :class:`pinterest_mm.fusion.FusionResult`.

    Returns:
        (weights, ``"log_linear"`` for log-linear pooling else ``"sum"``).

    Raises:
        ValueError: The method has no per-model weights (a learned fusion).
    """
    if not result.weights:
        raise ValueError(
            f"The fusion method {result.method!r} has no per-model weights to apply to a new pin; "
            "use mm, lambda, equal, optimized, log_linear or best_single.")
    return dict(result.weights), ("log_linear" if result.method == "log_linear" else "sum")


@dataclass
class PinFusion:
    """The fusion whose per-model weights predict a new pin (see :func:`pin_fusion`).

    Attributes:
        result: The :class:`pinterest_mm.fusion.FusionResult` applied.
        weights: Its per-model weights.
        combine: ``"log_linear"`` or ``"sum"`` (see :func:`fusion_weights`).
        label: What is applied, in words.
        problem: Why the asked setting could not be used ("" when it was, or was learned).
    """

    result: object
    weights: dict[str, float]
    combine: str
    label: str
    problem: str = ""


def pin_fusion(outputs, method: str, config: dict, fit: Callable[..., object], label: str = "") -> PinFusion:
    """Choose the fusion that weights a new pin's votes.

    The asked method with its config when it has per-model weights; otherwise (a learned
    method, which has none and is not trained just to look, or a setting that cannot run on
    this dataset) MM over the thesis selection (:func:`~.fusion.select.thesis_selection`)
    with l chosen on validation.

    Args:
        outputs: The dataset's :class:`~pinterest_mm.outputs.Outputs`.
        method: The asked fusion method.
        config: Its config fields.
        fit: ``fit(method, **config) -> FusionResult``, e.g. a cached :func:`pinterest_mm.fusion.fuse`.
        label: The asked setting in words (the label when it is applied).
    """
    from .fusion.registry import get_method
    from .fusion.select import thesis_selection

    problem = ""
    if get_method(method).kind != "learned":
        try:
            res = fit(method, **config)
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:  # cannot run here: say why
            problem = f"The current fusion setting cannot be used ({one_line(exc)})."
        else:
            if res.weights:
                return PinFusion(res, *fusion_weights(res), label or method)
    res = fit("mm", models=tuple(thesis_selection(outputs)))
    label = (f"MM over the thesis selection, l = {res.chosen.get('l', 1):g} chosen on validation "
             f"(the method {method} has no per-model weights to apply to one pin)")
    return PinFusion(res, *fusion_weights(res), label, problem)


def clip_text(text: str | None, limit: int = MAX_TEXT_CHARS) -> tuple[str, str]:
    """Return (text to use, note); long texts are cut at ``limit`` characters."""
    text = (text or "").replace("\x00", " ").strip()
    if len(text) > limit:
        return text[:limit], f"The description has {len(text):,} characters; the first {limit:,} are used."
    return text, ""


def top_k(p: np.ndarray, classes: list[str], k: int = 3) -> list[tuple[str, float]]:
    """The k most probable (class, probability) of a probability vector (C,)."""
    idx = np.argsort(-p, kind="stable")[:k]
    return [(classes[i], float(p[i])) for i in idx]


def load_predictors(models: list[str], load: Callable[[str], object]) -> dict:
    """Model name to ``load(name)`` (a predictor), or to why it cannot be loaded (str).

    Args:
        models: Model names.
        load: Loads one model's predictor, e.g.
            ``functools.partial(pinterest_mm.models.load_predictor, store, dataset)``.
    """
    res: dict = {}
    for m in models:
        try:
            res[m] = load(m)
        except Exception as exc:  # noqa: BLE001 - unknown model, missing checkpoint or weights: its reason
            res[m] = f"cannot be loaded ({one_line(exc)})"
    return res


def load_image(path: str | Path) -> Image.Image:
    """Open an image file as an upright RGB image, with the importer's checks.

    The file goes through :func:`pinterest_mm.data.clean.inspect_image` first (missing,
    empty, not an image, truncated, decompression bomb, over 64 Mpx), then is decoded as the
    models saw the dataset's images: first frame, EXIF orientation, RGB on white.

    Raises:
        ValueError: The file cannot be used, with the reason.
    """
    from .data.clean import inspect_image, to_rgb, upright

    check = inspect_image(Path(path))
    if not check.ok:
        raise ValueError(f"The image {Path(path).name} cannot be used: {check.reason}.")
    with Image.open(path) as im:
        return to_rgb(upright(im)).copy()


def _combine(probs: dict[str, np.ndarray], modalities: dict[str, str], weights: dict[str, float],
             combine: str) -> tuple[dict[str, float], np.ndarray | None, float]:
    """Renormalized weights, fused probabilities (C,) and image share of the models that voted."""
    from .fusion.late import log_linear, weighted_sum

    used = {m: float(weights.get(m, 0.0)) for m in probs if weights.get(m, 0.0) > 0}
    total = sum(used.values())
    if not used or total <= 0:
        return {}, None, 0.0
    w = {m: v / total for m, v in used.items()}
    stack = np.stack([probs[m] for m in w])[:, None, :]
    vec = np.array(list(w.values()))
    fused = (log_linear(stack, vec) if combine == "log_linear" else weighted_sum(stack, vec))[0]
    image_share = sum(v for m, v in w.items() if modalities.get(m) == "image")
    return w, np.asarray(fused), float(image_share)


def predict_pins(
    predictors: dict,
    modalities: dict[str, str],
    weights: dict[str, float],
    images: list[Image.Image | None],
    texts: list[str],
    combine: str = "sum",
) -> list[PinPrediction]:
    """Every model's votes for a batch of pins and their fusion with ``weights``.

    Each model predicts all pins it can in one call (image models the pins with an image,
    text models those with a description); when that call fails, the pins are tried one by
    one so a single bad pin costs only its own vote.

    Args:
        predictors: Model name to a loaded predictor (``predict_proba(images=, texts=)`` ->
            (n, C)) or to an error message (str) when it could not be loaded.
        modalities: Model name to ``image`` or ``text``.
        weights: The fusion weights (models without a vote are dropped per pin and the rest
            renormalized).
        images: One image or None per pin (n,).
        texts: One description ('' for none) per pin (n,).
        combine: ``sum`` (weighted sum, MM/lambda) or ``log_linear``.

    Returns:
        One :class:`PinPrediction` per pin, in input order.
    """
    if len(images) != len(texts):
        raise ValueError(f"{len(images)} images but {len(texts)} texts: give one of each per pin (None or '').")
    n = len(images)
    probs: list[dict[str, np.ndarray]] = [{} for _ in range(n)]
    skipped: list[dict[str, str]] = [{} for _ in range(n)]
    secs: dict[str, float] = {}
    for name, pred in predictors.items():
        is_image = modalities.get(name, "text") == "image"
        inputs = images if is_image else texts
        todo = [i for i in range(n) if (inputs[i] is not None if is_image else bool(inputs[i]))]
        has_input = set(todo)
        for i in range(n):
            if isinstance(pred, str):
                skipped[i][name] = pred
            elif i not in has_input:
                skipped[i][name] = "no image given" if is_image else "no description given"
        if isinstance(pred, str) or not todo:
            continue
        t0 = time.perf_counter()
        for i, p in _predict_each(pred, is_image, [inputs[i] for i in todo], todo, skipped, name):
            probs[i][name] = p
        secs[name] = (time.perf_counter() - t0) / len(todo)
    result = []
    for i in range(n):
        w, fused, share = _combine(probs[i], modalities, weights, combine)
        result.append(PinPrediction(probs[i], skipped[i], w, fused, share,
                                    {m: secs[m] for m in probs[i]}))
    return result


def _predict_each(pred, is_image: bool, inputs: list, rows: list[int], skipped: list[dict], name: str):
    """Yield (row, probabilities (C,)) of one model; failed pins get a reason in ``skipped``."""
    def call(batch):
        p = pred.predict_proba(images=batch) if is_image else pred.predict_proba(texts=batch)
        return np.asarray(p, dtype=np.float32)

    try:
        out = call(inputs)
    except Exception as exc:  # noqa: BLE001 - a batch is retried pin by pin, each failure recorded
        if len(inputs) == 1:
            skipped[rows[0]][name] = _failure(exc)
            return
    else:
        yield from zip(rows, out)
        return
    for row, x in zip(rows, inputs):
        try:
            yield row, call([x])[0]
        except Exception as exc:  # noqa: BLE001 - one pin's failure is its reason, not a crash
            skipped[row][name] = _failure(exc)


def _failure(exc: BaseException) -> str:
    return f"failed ({one_line(exc, 160)})"


def predict_pin(
    predictors: dict,
    modalities: dict[str, str],
    weights: dict[str, float],
    image: Image.Image | None,
    text: str,
    combine: str = "sum",
) -> PinPrediction:
    """Every model's vote for one pin and their fusion (see :func:`predict_pins`)."""
    return predict_pins(predictors, modalities, weights, [image], [text], combine)[0]


# ----------------------------------------------------------------------------- batches of pins
OUTPUT_COLUMNS = ["pin_id", "source", "rank", "category", "probability", "note"]


def prediction_rows(pin_id: str, pin: PinPrediction, classes: list[str], k: int = 3, note: str = "") -> list[dict]:
    """One pin's prediction as long-format rows (:data:`OUTPUT_COLUMNS`).

    The fused top-k comes first (source ``fused``), then each model's top-k; a model that
    gave no vote, or a fusion no model voted in, is one row with its reason in ``note``.
    ``note`` (e.g. why the pin's image could not be read) goes on every row of the pin.
    """
    def ranked(source: str, p: np.ndarray) -> list[dict]:
        return [dict(pin_id=pin_id, source=source, rank=r, category=c, probability=v, note=note)
                for r, (c, v) in enumerate(top_k(p, classes, k), start=1)]

    def empty(source: str, why: str) -> dict:
        return dict(pin_id=pin_id, source=source, rank=None, category=None, probability=None,
                    note="; ".join(x for x in (note, why) if x))

    rows = ranked("fused", pin.fused) if pin.fused is not None else [empty("fused", "no model of the fusion voted")]
    for m, p in pin.probs.items():
        rows += ranked(m, p)
    rows += [empty(m, why) for m, why in pin.skipped.items()]
    return rows


@dataclass
class PinInput:
    """One pin to predict: its id, image (or None), description and why an input is missing."""

    pin_id: str
    image: Image.Image | None
    text: str
    note: str = ""


def read_pin_table(path: str | Path, images_root: str | Path | None = None) -> list[dict]:
    """Read a CSV/Parquet table of pins to predict: ``pin_id`` (optional), ``image`` and/or
    ``description``. Image paths are resolved under ``images_root`` (default: the table's
    folder) and refused when they lead outside it.

    Returns:
        One dict per row: ``pin_id``, ``image`` (a Path, or None), ``text`` and ``note``.

    Raises:
        ManifestError: The file cannot be read or has neither an image nor a description column.
    """
    from .data.manifest import ManifestError, _read_table, resolve_image

    path = Path(path)
    df, _ = _read_table(path)
    if "image" not in df.columns and "description" not in df.columns:
        raise ManifestError(f"{path.name} has no 'image' or 'description' column (found: "
                            f"{', '.join(map(str, df.columns)) or 'none'}); give at least one of them.")
    root = Path(images_root or path.parent).resolve()
    def column(name: str) -> list[str]:
        return df[name].tolist() if name in df.columns else [""] * len(df)

    ids = df["pin_id"].tolist() if "pin_id" in df.columns else [str(i + 1) for i in range(len(df))]
    pins = []
    for pid, image, text in zip(ids, column("image"), column("description")):
        image, note = str(image or "").strip(), ""
        resolved = resolve_image(root, image) if image else None
        if image and resolved is None:
            note = f"image {image} leads outside the images root {root.name}/: not read"
        pins.append(dict(pin_id=str(pid), image=resolved, text=str(text or ""), note=note))
    return pins


def open_pin(row: dict) -> PinInput:
    """Load one row of :func:`read_pin_table`: an unusable image becomes a note, not an error."""
    image, note = None, row["note"]
    if row["image"] is not None:
        try:
            image = load_image(row["image"])
        except ValueError as exc:
            note = str(exc)
    text, cut = clip_text(row["text"])
    return PinInput(row["pin_id"], image, text, "; ".join(x for x in (note, cut) if x))
