"""The thesis's experiments on any dataset: analogues of Tables 4.2-4.10, the data of Figures
4.1-4.4, every registered fusion method, and the four claims checked on test with settings
chosen on validation.
"""

from __future__ import annotations

import dataclasses
from typing import Any


from . import metrics
from .fusion import fuse, lambda_table, list_methods, usable_models
from .outputs import FAMILIES, Outputs
from .textable import text_table

CLAIMS = (
    "fusion beats the best single model",
    "MM beats lambda fusion",
    "lambda fusion beats feature cross",
    "top-2 is more than 10 points above top-1",
)


def _cached_features(outputs: Outputs) -> Outputs:
    """A copy of ``outputs`` whose feature loader reads each model once."""
    if outputs.feature_loader is None:
        return outputs
    memo: dict[str, Any] = {}
    base = outputs.feature_loader

    def loader(m: str):
        if m not in memo:
            memo[m] = base(m)
        return memo[m]

    return dataclasses.replace(outputs, feature_loader=loader)


def _single_rows(outputs: Outputs, family: str) -> list[dict]:
    rows = []
    for m in usable_models(outputs, family):
        info, p = outputs.models[m], outputs.probs[m]
        rows.append({
            "model": m,
            "family": family,
            "modality": info.modality,
            "val_accuracy": metrics.accuracy(p["val"], outputs.y["val"]),
            "test_accuracy": metrics.accuracy(p["test"], outputs.y["test"]),
            "test_topk": metrics.topk_curve(p["test"], outputs.y["test"]).tolist(),
            "cv_score": info.cv_score,
        })
    return rows


def _has_features(outputs: Outputs, m: str) -> bool:
    return outputs.feature_loader is not None and outputs.feature_loader(m) is not None


def thesis_report(
    outputs: Outputs,
    store=None,
    version: str | None = None,
    feature_cross_pairs: str = "top2",
    methods: list[str] | None = None,
) -> dict:
    """Run the thesis's comparison on one dataset.

    Args:
        outputs: The probability cache.
        store: Optional store: every fusion (feature cross included) is cached by config key.
        version: Dataset version string for the cache keys (default from the store).
        feature_cross_pairs: ``all`` (every image x word-embedding pair with features, as
            Table 4.7), ``top2`` (best 2 x best 2 on validation) or ``none``.
        methods: Registered methods to run for ``fusions`` (default all).

    Returns:
        Dict with ``single_models`` (family -> rows; Tables 4.2-4.4, Figure 4.1),
        ``lambda_word_embedding`` / ``lambda_transformer`` (Tables 4.5/4.6),
        ``feature_cross`` (Table 4.7), ``mm`` (l table 4.8, weights 4.9, top-k 4.10),
        ``figures`` (top-k curves of Figures 4.2-4.4), ``fusions`` and ``claims``.
    """
    outputs = _cached_features(outputs)
    kw = {"store": store, "version": version}
    singles = {f: _single_rows(outputs, f) for f in FAMILIES}
    lam_we = lambda_table(outputs, "word_embedding")
    lam_tr = lambda_table(outputs, "transformer")

    fx_rows = []
    if feature_cross_pairs != "none":
        imgs = [m for m in usable_models(outputs, "image") if _has_features(outputs, m)]
        txts = [m for m in usable_models(outputs, "word_embedding") if _has_features(outputs, m)]
        if feature_cross_pairs == "top2":
            imgs, txts = imgs[:2], txts[:2]
        for i in imgs:
            for t in txts:
                r = fuse(outputs, "feature_cross", image_model=i, text_model=t, **kw)
                fx_rows.append({"image": i, "text": t, "C": r.chosen["C"], "val_accuracy": r.val_accuracy,
                                "test_accuracy": r.test_accuracy, "test_topk": r.test_topk})
        fx_rows.sort(key=lambda r: -r["val_accuracy"])

    mm = None
    try:
        r = fuse(outputs, "mm", **kw)
        mm = {
            "models": r.chosen["models"],
            "l": r.chosen["l"],
            "l_table": [{"l": g["setting"]["l"], "val_accuracy": g["val_accuracy"],
                         "test_accuracy": g["test_accuracy"]} for g in r.grid],
            "weights": r.weights,
            "val_accuracy": r.val_accuracy,
            "test_accuracy": r.test_accuracy,
            "test_topk": r.test_topk,
        }
    except ValueError as exc:
        mm = {"error": str(exc)}

    fusions = []
    for name in methods or list_methods():
        try:
            r = fuse(outputs, name, **kw)
            fusions.append({"method": name, "config": r.config, "chosen": r.chosen,
                            "val_accuracy": r.val_accuracy, "test_accuracy": r.test_accuracy,
                            "test_topk": r.test_topk})
        except (ValueError, KeyError) as exc:
            fusions.append({"method": name, "error": str(exc)})

    all_singles = [row for rows in singles.values() for row in rows]
    best_single = max(all_singles, key=lambda r: r["val_accuracy"], default=None)
    figures = {
        "4.1_single_topk": {r["model"]: r["test_topk"] for r in all_singles},
        "4.2_lambda_word_embedding_top5": {f"{r['image']}+{r['text']} (lambda={r['best_lambda']})": r["test_topk"] for r in lam_we[:5]},
        "4.3_lambda_transformer_top5": {f"{r['image']}+{r['text']} (lambda={r['best_lambda']})": r["test_topk"] for r in lam_tr[:5]},
        "4.4_methods": {k: v for k, v in {
            "MM": mm.get("test_topk") if mm else None,
            "lambda (word embedding)": lam_we[0]["test_topk"] if lam_we else None,
            "lambda (transformer)": lam_tr[0]["test_topk"] if lam_tr else None,
            "feature cross": fx_rows[0]["test_topk"] if fx_rows else None,
            "best single": best_single["test_topk"] if best_single else None,
        }.items() if v is not None},
    }
    report = {
        "dataset": outputs.dataset,
        "n": {s: int(len(outputs.y[s])) for s in outputs.y},
        "n_classes": outputs.n_classes,
        "single_models": singles,
        "best_single": best_single,
        "lambda_word_embedding": lam_we,
        "lambda_transformer": lam_tr,
        "feature_cross": fx_rows,
        "mm": mm,
        "figures": figures,
        "fusions": fusions,
    }
    report["claims"] = _claims(report)
    return report


