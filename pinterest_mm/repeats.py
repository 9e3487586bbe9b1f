"""Repeated stratified re-splits: how much the figures and the verdicts move with the split.

``K`` re-splits of a dataset with new seeds (the import's proportions and per-class
stratification, :func:`~pinterest_mm.data.split.stratified_split`). Per repeat:

- every features-kind model's logistic regression is refit on its cached features (no feature
  is extracted again): C by 5-fold CV on the new train split over the grid the model was built
  with, probabilities of the new validation and test pins;
- the TF-IDF classifiers (``tfidf-lr``, ``tfidf-svm``) are refit on the texts (seconds);
- fine-tuned classifiers (transformers, the scratch CNN) are left out: fine-tuning them K times
  costs minutes to hours; :func:`run_repeats` names them in ``left_out``;
- the thesis comparison (:func:`~pinterest_mm.thesis.thesis_report`) runs on that split, every
  setting chosen on its validation pins, never on its test pins.

Figures are the mean ± sd (sample sd, ddof 1) across repeats; each claim gets the share of
repeats in which it holds, fails or is inconclusive.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .config import SPLITS, SplitConfig
from .data.split import stratified_split
from .models.classify import THESIS_C_GRID, LogRegConfig, fit_logreg_cv
from .outputs import ModelInfo, Outputs

REFIT_CLASSIFIERS = ("tfidf-lr", "tfidf-svm")
DEFAULT_METHODS = ("best_single", "ensemble", "equal", "lambda", "log_linear", "mm", "optimized",
                   "feature_cross")
VERDICTS = ("holds", "fails", "inconclusive", "not applicable")


@dataclass(frozen=True)
class RepeatConfig:
    """Settings of the repeated re-splits.

    Attributes:
        repeats: Number of re-splits K (1 or more).
        seed_offset: Repeat r (1..K) splits with seed ``import seed + seed_offset * r``, so no
            repeat reuses the import's own split.
        methods: Fusion methods compared per repeat (default: the late fusions and feature cross;
            the learned networks train for a while and are left out unless named).
        folds: CV folds of each refit logistic regression (thesis: 5).
    """

    repeats: int = 5
    seed_offset: int = 1
    methods: tuple[str, ...] = DEFAULT_METHODS
    folds: int = 5

    def __post_init__(self) -> None:
        if int(self.repeats) < 1:
            raise ValueError(f"--repeats takes a whole number of 1 or more re-splits, not {self.repeats!r}.")
        if int(self.seed_offset) < 1:
            raise ValueError("seed_offset must be 1 or more (offset 0 would repeat the import's split).")


def split_seeds(import_seed: int, cfg: RepeatConfig) -> list[int]:
    """The K split seeds: ``import_seed + seed_offset * r`` for r = 1..K."""
    return [int(import_seed) + cfg.seed_offset * r for r in range(1, cfg.repeats + 1)]


def resplit(labels: np.ndarray, split: SplitConfig, seed: int) -> dict[str, np.ndarray]:
    """Split -> the pins' rows (ascending), a stratified re-split with the import's proportions.

    Args:
        labels: Every pin's label in row order, shape (n,).
        split: The import's split settings (test and validation shares).
        seed: The re-split's seed.
    """
    names = stratified_split(np.asarray(labels), split.test_size, split.val_size, seed)
    return {s: np.flatnonzero(names == s) for s in SPLITS}


def _grid(info: ModelInfo) -> tuple[float, ...]:
    """The C grid a model was built with (the keys of its CV scores), else the thesis grid."""
    try:
        grid = tuple(float(c) for c in (info.params or {}).get("cv_scores", {}))
    except (TypeError, ValueError):
        grid = ()
    return grid or THESIS_C_GRID


def _refit_features(X: np.ndarray, rows: dict, labels: np.ndarray, n_classes: int, grid, folds: int) -> tuple:
    """(probs by split, C, CV score) of a logistic regression refit on one re-split's train rows."""
    res = fit_logreg_cv(np.asarray(X[rows["train"]], np.float32), labels[rows["train"]], n_classes,
                        LogRegConfig(c_grid=grid, folds=folds))
    probs = {"train": res.oof_probs}
    for s in ("val", "test"):
        probs[s] = res.predict_proba(np.asarray(X[rows[s]], np.float32), n_classes)
    return probs, res.C, res.cv_score


