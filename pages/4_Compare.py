"""Compare: every fusion method side by side (thesis Fig. 4.4), significance, agreement,
calibration, the thesis tables with a verdict per claim, and downloads."""

import pandas as pd
import streamlit as st

from pinterest_mm import stats
from pinterest_mm.compare import calibration_methods, definition_lines as compare_lines
from pinterest_mm.compare import display_table as compare_table
from pinterest_mm.repeats import DEFAULT_METHODS as REPEAT_METHODS
from pinterest_mm.repeats import display_tables as repeat_tables
from pinterest_mm.curves import topk_table
from pinterest_mm.ui import charts, data, results, widgets
from pinterest_mm.ui.text import md_text


def three_decimals(rows: list[dict]) -> dict:
    """Accuracy columns of ``rows`` shown with 3 decimals (the page's one rule for accuracies)."""
    return {c: st.column_config.NumberColumn(format="%.3f") for c in (rows[0] if rows else {})
            if isinstance(rows[0][c], float) and "accuracy" in c}


pg = widgets.page("Compare")
ds, ver, split = pg.dataset, pg.ver, pg.setting.split
out = pg.out
st.caption(f"Dataset **{md_text(ds)}** · split **{split}** · every method with the thesis model selection "
           "and its settings chosen on validation")

methods = data.fusion_methods()
late = [m for m in methods if data.method_info(m)[1] != "learned"]
learned = [m for m in methods if data.method_info(m)[1] == "learned"]
run_learned = st.session_state.get("compare_learned", False)
chosen_methods = tuple(late + (learned if run_learned else []))

with st.spinner("Fusing and testing every method ..."):
    cmp = results.compare_methods(ds, ver, split, chosen_methods)
table = pd.DataFrame(cmp["table"])
best = cmp["best"]
for m, err in cmp["errors"].items():
    st.warning(f"{md_text(m)}: {md_text(err, 600)}")
if table.empty:
    st.error("No fusion method could run on this dataset.")
    st.stop()

if cmp.get("warning"):
    st.warning(cmp["warning"])
defs = cmp["definitions"]
for m, why in (defs.get("mm_excluded") or {}).items():
    st.warning(f"Left out of the MM selection as chance-level: {md_text(m)}, {md_text(why, 400)}.")
for m, cover in results.unknown_words(ds, ver).items():
    if cover.get("warning"):
        st.warning(md_text(cover["warning"], 800))
st.caption("Definitions used on this page, the report and the downloads: "
           + " · ".join(md_text(line) for line in compare_lines(defs)))
rec = next((r for r in cmp["table"] if r.get("recommended")), None)
if rec:
    st.info(f"Recommended by validation: **{md_text(rec['method'])}** ({md_text(defs['rules']['recommended'])}); "
            f"validation {rec['val accuracy']:.3f} [{rec['val accuracy 95% low']:.2f}, "
            f"{rec['val accuracy 95% high']:.2f}], test {rec['test accuracy']:.3f} "
            f"[{rec['test accuracy 95% low']:.2f}, {rec['test accuracy 95% high']:.2f}], "
            f"{rec[f'Δ vs {best}']:+.3f} vs the best single model on {split} (McNemar mid-p "
            f"{rec['McNemar mid-p']:.3g}).")
st.plotly_chart(charts.method_bars(table, "Fusion methods, settings chosen on validation (Fig. 4.4)",
                                   ref=out.models[best].test_accuracy), key="methods")
if learned and not run_learned:
    st.info(f"Learned fusions ({', '.join(learned)}) train models and are slower; "
            "they are left out until you ask for them.")
    st.button("Run the learned fusions too", type="primary",
              on_click=lambda: st.session_state.update(compare_learned=True))
st.subheader(f"Significance vs the best single model ({md_text(best)}) on {split}")
st.caption(f"{md_text(defs['rules']['best_single'])}: {md_text(best)} (family "
           f"{md_text(out.models[best].family.replace('_', ' '))}); the `best_single` "
           "method row picks among the models the fusions use (the thesis selection).")
# a static table wraps its cells: every column readable without truncation or side scrolling
st.table(pd.DataFrame(compare_table(cmp, split)).set_index("method"))
st.caption(f"Accuracy bounds: Wilson 95 % intervals ({cmp['n']} {split} pins). McNemar's exact mid-p test asks "
           "whether the pins only the method gets right and the pins only the best single model gets right "
           "are balanced; the CI is the 95 % paired bootstrap of the accuracy difference (1,000 resamples, "
           "seed 0), its size and uncertainty. Both use the same pins and the same difference. Not "
           "corrected for the many methods compared here; the claims below are (Holm).")

curves = dict(cmp["topk"])
best_label = f"best single ({best})"
curves[best_label] = data.topk_curves(ds, ver, split)[best]
best_color = charts.FAMILY_COLORS.get(out.models[best].family, "#7f7f7f")
colors = {**charts.series_colors(list(cmp["topk"]), [best_color]), best_label: best_color}
left, right = st.columns(2)
with left:
    st.plotly_chart(charts.topk_figure(curves, {best_label: out.models[best].family},
                                       f"Top-k accuracy per method ({split})", bold=["mm"], colors=colors),
                    key="topk")
with right:
    cal_methods = calibration_methods(table["method"].tolist())
    cals = results.calibrations(ds, ver, split, cal_methods)
    st.plotly_chart(charts.reliability_figure(cals, f"Reliability diagrams ({split})", colors=colors), key="calib")

st.subheader("Model agreement")
singles = tuple(data.usable_models(out))
ag = results.agreement_matrix(ds, ver, split, singles)
a1, a2 = st.columns(2)
a1.plotly_chart(charts.heatmap(ag["both_wrong"], singles, singles, "Share of pins both models get wrong",
                               colorscale="Reds"), key="bothwrong")
