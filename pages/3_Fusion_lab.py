"""Fusion lab: choose models and a method; the l / lambda slider updates the view live.

The (M, n, C) stack of a selection is prepared once (``data.fusion_stack``); a slider move
reruns only the ``live`` fragment: new weights, one fusion pass (``FusionStack.view``: the
fused array, accuracy, top-k and confusion counts together), and the charts.
"""

import numpy as np
import streamlit as st

from pinterest_mm import compare, metrics
from pinterest_mm.fusion import live
from pinterest_mm.fusion.late import mm_weights
from pinterest_mm.ui import charts, data, state, widgets
from pinterest_mm.ui.text import md_text

CELL_PAGE = 12  # drill-down pins per page

pg = widgets.page("Fusion lab", url_keys=("cell",))
ds, ver, split = pg.dataset, pg.ver, pg.setting.split
out = pg.out
classes, C = out.classes, out.n_classes
families = {m: i.family for m, i in out.models.items()}
usable = data.usable_models(out)
if not usable:
    st.warning("No model has validation and test probabilities yet: rebuild the models.")
    st.stop()
best = data.best_single(out)

# ----------------------------------------------------------------------------- controls
methods = data.fusion_methods()
top = st.columns([1, 3])
with top[0]:
    key = state.seed_widget("method", state.get("method") if state.get("method") in methods else "mm")
    if st.session_state[key] not in methods:
        st.session_state[key] = "mm"
    method = st.selectbox("Fusion method", methods, key=key, on_change=state.remember, args=("method",))
    state.put("method", method)
    desc, kind = data.method_info(method)
    if desc:
        st.caption(desc)

thesis = data.thesis_selection(out)
fields = data.method_fields(method)
img_models = data.usable_models(out, modality="image")
txt_models = data.usable_models(out, modality="text")
with top[1]:
    if method == "lambda":
        if not img_models or not txt_models:
            st.warning("Lambda fusion needs one image and one text model.")
            st.stop()
        c1, c2 = st.columns(2)
        img = state.get("image_model") if state.get("image_model") in img_models else img_models[0]
        txt = state.get("text_model") if state.get("text_model") in txt_models else txt_models[0]
        k1, k2 = state.seed_widget("image_model", img), state.seed_widget("text_model", txt)
        if st.session_state[k1] not in img_models:
            st.session_state[k1] = img
        if st.session_state[k2] not in txt_models:
            st.session_state[k2] = txt
        img = c1.selectbox("Image model", img_models, key=k1, on_change=state.remember, args=("image_model",))
        txt = c2.selectbox("Text model", txt_models, key=k2, on_change=state.remember, args=("text_model",))
        state.put("image_model", img)
        state.put("text_model", txt)
        models = [img, txt]
    else:
        models = widgets.model_multiselect(
            "Models fused (default: the thesis selection, best 2 image + best 2 word-embedding "
            "+ all transformers by validation accuracy)", usable, thesis, "models")
        state.put("models", None if models == thesis else tuple(models))
        if not models:
            st.warning("Choose at least one model.")
            st.stop()

state.sync_url(state.current(ds), state.get("norm"))
y = out.y[split]
best_curve = np.asarray(data.topk_curves(ds, ver, split)[best])  # cached per version
best_acc = float(best_curve[0])


def _config(models: list[str]) -> dict:
    if method == "lambda":
        return {"image_model": models[0], "text_model": models[1]}
    return {"models": tuple(models)} if "models" in fields else {}


def result_for(models: list[str]):
    """The method fitted with settings chosen on validation (cached)."""
    return data.fuse_cached(ds, ver, method, **_config(models))


# ----------------------------------------------------------------------------- drill-down
def sync_cell(fused: np.ndarray, models: list[str]) -> tuple[int, int]:
    """Apply a new click on the matrix (state of chart ``cm``) to the cell select boxes.

    Returns the selected (true, predicted) cell; the default is the first wrong pin's cell.
    The cell comes from the link (``cell=3-7``) on the first run; it goes back to the default
    when it is stale: another dataset version, split, method or model selection.
    """
    context = (ver, split, method, tuple(models))
    if st.session_state.get("_cell_context") not in (None, context):
        for k in ("w_cell_true", "w_cell_pred"):
            st.session_state.pop(k, None)
        state.put("cell", None)
    elif st.session_state.get("_cell_context") is None and (cell := state.parse_cell(state.get("cell"), C)):
        st.session_state["w_cell_true"], st.session_state["w_cell_pred"] = classes[cell[0]], classes[cell[1]]
    st.session_state["_cell_context"] = context
    event = st.session_state.get("cm")
    pts = (event or {}).get("selection", {}).get("points", []) if event else []
    if pts:
        sel = (int(round(pts[0].get("y", 0))), int(round(pts[0].get("x", 0))))
        if sel != st.session_state.get("_last_cell") and all(0 <= v < C for v in sel):
            st.session_state["_last_cell"] = sel
            st.session_state["w_cell_true"] = classes[sel[0]]
            st.session_state["w_cell_pred"] = classes[sel[1]]
    if st.session_state.get("w_cell_true") not in classes or st.session_state.get("w_cell_pred") not in classes:
        a, b = compare.first_error_cell(fused.argmax(1), y)
        st.session_state["w_cell_true"], st.session_state["w_cell_pred"] = classes[a], classes[b]
    return classes.index(st.session_state["w_cell_true"]), classes.index(st.session_state["w_cell_pred"])


