"""Models: every single model's accuracy, hyperparameters, build time, top-k (Fig. 4.1), F1."""

import streamlit as st

from pinterest_mm import curves as curve_data
from pinterest_mm import stats
from pinterest_mm.outputs import FAMILIES
from pinterest_mm.ui import charts, data, results, widgets
from pinterest_mm.ui.text import md_text

pg = widgets.page("Models")
ds, ver, split = pg.dataset, pg.ver, pg.setting.split
st.caption(f"Dataset **{md_text(ds)}** · split **{split}** · single models (no fusion)")

table = data.single_model_table(ds, ver)
defs = data.definitions(ds, ver)
warning = stats.small_test_warning(len(pg.out.y["test"]))
if warning:
    st.warning(warning)
for cover in results.unknown_words(ds, ver).values():
    if cover.get("warning"):
        st.warning(md_text(cover["warning"], 800))
st.caption(f"{md_text(defs['rules']['best_single'])}: **{md_text(defs['best_single'])}** · "
           "the 95% bounds are Wilson intervals of each accuracy on the split's pins (error bars below)")
st.dataframe(
    table, hide_index=True,
    column_config={
        "val accuracy": st.column_config.ProgressColumn(format="%.3f", min_value=0, max_value=1),
        "test accuracy": st.column_config.ProgressColumn(format="%.3f", min_value=0, max_value=1),
        "cv score": st.column_config.NumberColumn(format="%.3f"),
        "build s": st.column_config.NumberColumn(format="%.1f"),
    } | {c: st.column_config.NumberColumn(format="%.3f") for c in table.columns if "95%" in c},
)
st.download_button("Download the table (CSV)", widgets.safe_csv(table), f"{ds}-models.csv", "text/csv")
st.plotly_chart(charts.accuracy_bars(table, "Validation and test accuracy per model"), key="acc",
                config=widgets.chart_config(f"{ds}-accuracy"))

curves = data.topk_curves(ds, ver, split)
families = dict(zip(table["model"], table["family"]))
st.subheader(f"Top-k accuracy by family, k = 1..10 ({split}; thesis Fig. 4.1)")
present = [f for f in FAMILIES if f in set(families.values())]
cols = st.columns(2)
for i, fam in enumerate(present):
    sub = {m: c for m, c in curves.items() if families.get(m) == fam}
    with cols[i % 2]:
        st.plotly_chart(charts.topk_figure(sub, families, f"{fam.replace('_', ' ')} models"),
                        key=f"topk_{fam}", config=widgets.chart_config(f"{ds}-{split}-topk-{fam}"))
st.download_button("Download the top-k curves (CSV: k, one column per model)",
                   widgets.safe_csv(curve_data.topk_table(curves)), f"{ds}-{split}-topk.csv", "text/csv")

st.subheader(f"F1 per class ({split})")
f1 = data.per_class_f1(ds, ver, split)
st.plotly_chart(charts.heatmap(f1.to_numpy(), list(f1.columns), list(f1.index),
                               "F1 per class (rows) and model (columns)", zmax=1.0), key="f1",
                config=widgets.chart_config(f"{ds}-{split}-f1"))

st.subheader(f"One model: confusion matrix ({split}) and training curve")
out = pg.out
name = st.selectbox("Model", list(table["model"]), key="w_model_detail")
left, right = st.columns(2)
with left:
    cm = curve_data.model_confusion(out.probs[name][split], out.y[split], out.n_classes, "true")
    st.plotly_chart(charts.confusion_figure(cm, out.classes, "true", f"Confusion matrix of {name} ({split})"),
                    key="model_cm", config=widgets.chart_config(f"{ds}-{split}-{name}-confusion"))
with right:
    curve = curve_data.training_curve(out.models[name].params)
    if curve is None:
        st.info(f"{md_text(name)} recorded no training curve (it was built before curves were kept, "
                "or it has no setting chosen in training).")
    else:
        st.plotly_chart(charts.training_curve_figure(curve, f"How {name} was trained"), key="model_curve",
                        config=widgets.chart_config(f"{ds}-{name}-training"))
        st.caption(curve.note)
st.caption("Confusion matrix: rows are the true class, each row's shares sum to 1.")