def _claim(claim: str, a: tuple[str, float] | None, b: tuple[str, float] | None, missing: str) -> dict:
    if a is None or b is None:
        return {"claim": claim, "holds": None, "evidence": f"not applicable: {missing}"}
    holds = a[1] > b[1]
    return {"claim": claim, "holds": bool(holds),
            "evidence": f"{a[0]} test {a[1]:.4f} vs {b[0]} test {b[1]:.4f} (settings chosen on validation)"}


def _claims(rep: dict) -> list[dict]:
    mm = rep["mm"] if rep["mm"] and "test_accuracy" in rep["mm"] else None
    bs = rep["best_single"]
    lam_rows = rep["lambda_word_embedding"] + rep["lambda_transformer"]
    lam = max(lam_rows, key=lambda r: r["val_accuracy"]) if lam_rows else None
    lam_we = rep["lambda_word_embedding"][0] if rep["lambda_word_embedding"] else None
    fx = rep["feature_cross"][0] if rep["feature_cross"] else None
    out = [
        _claim(CLAIMS[0], mm and ("MM", mm["test_accuracy"]),
               bs and (f"best single ({bs['model']})", bs["test_accuracy"]), "no MM fusion or no model"),
        _claim(CLAIMS[1], mm and ("MM", mm["test_accuracy"]),
               lam and (f"lambda {lam['image']}+{lam['text']} (lambda={lam['best_lambda']})", lam["test_accuracy"]),
               "needs an image and a text model"),
        _claim(CLAIMS[2], lam_we and (f"lambda {lam_we['image']}+{lam_we['text']}", lam_we["test_accuracy"]),
               fx and (f"feature cross {fx['image']}+{fx['text']}", fx["test_accuracy"]),
               "needs image and word-embedding models with features"),
    ]
    if mm and out[0]["holds"] is not None:
        # The thesis's 11 models are all in MM's families; say how MM fares against the
        # best of the models it fuses too, when the overall best single model is not one.
        fused = [r for rows in rep["single_models"].values() for r in rows if r["model"] in set(mm["models"])]
        best_fused = max(fused, key=lambda r: r["val_accuracy"], default=None)
        if best_fused and bs and best_fused["model"] != bs["model"]:
            verdict = "beats" if mm["test_accuracy"] > best_fused["test_accuracy"] else "does not beat"
            out[0]["evidence"] += (f"; MM {verdict} the best model it fuses ({best_fused['model']}, "
                                   f"test {best_fused['test_accuracy']:.4f})")
    if mm:
        t1, t2 = mm["test_topk"][0], mm["test_topk"][1]
        out.append({"claim": CLAIMS[3], "holds": bool(t2 - t1 > 0.10),
                    "evidence": f"MM test top-1 {t1:.4f}, top-2 {t2:.4f} (+{100 * (t2 - t1):.1f} points)"})
    else:
        out.append({"claim": CLAIMS[3], "holds": None, "evidence": "not applicable: no MM fusion"})
    return out