def drill_down(fused: np.ndarray, models: list[str]) -> None:
    """Pins of the selected confusion cell: thumbnails, text, votes, fused probabilities."""
    st.markdown("**Pins in a cell** — click a cell above, or choose:")
    c1, c2 = st.columns(2)
    t = c1.selectbox("True class", classes, key="w_cell_true")
    pr = c2.selectbox("Predicted class", classes, key="w_cell_pred")
    ti, pj = classes.index(t), classes.index(pr)
    state.put("cell", f"{ti}-{pj}")
    state.sync_url(state.current(ds), state.get("norm"))
    idx = metrics.cell_pins(fused, y, ti, pj)
    st.caption(f"{len(idx):,} {split} pins are of class {md_text(t)} and predicted {md_text(pr)} by the fusion "
               f"(most confident first; {CELL_PAGE} a page).")
    if not len(idx):
        return
    a, b = widgets.paginate(len(idx), CELL_PAGE, f"cell_{ti}_{pj}")
    rows = data.pins_by_split(ds, ver, split)
    shown = rows.loc[idx[a:b]]
    extra = dict(zip(shown["pin_id"], compare.vote_lines(out, models, split, idx[a:b], fused)))
    widgets.pin_cards(shown, ncols=4, extra=extra, max_pins=CELL_PAGE)


def show(view: live.LiveView, weights: dict | None, label: str) -> None:
    """Accuracy, top-k vs the best single model, weights, confusion + drill-down of one
    fused view (its fused probabilities, accuracy, top-k and confusion counts)."""
    fused, ev_acc, topk = view.fused, view.accuracy, view.topk
    m = st.columns(4)
    m[0].metric(f"Fusion accuracy ({split})", f"{ev_acc:.3f}", f"{ev_acc - best_acc:+.3f} vs best single")
    m[1].metric(f"Best single: {md_text(best)}", f"{best_acc:.3f}")
    m[2].metric("Top-2", f"{topk[1]:.3f}" if len(topk) > 1 else "-")
    m[3].metric("Top-5", f"{topk[4]:.3f}" if len(topk) > 4 else "-")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(charts.topk_figure({label: topk, f"best single ({best})": best_curve},
                                           {f"best single ({best})": families.get(best, "other")},
                                           f"Top-k accuracy on {split}: fusion vs best single model",
                                           bold=[label]), key="topk",
                        config=widgets.chart_config(f"{ds}-{split}-fusion-topk"))
    with right:
        if weights:
            st.plotly_chart(charts.weights_bar(weights, families, "Weight per model"), key="weights",
                            config=widgets.chart_config(f"{ds}-fusion-weights"))
    nkey = state.seed_widget("norm", state.get("norm") or "true")
    norm = st.radio("Normalize the confusion matrix by", state.NORMALIZE, key=nkey, horizontal=True,
                    on_change=state.remember, args=("norm",),
                    format_func=lambda s: {"true": "true class (rows)", "pred": "predicted class (columns)",
                                           "all": "all pins", "none": "counts"}[s])
    state.put("norm", norm)
    cm = metrics.normalize_confusion(view.confusion, None if norm == "none" else norm)
    sel = sync_cell(fused, models)
    fig = charts.confusion_figure(cm, classes, norm, f"Confusion matrix of the fusion ({split})", sel)
    st.plotly_chart(fig, key="cm", on_select="rerun", selection_mode="points")
    drill_down(fused, models)


