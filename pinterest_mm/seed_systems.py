"""The companion papers' systems next to MM: a section of the thesis report.

Lists every model and fusion method the lab takes from seeds 002-004, whether it is built or
fitted on this dataset, its validation and test accuracy, and its test difference to MM with
McNemar's mid-p (the same paired test as the thesis claims; not Holm-adjusted: these rows are
a listing, not claims). Adds the effect of 002's PCA (``concat_mlp`` with and without it) and
003's top-K interests from MM's predictions, with and without the users' history.
"""

from __future__ import annotations

import numpy as np

from . import stats
from .fusion import fuse
from .outputs import Outputs
from .textable import text_table
from .topk_interests import topk_report

# (name, kind, seed, what)
SYSTEMS = (
    ("tfidf-svm", "model", "004", "TF-IDF + calibrated linear SVM"),
    ("cnn-scratch", "model", "004", "CNN trained from scratch on 64 px images"),
    ("lstm-cnn", "model", "004", "LSTM + 1-d CNN over word vectors, from scratch"),
    ("e5-small", "model", "002", "multilingual-e5-small embeddings + LR"),
    ("concat_mlp", "fusion", "002", "PCA (train) + concatenated features -> MLP"),
    ("attention_mlp", "fusion", "002", "PCA (train) + modality attention -> MLP"),
    ("gated", "fusion", "003", "learned per-pin image/text gate"),
    ("user_gated", "fusion", "003", "gate that also sees the user's train history"),
)


def _row(name: str, kind: str, seed: str, what: str, val: float, test: float, pred: np.ndarray,
         mm_pred: np.ndarray | None, y: np.ndarray) -> dict:
    row = {"system": name, "kind": kind, "seed": seed, "what": what, "status": "ok",
           "val_accuracy": float(val), "test_accuracy": float(test)}
    if mm_pred is not None:
        t = stats.paired_test(pred, mm_pred, y)
        row.update(diff_vs_mm=t.diff, p_mid_vs_mm=t.p_mid)
    return row


def seed_systems(outputs: Outputs, test_preds: dict[str, np.ndarray], fusions: list[dict], **kw) -> dict:
    """The companion papers' systems on one dataset.

    Args:
        outputs: The probability cache.
        test_preds: Method or model name to predicted test labels (n_test,), with ``mm``.
        fusions: The thesis report's fusion rows (``method``, ``val_accuracy``,
            ``test_accuracy`` or ``error``).
        **kw: ``store`` / ``version`` passed to :func:`~pinterest_mm.fusion.fuse` (cache).

    Returns:
        ``{"rows": [...], "pca": {...} or {"error"}, "interests": TopKReport dict or {"error"}}``.
    """
    y = outputs.y["test"]
    mm = test_preds.get("mm")
    by_method = {f["method"]: f for f in fusions}
    rows = []
    for name, kind, seed, what in SYSTEMS:
        if kind == "model":
            if name not in outputs.probs:
                rows.append({"system": name, "kind": kind, "seed": seed, "what": what,
                             "status": f"not built: pinterest-mm build {outputs.dataset} --models {name}"})
                continue
            p = outputs.probs[name]
            val = float((p["val"].argmax(1) == outputs.y["val"]).mean())
            rows.append(_row(name, kind, seed, what, val, float((p["test"].argmax(1) == y).mean()),
                             p["test"].argmax(1), mm, y))
        else:
            f = by_method.get(name)
            if f is None or "error" in f or name not in test_preds:
                why = f["error"] if f and "error" in f else "not run"
                rows.append({"system": name, "kind": kind, "seed": seed, "what": what, "status": f"error: {why}"})
                continue
            rows.append(_row(name, kind, seed, what, f["val_accuracy"], f["test_accuracy"], test_preds[name], mm, y))
    try:
        on = by_method.get("concat_mlp", {})
        if "error" in on or not on:
            raise ValueError(on.get("error", "concat_mlp was not run"))
        off = fuse(outputs, "concat_mlp", pca_dim=0, **kw)
        t = stats.paired_test(test_preds["concat_mlp"], off.test_probs.argmax(1), y)
        pca = {"with_pca": {"pca_dim": on["config"]["pca_dim"], "val_accuracy": on["val_accuracy"],
                            "test_accuracy": on["test_accuracy"]},
               "without_pca": {"val_accuracy": off.val_accuracy, "test_accuracy": off.test_accuracy},
               "diff": t.diff, "p_mid": t.p_mid}
    except ValueError as exc:
        pca = {"error": str(exc)}
    try:
        r = fuse(outputs, "mm", **kw)
        interests = {"method": "mm", **topk_report(outputs, {"val": r.val_probs, "test": r.test_probs}).to_dict()}
    except ValueError as exc:
        interests = {"error": str(exc)}
    return {"rows": rows, "pca": pca, "interests": interests}


def format_seed_systems(sec: dict, n_val: int, n_test: int) -> str:
    """Plain-text tables of :func:`seed_systems` (accuracies with Wilson 95 % intervals)."""
    acc = stats.fmt_interval
    rows = [[r["system"], r["seed"], r["kind"], acc(r["val_accuracy"], n_val), acc(r["test_accuracy"], n_test),
             r.get("diff_vs_mm"), r.get("p_mid_vs_mm")] if r["status"] == "ok"
            else [r["system"], r["seed"], r["kind"], "-", "-", None, r["status"][:70]] for r in sec["rows"]]
    parts = ["Companion papers' systems (seeds 002-004) vs MM: test difference and McNemar mid-p "
             "(not Holm-adjusted)\n" + text_table(
                 ["system", "seed", "kind", "val acc", "test acc", "test - MM", "p (mid)"], rows, digits=4)]
    pca = sec["pca"]
    if "error" in pca:
        parts.append(f"PCA before concat_mlp (002): {pca['error'][:100]}")
    else:
        parts.append(f"PCA before concat_mlp (002): with PCA to {pca['with_pca']['pca_dim']} dims "
                     f"test {acc(pca['with_pca']['test_accuracy'], n_test)}, without "
                     f"{acc(pca['without_pca']['test_accuracy'], n_test)}; difference {pca['diff']:+.4f}, "
                     f"McNemar mid-p {pca['p_mid']:.3g}")
    it = sec["interests"]
    if "error" in it:
        parts.append(f"Top-K interests (003): {it['error'][:100]}")
    else:
        parts.append("Top-K interests (003) from MM: " + "; ".join(
            f"{v}: best K = {int(b['K'])}, hit {b['hit_rate']:.3f}, precision {b['precision']:.3f}, recall "
            f"{b['recall']:.3f}, F1 {b['f1']:.3f}" for v, b in it["best"].items())
            + f" ({it['n_users']} test users, history weight {it['alpha']:g} chosen on validation)")
    return "\n".join(parts)