# ----------------------------------------------------------------------------- text
def _table(headers: list[str], rows: list[list]) -> str:
    return text_table(headers, rows, digits=4)


def format_thesis_report(report: dict) -> str:
    """Readable text tables of a :func:`thesis_report`."""
    parts = [f"Thesis report: {report['dataset']}  (pins {report['n']}, classes {report['n_classes']})"]
    titles = {"word_embedding": "Table 4.2 word embeddings + LR", "image": "Table 4.3 images + LR",
              "transformer": "Table 4.4 transformers", "other": "Other models"}
    for fam, rows in report["single_models"].items():
        if rows:
            parts.append(f"\n{titles[fam]}\n" + _table(["model", "val acc", "test acc"],
                         [[r["model"], r["val_accuracy"], r["test_accuracy"]] for r in rows]))
    for key, title in (("lambda_word_embedding", "Table 4.5 lambda fusion, image x word embedding"),
                       ("lambda_transformer", "Table 4.6 lambda fusion, image x transformer")):
        rows = report[key]
        if rows:
            lams = list(rows[0]["test"])
            parts.append(f"\n{title} (test accuracy per lambda; best lambda chosen on val)\n" + _table(
                ["image", "text"] + [f"l={l}" for l in lams] + ["best lambda", "val acc", "test acc"],
                [[r["image"], r["text"], *[r["test"][l] for l in lams], r["best_lambda"],
                  r["val_accuracy"], r["test_accuracy"]] for r in rows]))
    if report["feature_cross"]:
        parts.append("\nTable 4.7 feature cross\n" + _table(["image", "text", "C", "val acc", "test acc"], [
            [r["image"], r["text"], r["C"], r["val_accuracy"], r["test_accuracy"]] for r in report["feature_cross"]]))
    mm = report["mm"]
    if mm and "l_table" in mm:
        parts.append(f"\nTable 4.8 MM, l chosen on validation (chosen l = {mm['l']})\n" + _table(
            ["l", "val acc", "test acc"], [[g["l"], g["val_accuracy"], g["test_accuracy"]] for g in mm["l_table"]]))
        parts.append("\nTable 4.9 MM weights\n" + _table(["model", "weight"], [[m, w] for m, w in mm["weights"].items()]))
        parts.append("\nTable 4.10 MM top-k on test\n" + _table(
            [f"top-{k}" for k in range(1, 6)], [mm["test_topk"][:5]]))
    elif mm:
        parts.append(f"\nMM: {mm.get('error')}")
    parts.append("\nAll fusion methods (settings chosen on validation)\n" + _table(
        ["method", "val acc", "test acc", "test top-2"],
        [[f["method"], f["val_accuracy"], f["test_accuracy"], f["test_topk"][1]] if "error" not in f
         else [f["method"], "-", "-", f"error: {f['error'][:60]}"] for f in report["fusions"]]))
    parts.append("\nClaims")
    for c in report["claims"]:
        mark = {True: "HOLDS", False: "FAILS", None: "N/A"}[c["holds"]]
        parts.append(f"  [{mark}] {c['claim']}: {c['evidence']}")
    return "\n".join(parts)