def _refit_tfidf(name: str, info: ModelInfo, texts: np.ndarray, rows: dict, labels: np.ndarray,
                 n_classes: int, folds: int) -> tuple:
    """(probs by split, C, CV score) of a TF-IDF classifier refit on one re-split's train texts."""
    from .models.registry import get_model
    from .models.tfidf import fit_tfidf_cv

    model = get_model(name).create(**((info.params or {}).get("options") or {}))
    cfg = dataclasses.replace(model.cfg, c_grid=_grid(info), folds=folds)
    C, scores, pipe, oof = fit_tfidf_cv(list(texts[rows["train"]]), labels[rows["train"]], n_classes, cfg)
    probs = {"train": oof}
    for s in ("val", "test"):
        out = np.zeros((len(rows[s]), n_classes), np.float32)
        if len(rows[s]):
            out[:, pipe.classes_] = pipe.predict_proba(list(texts[rows[s]]))
        probs[s] = out
    return probs, C, scores[C]


@dataclass
class Plan:
    """What a dataset's repeats refit.

    Attributes:
        features: Model -> its cached features of every pin, shape (n_pins, d).
        tfidf: TF-IDF classifiers refit on the texts.
        left_out: Model -> why it is not in the repeats.
    """

    features: dict[str, np.ndarray]
    tfidf: list[str]
    left_out: dict[str, str]


def plan(store, dataset: str, outputs: Outputs, n_pins: int) -> Plan:
    """Sort the built models into refit-on-features, refit-TF-IDF and left out (with why)."""
    features, tfidf, left = {}, [], {}
    for m in sorted(outputs.models):
        path = store.features_path(dataset, m)
        if path.exists():
            X = np.load(path, mmap_mode="r")
            if X.ndim == 2 and X.shape[0] == n_pins:
                features[m] = np.asarray(X, np.float32)
            else:
                left[m] = f"its cached features ({X.shape[0]} rows) do not fit the {n_pins} pins: rebuild it"
        elif m in REFIT_CLASSIFIERS:
            tfidf.append(m)
        else:
            left[m] = ("an end-to-end classifier (fine-tuned); fine-tuning it once per repeat is not run, so "
                       "it is left out of the repeats")
    return Plan(features, tfidf, left)


def repeat_outputs(base: Outputs, pins, rows: dict, p: Plan, folds: int = 5) -> Outputs:
    """The :class:`Outputs` of one re-split: every refit model's probabilities on its splits.

    Args:
        base: The dataset's outputs (classes, model infos).
        pins: The dataset's pins in row order (``label``, ``pin_id``, ``text_words``).
        rows: Split -> rows of the re-split.
        p: The :func:`plan`.
        folds: CV folds of each refit.
    """
    labels = pins["label"].to_numpy(np.int64)
    texts = np.asarray([str(t or "") for t in pins["text_words"]], dtype=object)
    ids = pins["pin_id"].to_numpy(object)
    C = base.n_classes
    probs, models = {}, {}
    for m in sorted([*p.features, *p.tfidf]):
        info = base.models[m]
        if m in p.features:
            pr, c, cv = _refit_features(p.features[m], rows, labels, C, _grid(info), folds)
        else:
            pr, c, cv = _refit_tfidf(m, info, texts, rows, labels, C, folds)
        probs[m] = pr
        acc = {s: float((pr[s].argmax(1) == labels[rows[s]]).mean()) if len(rows[s]) else 0.0 for s in ("val", "test")}
        models[m] = dataclasses.replace(info, val_accuracy=acc["val"], test_accuracy=acc["test"],
                                        params={**(info.params or {}), "C": c}, cv_score=cv)

    def loader(m: str):
        X = p.features.get(m)
        return None if X is None else {s: X[rows[s]] for s in SPLITS}

    return Outputs(dataset=base.dataset, classes=base.classes, y={s: labels[rows[s]] for s in SPLITS},
                   pin_ids={s: ids[rows[s]] for s in SPLITS}, probs=probs, models=models,
                   feature_loader=loader)


def summarize(rep: dict) -> dict:
    """The figures of one repeat's thesis report that the repeats aggregate."""
    singles = {r["model"]: {"val_accuracy": r["val_accuracy"], "test_accuracy": r["test_accuracy"]}
               for rows in rep["single_models"].values() for r in rows}
    methods = {f["method"]: {"val_accuracy": f["val_accuracy"], "test_accuracy": f["test_accuracy"]}
               for f in rep["fusions"] if "error" not in f}
    d = rep["definitions"]
    return {"models": singles, "methods": methods,
            "claims": [{"claim": c["claim"], "verdict": c["verdict"], "diff": c.get("diff")} for c in rep["claims"]],
            "definitions": {"best_single": d["best_single"], "mm_models": d["mm_models"],
                            "lambda_pair": d["lambda_pair"]}}