a2.plotly_chart(charts.heatmap(ag["same"], singles, singles, "Share of pins predicted identically",
                               zmax=1.0), key="same")

st.subheader("Repeated re-splits: how much the figures move with the split")
st.caption("K stratified re-splits with new seeds (the import's proportions); each model's classifier is "
           "refit on its cached features, TF-IDF refit on the texts, fine-tuned models left out; every "
           "setting chosen on the repeat's validation split. Figures: mean ± sd; claims: the share of "
           "repeats with each verdict.")
r1, r2 = st.columns([1, 3])
k = int(r1.number_input("Re-splits K", min_value=2, max_value=20, value=5, step=1, key="repeats_k"))
if r2.button(f"Run {k} re-splits", key="run_repeats"):
    st.session_state["compare_repeats"] = k
rep_k = st.session_state.get("compare_repeats")
repeat_rep = None
if rep_k:
    bar = st.progress(0.0, text=f"Re-splitting {rep_k} times ...")
    try:
        repeat_rep = results.repeats(ds, ver, rep_k, REPEAT_METHODS,
                                     _on_progress=lambda i, n, msg: bar.progress(i / n, text=msg))
    except ValueError as exc:
        st.error(md_text(data.safe_error(exc), 600))
    bar.empty()
if repeat_rep:
    tabs = repeat_tables(repeat_rep)
    st.markdown(f"**{repeat_rep['repeats']} re-splits** ({repeat_rep['n']['test']} test pins each, "
                f"{repeat_rep['seconds']:.1f} s): claims")
    st.dataframe(pd.DataFrame(tabs["claims"]), hide_index=True)
    q1, q2 = st.columns(2)
    q1.markdown("**Fusion methods**")
    q1.dataframe(pd.DataFrame(tabs["methods"]), hide_index=True)
    q2.markdown("**Single models**")
    q2.dataframe(pd.DataFrame(tabs["models"]), hide_index=True)
    st.caption(md_text(repeat_rep["method"], 2000))
    for m, why in repeat_rep["left_out"].items():
        st.caption(f"Left out of the repeats: {md_text(m)}, {md_text(why, 300)}")

st.subheader("The thesis's tables and claims on this dataset")
report = None
if not st.session_state.get("compare_thesis"):
    st.caption("Reproduces Tables 4.2-4.10 (every lambda pair, feature cross, MM) and checks the "
               "thesis's four claims on this dataset.")
    if st.button("Reproduce the thesis tables"):
        st.session_state["compare_thesis"] = True
if st.session_state.get("compare_thesis"):
    try:
        with st.spinner("Reproducing the thesis tables (feature cross included) ..."):
            report = results.thesis_report(ds, ver, chosen_methods, "top2")
    except Exception as exc:
        st.error(f"The thesis report cannot be computed here: {md_text(data.safe_error(exc), 600)}")
if report:
    verdict = {"holds": "✅ holds", "fails": "❌ fails", "inconclusive": "❔ inconclusive",
               "not applicable": "— not applicable"}
    if report.get("warning"):
        st.warning(report["warning"])
    claims = pd.DataFrame([{"claim": c["claim"], "verdict": verdict.get(c.get("verdict")),
                            "Holm-adjusted p": "" if c.get("p_holm") is None else stats.fmt_p(c["p_holm"]),
                            "evidence": c.get("evidence", "")} for c in report.get("claims", [])])
    st.dataframe(claims, hide_index=True)
    st.caption(md_text(report.get("test_method", ""), 2000))
    mm = report.get("mm") or {}
    t1, t2 = st.columns(2)
    if mm.get("l_table"):
        t1.markdown("**MM: l chosen on validation (Table 4.8)**")
        t1.dataframe(pd.DataFrame(mm["l_table"]), hide_index=True, column_config=three_decimals(mm["l_table"]))
    if mm.get("weights"):
        t2.markdown("**MM weights (Table 4.9)**")
        t2.dataframe(pd.DataFrame({"model": list(mm["weights"]), "weight": list(mm["weights"].values())}),
                     hide_index=True, column_config={"weight": st.column_config.NumberColumn(format="%.3f")})
    for key, title in (("lambda_word_embedding", "Lambda fusion, image + word embedding (Table 4.5)"),
                       ("lambda_transformer", "Lambda fusion, image + transformer (Table 4.6)"),
                       ("feature_cross", "Feature cross (Table 4.7)")):
        rows = report.get(key) or []
        with st.expander(f"{title}: {len(rows)} pairs"):
            flat = [{k: v for k, v in r.items() if not isinstance(v, (list, dict))} for r in rows]
            st.dataframe(pd.DataFrame(flat), hide_index=True, column_config=three_decimals(flat))
    if report.get("text"):
        with st.expander("As printed by `pinterest-mm report --thesis`"):
            st.code(report["text"], language=None)

st.subheader("Downloads")
config = {"dataset": ds, "cache_version": ver, "split": split, "best_single": best, "definitions": defs,
          "warning": cmp.get("warning"),
          "methods": cmp["configs"], "setting": pg.setting.__dict__}
d1, d2, d3 = st.columns(3)
d1.download_button("Comparison table (CSV)", widgets.safe_csv(table), f"{ds}-{split}-fusion-methods.csv", "text/csv")
d2.download_button("Top-k curves (CSV)", widgets.safe_csv(topk_table(curves)),
                   f"{ds}-{split}-topk.csv", "text/csv")
d3.download_button("Everything + exact config (JSON)",
                   widgets.to_json_bytes({"config": config, "table": cmp["table"], "topk": curves,
                                          "thesis": report, "repeats": repeat_rep}),
                   f"{ds}-{split}-compare.json", "application/json")
