"""The thesis's experiments on any dataset: analogues of Tables 4.2-4.10, the data of Figures
4.1-4.4, every registered fusion method, and the four claims checked on test with settings
chosen on validation.
"""

from __future__ import annotations

import dataclasses
from typing import Any


import numpy as np

from . import compare, metrics, stats
from .fusion import fuse, lambda_table, list_methods, usable_models
from .outputs import FAMILIES, Outputs
from .seed_systems import format_seed_systems, seed_systems
from .textable import text_table

CLAIMS = (
    "fusion beats the best single model",
    "MM beats lambda fusion",
    "lambda fusion beats feature cross",
    "top-2 is more than 10 points above top-1",
    "the recommended fusion beats the best single model",
)
TEST_METHOD = (
    "Verdicts: a paired test on the test pins at 5 %, Holm-corrected over the {m} applicable claims: "
    "holds / fails when the Holm-adjusted p is below 0.05 (by the sign of the difference), else "
    "inconclusive. The verdict uses McNemar's exact mid-p test, which asks whether the discordant "
    "pins (only A right: b, only B right: c) are balanced. The paired bootstrap 95 % CI of the "
    "accuracy difference (2,000 resamples, seed 0, not Holm-adjusted) is shown as supporting: it "
    "gives the difference's uncertainty; both use the same pins and the same difference (b - c) / n. "
    "The top-2 claim tests the share of pins whose true class ranks second against 0.10 "
    "(binomial mid-p)."
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
    progress: bool = False,
) -> dict:
    """Run the thesis's comparison on one dataset.

    Args:
        outputs: The probability cache.
        store: Optional store: every fusion (feature cross included) is cached by config key.
        version: Dataset version string for the cache keys (default from the store).
        feature_cross_pairs: ``all`` (every image x word-embedding pair with features, as
            Table 4.7), ``top2`` (best 2 x best 2 on validation) or ``none``.
        methods: Registered methods to run for ``fusions`` (default all).
        progress: Show a progress bar on stderr over the fusions fitted (feature-cross
            pairs, then every method).

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

    defs = compare.definitions(outputs)
    test_preds: dict[str, np.ndarray] = {}
    fx_rows = []
    from tqdm.auto import tqdm

    names = list(methods or list_methods())
    bar = tqdm(total=len(names), desc="thesis report", unit="fusion", disable=not progress)
    if feature_cross_pairs != "none":
        imgs = [m for m in usable_models(outputs, "image") if _has_features(outputs, m)]
        txts = [m for m in usable_models(outputs, "word_embedding") if _has_features(outputs, m)]
        if feature_cross_pairs == "top2":
            imgs, txts = imgs[:2], txts[:2]
        bar.total += len(imgs) * len(txts)
        for i in imgs:
            for t in txts:
                bar.set_postfix_str(f"feature cross {i} x {t}")
                r = fuse(outputs, "feature_cross", image_model=i, text_model=t, **kw)
                bar.update(1)
                chosen = [i, t] == defs["feature_cross_pair"]
                fx_rows.append({"image": i, "text": t, "C": r.chosen["C"], "val_accuracy": r.val_accuracy,
                                "test_accuracy": r.test_accuracy, "test_topk": r.test_topk, "chosen": chosen})
                if chosen:
                    test_preds["feature_cross"] = r.test_probs.argmax(1)
        fx_rows.sort(key=lambda r: (-r["val_accuracy"], r["image"], r["text"]))

    mm = None
    try:
        r = fuse(outputs, "mm", **kw)
        test_preds["mm"] = r.test_probs.argmax(1)
        mm = {
            "models": r.chosen["models"],
            "l": r.chosen["l"],
            "l_table": [{"l": g["setting"]["l"], "val_accuracy": g["val_accuracy"],
                         "test_accuracy": g["test_accuracy"]} for g in r.grid],
            "weights": r.weights,
            "val_accuracy": r.val_accuracy,
            "test_accuracy": r.test_accuracy,
            "test_topk": r.test_topk,
            "test_rank2": int((metrics.true_class_rank(r.test_probs, outputs.y["test"]) == 1).sum()),
        }
    except ValueError as exc:
        mm = {"error": str(exc)}
    for key, fam in (("lambda", None), ("lambda_word_embedding", "word_embedding")):
        try:
            test_preds[key] = fuse(outputs, "lambda", text_family=fam, **kw).test_probs.argmax(1)
        except ValueError:
            pass

    fusions = []
    for name in names:
        bar.set_postfix_str(name)
        try:
            r = fuse(outputs, name, **kw)
            test_preds.setdefault(name, r.test_probs.argmax(1))
            fusions.append({"method": name, "config": r.config, "chosen": r.chosen,
                            "val_accuracy": r.val_accuracy, "test_accuracy": r.test_accuracy,
                            "test_topk": r.test_topk, "recommended": name == compare.RECOMMENDED})
        except (ValueError, KeyError) as exc:
            fusions.append({"method": name, "error": str(exc)})
        bar.update(1)
    bar.close()

    if compare.RECOMMENDED not in test_preds:
        try:
            test_preds[compare.RECOMMENDED] = fuse(outputs, compare.RECOMMENDED, **kw).test_probs.argmax(1)
        except ValueError:
            pass
    all_singles = [row for rows in singles.values() for row in rows]
    best_single = next((r for r in all_singles if r["model"] == defs["best_single"]), None)
    if best_single is not None:
        test_preds["best_single"] = outputs.probs[best_single["model"]]["test"].argmax(1)
    for key, pair in (("lambda_word_embedding", defs["lambda_pair_word_embedding"]),):
        for row in lam_we:
            row["chosen"] = [row["image"], row["text"]] == pair
    for row in lam_tr:
        row["chosen"] = False
    lam_we_row = next((r for r in lam_we if r["chosen"]), None)
    figures = {
        "4.1_single_topk": {r["model"]: r["test_topk"] for r in all_singles},
        "4.2_lambda_word_embedding_top5": {f"{r['image']}+{r['text']} (lambda={r['best_lambda']})": r["test_topk"] for r in lam_we[:5]},
        "4.3_lambda_transformer_top5": {f"{r['image']}+{r['text']} (lambda={r['best_lambda']})": r["test_topk"] for r in lam_tr[:5]},
        "4.4_methods": {k: v for k, v in {
            "MM": mm.get("test_topk") if mm else None,
            "lambda (word embedding)": lam_we_row["test_topk"] if lam_we_row else None,
            "lambda (transformer)": lam_tr[0]["test_topk"] if lam_tr else None,
            "feature cross": next((r["test_topk"] for r in fx_rows if r["chosen"]), None),
            "best single": best_single["test_topk"] if best_single else None,
        }.items() if v is not None},
    }
    report = {
        "dataset": outputs.dataset,
        "n": {s: int(len(outputs.y[s])) for s in outputs.y},
        "n_classes": outputs.n_classes,
        "definitions": defs,
        "warning": stats.small_test_warning(int(len(outputs.y["test"]))),
        "single_models": singles,
        "best_single": best_single,
        "lambda_word_embedding": lam_we,
        "lambda_transformer": lam_tr,
        "feature_cross": fx_rows,
        "mm": mm,
        "figures": figures,
        "fusions": fusions,
    }
    stats.add_intervals({k: report[k] for k in ("single_models", "best_single", "lambda_word_embedding",
                                                 "lambda_transformer", "feature_cross", "mm", "fusions")},
                        report["n"])
    report["claims"] = claims(report, test_preds, outputs.y["test"])
    report["seed_systems"] = seed_systems(outputs, test_preds, fusions, **kw)
    report["test_method"] = TEST_METHOD.format(m=sum(c["verdict"] != "not applicable" for c in report["claims"]))
    return report


def _na(claim: str, why: str) -> dict:
    return {"claim": claim, "verdict": "not applicable", "holds": None, "evidence": f"not applicable: {why}"}


def _paired(claim: str, a: str, b: str, pa: np.ndarray, pb: np.ndarray, y: np.ndarray) -> dict:
    """A claim "a beats b" on the same test pins: McNemar mid-p (verdict) + bootstrap (support)."""
    n = len(y)
    t = stats.paired_test(pa, pb, y)
    bs = stats.paired_bootstrap(pa, pb, y)
    acc_a, acc_b = float((pa == y).mean()), float((pb == y).mean())
    return {"claim": claim, "a": a, "b": b, "n": n, "diff": t.diff, "p": t.p_mid,
            "mcnemar": {"b": t.b, "c": t.c, "p_mid": t.p_mid, "p_exact": t.p_exact},
            "bootstrap": {"diff": bs.diff, "low": bs.low, "high": bs.high},
            "evidence": (f"{a} test {stats.fmt_interval(acc_a, n)} vs {b} test {stats.fmt_interval(acc_b, n)}; "
                         f"difference {t.diff:+.3f}; McNemar b={t.b} c={t.c} mid-p {t.p_mid:.3g}"
                         f"{{holm}}; bootstrap 95 % CI [{bs.low:+.3f}, {bs.high:+.3f}]")}


def claims(rep: dict, preds: dict[str, np.ndarray], y: np.ndarray) -> list[dict]:
    """The thesis's claims with a verdict each: holds / fails / inconclusive / not applicable.

    Args:
        rep: The report so far (``definitions``, ``mm``, ``best_single``).
        preds: Predicted test labels (n_test,) by key: ``mm``, ``best_single``, ``lambda``
            (image x any text pair), ``lambda_word_embedding``, ``feature_cross``, ``ensemble``.
        y: Test labels, shape (n_test,).
    """
    d = rep["definitions"]
    bs = rep["best_single"]
    best = f"best single ({bs['model']})" if bs else "best single"

    def pair(name: str, na: str, a: tuple[str, str], b: tuple[str, str]) -> dict:
        if a[0] not in preds or b[0] not in preds:
            return _na(name, na)
        return _paired(name, a[1], b[1], preds[a[0]], preds[b[0]], y)

    lp, lwe, fx = d["lambda_pair"], d["lambda_pair_word_embedding"], d["feature_cross_pair"]
    out = [
        pair(CLAIMS[0], "no MM fusion or no model", ("mm", "MM"), ("best_single", best)),
        pair(CLAIMS[1], "needs an image and a text model", ("mm", "MM"),
             ("lambda", f"lambda {' x '.join(lp)} (image x any text)" if lp else "lambda")),
        pair(CLAIMS[2], "needs image and word-embedding models with features",
             ("lambda_word_embedding", f"lambda {' x '.join(lwe)} (image x word embedding)" if lwe else "lambda"),
             ("feature_cross", f"feature cross {' x '.join(fx)}" if fx else "feature cross")),
    ]
    mm = rep["mm"] if rep["mm"] and "test_accuracy" in rep["mm"] else None
    if mm:
        n, k = len(y), mm["test_rank2"]
        t1, t2 = mm["test_topk"][0], mm["test_topk"][1]
        lo, hi = stats.wilson(k, n)
        out.append({"claim": CLAIMS[3], "a": "MM top-2 - top-1", "b": "0.10", "n": n, "diff": k / n - 0.10,
                    "p": stats.binom_midp(k, n, 0.10),
                    "evidence": (f"MM test top-1 {t1:.4f}, top-2 {t2:.4f} (+{100 * (t2 - t1):.1f} points, "
                                 f"95 % [{100 * lo:.1f}, {100 * hi:.1f}]); binomial mid-p vs 10 points "
                                 f"{stats.binom_midp(k, n, 0.10):.3g}{{holm}}")})
    else:
        out.append(_na(CLAIMS[3], "no MM fusion"))
    out.append(pair(CLAIMS[4], "no ensemble fusion", (compare.RECOMMENDED, f"{compare.RECOMMENDED} (recommended)"),
                    ("best_single", best)))
    live = [c for c in out if c.get("verdict") != "not applicable"]
    for c, p_adj in zip(live, stats.holm([c["p"] for c in live])):
        c["p_holm"] = p_adj
        c["verdict"] = stats.verdict(c["diff"], p_adj)
        c["holds"] = {"holds": True, "fails": False}.get(c["verdict"])
        c["evidence"] = c["evidence"].replace("{holm}", f", Holm-adjusted {p_adj:.3g}")
    if mm and out[0]["verdict"] != "not applicable":
        # The thesis's 11 models are all in MM's families; say how MM fares against the
        # best of the models it fuses too, when the overall best single model is not one.
        fused = [r for rows in rep["single_models"].values() for r in rows if r["model"] in set(mm["models"])]
        best_fused = min(fused, key=lambda r: (-r["val_accuracy"], r["model"]), default=None)
        if best_fused and bs and best_fused["model"] != bs["model"]:
            word = "beats" if mm["test_accuracy"] > best_fused["test_accuracy"] else "does not beat"
            out[0]["evidence"] += (f"; MM {word} the best model it fuses ({best_fused['model']}, "
                                   f"test {best_fused['test_accuracy']:.4f}; not tested)")
    return out


# ----------------------------------------------------------------------------- text
def _table(headers: list[str], rows: list[list]) -> str:
    return text_table(headers, rows, digits=4)


def _acc(acc: float, n: int) -> str:
    return stats.fmt_interval(acc, n)


def format_thesis_report(report: dict) -> str:
    """Readable text tables of a :func:`thesis_report`; accuracies with their Wilson 95 % interval."""
    n_val, n_test = report["n"].get("val", 0), report["n"].get("test", 0)
    n = report["n"]
    pins = ", ".join(f"{k} {v:,}" for k, v in n.items()) if isinstance(n, dict) else f"{n:,}"
    parts = [f"Thesis report: {report['dataset']}  (pins: {pins}; classes {report['n_classes']})"]
    if report.get("warning"):
        parts.append(f"WARNING: {report['warning']}")
    parts.append("Accuracies: value [Wilson 95 % interval]. Definitions used throughout:")
    parts += [f"  {line}" for line in compare.definition_lines(report["definitions"])]
    titles = {"word_embedding": "Table 4.2 word embeddings + LR", "image": "Table 4.3 images + LR",
              "transformer": "Table 4.4 transformers", "other": "Other models"}
    for fam, rows in report["single_models"].items():
        if rows:
            parts.append(f"\n{titles[fam]}\n" + _table(["model", "val acc", "test acc"],
                         [[r["model"], _acc(r["val_accuracy"], n_val), _acc(r["test_accuracy"], n_test)]
                          for r in rows]))
    for key, title in (("lambda_word_embedding", "Table 4.5 lambda fusion, image x word embedding"),
                       ("lambda_transformer", "Table 4.6 lambda fusion, image x transformer")):
        rows = report[key]
        if rows:
            lams = list(rows[0]["test"])
            parts.append(f"\n{title} (test accuracy per lambda; best lambda chosen on val; * = the lambda "
                         "pair the claims use)\n" + _table(
                ["image", "text"] + [f"lambda={l:g}" for l in lams] + ["best lambda", "val acc", "test acc"],
                [[("* " if r.get("chosen") else "") + r["image"], r["text"], *[r["test"][l] for l in lams],
                  r["best_lambda"], _acc(r["val_accuracy"], n_val), _acc(r["test_accuracy"], n_test)]
                 for r in rows]))
    if report["feature_cross"]:
        parts.append("\nTable 4.7 feature cross (* = the feature-cross pair the claims and fusions use)\n" + _table(
            ["image", "text", "C", "val acc", "test acc"], [
                [("* " if r.get("chosen") else "") + r["image"], r["text"], r["C"], _acc(r["val_accuracy"], n_val),
                 _acc(r["test_accuracy"], n_test)] for r in report["feature_cross"]]))
    mm = report["mm"]
    if mm and "l_table" in mm:
        parts.append(f"\nTable 4.8 MM, l chosen on validation (chosen l = {mm['l']})\n" + _table(
            ["l", "val acc", "test acc"], [[g["l"], _acc(g["val_accuracy"], n_val), _acc(g["test_accuracy"], n_test)]
                                           for g in mm["l_table"]]))
        parts.append("\nTable 4.9 MM weights\n" + _table(["model", "weight"], [[m, w] for m, w in mm["weights"].items()]))
        parts.append("\nTable 4.10 MM top-k on test\n" + _table(
            [f"top-{k}" for k in range(1, 6)], [[_acc(v, n_test) for v in mm["test_topk"][:5]]]))
    elif mm:
        parts.append(f"\nMM: {mm.get('error')}")
    parts.append("\nAll fusion methods (settings chosen on validation; lambda and feature cross use the pairs "
                 "above; (recommended) = the method recommended by validation)\n" + _table(
        ["method", "val acc", "test acc", "test top-2"],
        [[f["method"] + (" (recommended)" if f.get("recommended") else ""), _acc(f["val_accuracy"], n_val),
          _acc(f["test_accuracy"], n_test), _acc(f["test_topk"][1], n_test)] if "error" not in f
         else [f["method"], "-", "-", f"error: {f['error'][:60]}"] for f in report["fusions"]]))
    rec = next((f for f in report["fusions"] if f.get("recommended") and "error" not in f), None)
    if rec:
        parts.append(f"Recommended by validation: {rec['method']} (val {_acc(rec['val_accuracy'], n_val)}); "
                     f"on test: {_acc(rec['test_accuracy'], n_test)}")
    if report.get("seed_systems"):
        parts.append("\n" + format_seed_systems(report["seed_systems"], n_val, n_test))
    parts.append("\nClaims")
    parts.append(report.get("test_method", ""))
    if report.get("warning"):
        parts.append(f"WARNING: {report['warning']}")
    for c in report["claims"]:
        parts.append(f"  [{VERDICT_MARKS[c['verdict']]}] {c['claim']}: {c['evidence']}")
    return "\n".join(parts)


VERDICT_MARKS = {"holds": "HOLDS", "fails": "FAILS", "inconclusive": "INCONCLUSIVE", "not applicable": "N/A"}