def _mean_sd(values: list[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else None, "n": int(len(v))}


def aggregate(per_repeat: list[dict]) -> dict:
    """Mean ± sd of every figure and the share of repeats per verdict of every claim.

    Args:
        per_repeat: :func:`summarize` of each repeat (K dicts).

    Returns:
        ``models`` / ``methods``: name -> ``{"val_accuracy": {mean, sd, n}, "test_accuracy": ...}``
        (n = repeats the name appeared in; sd None when n is 1); ``claims``: one row per claim with
        the share of the K repeats per verdict (``holds``, ``fails``, ``inconclusive``,
        ``not applicable``), ``positive`` (share of repeats whose difference favours the claim) and
        ``diff`` (mean ± sd of the difference where applicable); ``choices``: how often each model
        was the best single model.
    """
    k = len(per_repeat)
    out: dict = {"repeats": k}
    for key in ("models", "methods"):
        names = sorted({n for r in per_repeat for n in r[key]})
        out[key] = {n: {f: _mean_sd([r[key][n][f] for r in per_repeat if n in r[key]])
                        for f in ("val_accuracy", "test_accuracy")} for n in names}
    claims = []
    for name in [c["claim"] for c in per_repeat[0]["claims"]] if per_repeat else []:
        rows = [c for r in per_repeat for c in r["claims"] if c["claim"] == name]
        counts = Counter(c["verdict"] for c in rows)
        diffs = [c["diff"] for c in rows if c["verdict"] != "not applicable" and c.get("diff") is not None]
        claims.append({"claim": name, **{v: counts.get(v, 0) / k for v in VERDICTS},
                       "positive": sum(d > 0 for d in diffs) / k,
                       "diff": _mean_sd(diffs) if diffs else None})
    out["claims"] = claims
    out["choices"] = {"best_single": dict(Counter(r["definitions"]["best_single"] for r in per_repeat))}
    return out


def run_repeats(store, dataset: str, cfg: RepeatConfig = RepeatConfig(), outputs: Outputs | None = None,
                on_progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Re-split ``dataset`` K times, refit its classifiers, compare and aggregate.

    Args:
        store: The store (read only: nothing is written).
        dataset: An imported, built dataset.
        cfg: Number of repeats, seeds, methods.
        outputs: The dataset's outputs (default: read from the store).
        on_progress: Called as ``on_progress(done, K, message)`` before each repeat and at the end.

    Returns:
        :func:`aggregate` plus ``seeds``, ``n`` (pins per split, the same in every repeat),
        ``refit`` (models refit per repeat), ``left_out`` (model -> why), ``per_repeat`` (the
        figures of each repeat), ``seconds`` (wall), ``cpu_seconds`` (this process's CPU time: the
        figure to compare on a busy machine) and ``method`` (what was done, in words).

    Raises:
        ValueError: No model can be refit (every built model is a fine-tuned classifier).
    """
    from .outputs import load_outputs
    from .thesis import thesis_report

    base = outputs if outputs is not None else load_outputs(store, dataset)
    info = store.dataset_info(dataset)
    split = SplitConfig(**(info.get("config") or {}).get("split", {}))
    pins = store.pins(dataset).sort_values("row").reset_index(drop=True)
    p = plan(store, dataset, base, len(pins))
    if not p.features and not p.tfidf:
        raise ValueError(f"Dataset {dataset!r}: no built model can be refit on a re-split (features-kind "
                         "models and TF-IDF classifiers can; fine-tuned classifiers are left out).")
    seeds = split_seeds(split.seed, cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    per_repeat = []
    for i, seed in enumerate(seeds):
        if on_progress:
            on_progress(i, len(seeds), f"repeat {i + 1}/{len(seeds)} (split seed {seed})")
        rows = resplit(pins["label"].to_numpy(), split, seed)
        out = repeat_outputs(base, pins, rows, p, cfg.folds)
        rep = thesis_report(out, feature_cross_pairs="none", methods=list(cfg.methods))
        per_repeat.append({"seed": seed, **summarize(rep)})
    if on_progress:
        on_progress(len(seeds), len(seeds), "done")
    n = {s: int(len(r)) for s, r in rows.items()}
    return {**aggregate(per_repeat), "seeds": seeds, "n": n, "refit": sorted([*p.features, *p.tfidf]),
            "left_out": p.left_out, "per_repeat": per_repeat, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0,
            "method": method_text(cfg, split)}


def method_text(cfg: RepeatConfig, split: SplitConfig) -> str:
    """What the repeats did, in one paragraph (printed with the figures)."""
    return (f"{cfg.repeats} stratified re-splits (test {split.test_size:g}, validation {split.val_size:g} of the "
            f"rest, per class, as at import; split seeds {split.seed} + {cfg.seed_offset} x r). Per repeat each "
            f"features-kind model's logistic regression is refit on its cached features (C by {cfg.folds}-fold CV "
            "on the new train split), the TF-IDF classifiers are refit on the texts, fine-tuned classifiers are left "
            "out; every setting is chosen on the repeat's validation split. Figures: mean ± sd (across repeats); "
            "claims: the share of repeats with each verdict (each repeat Holm-corrected as the single report). "
            "word2vec-train / fasttext-train keep the vectors trained on the import's train split (unsupervised, no "
            "labels), which saw the texts of some of a repeat's test pins.")


def pm(stat: dict | None, digits: int = 3) -> str:
    """``"0.812 ± 0.021"`` of a :func:`aggregate` mean/sd (``± n/a`` with one repeat, ``-`` for none)."""
    if not stat:
        return "-"
    sd = "n/a" if stat.get("sd") is None else f"{stat['sd']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {sd}"


def format_repeats(rep: dict) -> str:
    """Readable text of :func:`run_repeats`: models, fusions, claims, what was left out."""
    from .textable import text_table

    k = rep["repeats"]
    sizes = ", ".join(f"{s} {n}" for s, n in rep["n"].items())
    parts = [f"Repeated re-splits: {k} repeats ({sizes} pins each), {rep['seconds']:.1f} s "
             f"({rep.get('cpu_seconds', 0.0):.1f} s CPU)",
             rep["method"]]
    for key, title in (("models", "Single models"), ("methods", "Fusion methods")):
        rows = sorted(rep[key].items(), key=lambda kv: -kv[1]["val_accuracy"]["mean"])
        parts.append(f"\n{title} (mean ± sd over the repeats)\n" + text_table(
            ["name", "val accuracy", "test accuracy", "repeats"],
            [[n, pm(v["val_accuracy"]), pm(v["test_accuracy"]), v["test_accuracy"]["n"]] for n, v in rows]))
    parts.append("\nClaims: share of the repeats with each verdict")
    parts.append(text_table(
        ["claim", "holds", "fails", "inconclusive", "n/a", "difference > 0", "difference"],
        [[c["claim"], f"{c['holds']:.0%}", f"{c['fails']:.0%}", f"{c['inconclusive']:.0%}",
          f"{c['not applicable']:.0%}", f"{c['positive']:.0%}", pm(c["diff"])] for c in rep["claims"]]))
    best = ", ".join(f"{m} {n}/{k}" for m, n in sorted(rep["choices"]["best_single"].items(), key=lambda kv: -kv[1]))
    parts.append(f"Best single model chosen on validation: {best}")
    for m, why in rep["left_out"].items():
        parts.append(f"Left out of the repeats: {m}: {why}")
    return "\n".join(parts)


def display_tables(rep: dict) -> dict[str, list[dict]]:
    """``models``, ``methods`` and ``claims`` of :func:`run_repeats` as readable rows (what the
    Compare page shows; the same formatting as :func:`format_repeats`)."""
    def figures(key: str) -> list[dict]:
        rows = sorted(rep[key].items(), key=lambda kv: -kv[1]["val_accuracy"]["mean"])
        return [{"name": n, "validation accuracy (mean ± sd)": pm(v["val_accuracy"]),
                 "test accuracy (mean ± sd)": pm(v["test_accuracy"]), "repeats": v["test_accuracy"]["n"]}
                for n, v in rows]

    claims = [{"claim": c["claim"], "holds": f"{c['holds']:.0%}", "fails": f"{c['fails']:.0%}",
               "inconclusive": f"{c['inconclusive']:.0%}", "not applicable": f"{c['not applicable']:.0%}",
               "difference > 0": f"{c['positive']:.0%}", "difference (mean ± sd)": pm(c["diff"])}
              for c in rep["claims"]]
    return {"models": figures("models"), "methods": figures("methods"), "claims": claims}