# ----------------------------------------------------------------------------- live views
def knob_slider(name: str, label: str, lo: float, hi: float, step: float, chosen: float,
                selection: tuple) -> float:
    """A live slider for the fusion knob ``name`` (l or lambda), with a reset to the value
    chosen on validation; the value is kept in the state (None while it equals ``chosen``).

    The slider follows ``chosen`` (re-chosen on validation for each ``selection`` of models)
    until the user moves it; a value the user set belongs to the selection it was set for.
    """
    if state.follow_selection(name, selection) is None:
        st.session_state[f"w_{name}"] = chosen
    key = state.seed_widget(name, state.get(name) if state.get(name) is not None else chosen)
    c1, c2 = st.columns([4, 1])
    value = c1.slider(label, lo, hi, key=key, step=step, on_change=state.remember, args=(name,))
    if c2.button(f"Use {name} chosen on validation", help=f"{name} = {chosen:g}"):
        st.session_state.pop(f"w_{name}", None)
        state.put(name, None)
        st.rerun(scope="fragment")
    state.put(name, None if value == chosen and state.get(name) is None else value)
    return value


def live_view(models: list[str], res, knob: str, value: float, chosen: float, w: np.ndarray,
              grid_title: str, label: str) -> None:
    """What the live fragments share: the URL and setting caption, the knob's grid with the
    current value, and the views of the split fused with weights ``w`` (M,) on the prepared
    (M, n, C) stack."""
    state.sync_url(state.current(ds), state.get("norm"))
    widgets.setting_caption(state.current(ds))
    view = data.fusion_stack(ds, ver, tuple(models), split).view(w)  # fused once per move
    grid = res.grid
    st.plotly_chart(charts.grid_figure([g["setting"][knob] for g in grid], [g["val_accuracy"] for g in grid],
                                       [g["test_accuracy"] for g in grid], chosen, value, knob, grid_title),
                    key="grid", config=widgets.chart_config(f"{ds}-{split}-{knob}-grid"))
    show(view, dict(zip(models, w)), label)


@st.fragment
def live_mm(models: list[str]) -> None:
    """MM with a live l slider."""
    res = result_for(models)
    chosen_l = float(res.chosen.get("l", 1.0))
    accs = np.array([out.models[m].val_accuracy if m not in res.chosen.get("val_accuracies", {})
                     else res.chosen["val_accuracies"][m] for m in models])
    l = knob_slider("l", "l (MM weights = softmax(validation accuracy × l))", 0.0, 20.0, 0.25, chosen_l,
                    tuple(models))
    st.caption(f"★ l = {chosen_l:g} was chosen on validation from the grid "
               f"{[g['setting']['l'] for g in res.grid]}" + (" (current)" if l == chosen_l else ""))
    live_view(models, res, "l", l, chosen_l, mm_weights(accs, l),
              "MM accuracy over the l grid (thesis Table 4.8)", f"MM (l={l:g})")


@st.fragment
def live_lambda(models: list[str]) -> None:
    """Lambda fusion with a live lambda slider."""
    res = result_for(models)
    chosen = float(res.chosen.get("lambda", 0.5))
    lam = knob_slider("lambda", "lambda (weight of the image model)", 0.0, 1.0, 0.05, chosen, tuple(models))
    st.caption(f"★ lambda = {chosen:g} was chosen on validation" + (" (current)" if lam == chosen else ""))
    live_view(models, res, "lambda", lam, chosen, np.array([lam, 1.0 - lam]),
              "Lambda fusion accuracy over the lambda grid (Tables 4.5/4.6)", f"lambda={lam:g}")


@st.fragment
def static_view(models: list[str]) -> None:
    """Any other method: settings chosen on validation, shown on the chosen split."""
    widgets.setting_caption(state.current(ds))
    cache_key = f"_fitted_{method}_{ver}_{','.join(models)}"
    if kind == "learned" and not st.session_state.get(cache_key):
        st.info(f"{method} trains a model on the train/validation splits; this can take a while.")
        if not st.button(f"Fit {method}", type="primary"):
            return
        st.session_state[cache_key] = True
    try:
        with st.spinner(f"Fitting {method} (settings chosen on validation) ..."):
            res = result_for(models)
    except Exception as exc:  # a method that cannot run on this dataset says why
        st.error(f"{md_text(method)} cannot run here: {md_text(data.safe_error(exc), 600)}")
        return
    st.caption("★ settings chosen on validation: " + (", ".join(
        md_text(f"{k} = {v}") for k, v in res.chosen.items() if not isinstance(v, (dict, list))) or "—"))
    fused = res.val_probs if split == "val" else res.test_probs
    show(live.evaluate(fused, y, C), res.weights, method)


if method == "mm":
    live_mm(models)
elif method == "lambda":
    live_lambda(models)
else:
    static_view(models)
