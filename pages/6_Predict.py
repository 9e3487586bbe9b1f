"""Predict: upload a pin image and/or type a description; every model's vote and the fusion.

The only page that loads models (``st.cache_resource``); uploads are decoded in memory.
"""

import time
from pathlib import Path

import streamlit as st

from pinterest_mm.confidence import prediction_notes
from pinterest_mm.predict import MAX_TEXT_CHARS, clip_text, pin_fusion, predict_pin, top_k
from pinterest_mm.ui import charts, data, predict, widgets
from pinterest_mm.ui.results import default_config
from pinterest_mm.ui.text import md_text

pg = widgets.page("Predict", split_choice=False)
ds, ver, s = pg.dataset, pg.ver, pg.setting
out = pg.out
classes = out.classes

choice = pin_fusion(out, s.method, default_config(out, s.method, s),
                    lambda m, **cfg: data.fuse_cached(ds, ver, m, **cfg), s.fusion_text())
if choice.problem:
    st.warning(md_text(choice.problem, 600))
st.caption(f"Dataset **{md_text(ds)}** · fused prediction with {md_text(choice.label, 1000)}")
weights, combine = choice.weights, choice.combine
modalities = {m: out.models[m].modality for m in out.models}

# ----------------------------------------------------------------------------- inputs
test_pins = data.pins_by_split(ds, ver, "test").head(40)
with st.expander("Try an example pin from the dataset", expanded=False):
    opts = test_pins["pin_id"].tolist()
    ex = st.selectbox("Example (test split)", opts,
                      format_func=lambda p: f"{p} — {test_pins.set_index('pin_id').loc[p, 'category']}")
    if st.button("Use this example"):
        row = test_pins.set_index("pin_id").loc[ex]
        st.session_state["pred_text"] = str(row["description"])[:MAX_TEXT_CHARS]
        st.session_state["pred_example_image"] = str(row["image"])
        st.session_state["pred_example_label"] = str(row["category"])

c1, c2 = st.columns(2)
with c1:
    up = st.file_uploader("Pin image (PNG, JPEG or WebP)", type=["png", "jpg", "jpeg", "webp"],
                          max_upload_size=predict.MAX_UPLOAD_MB, help=predict.LIMITS_TEXT)
with c2:
    text = st.text_area("Description", key="pred_text", height=140,
                        placeholder="e.g. Easy chocolate cake recipe for a rainy weekend")
    if st.session_state.get("pred_example_image") and st.button("Clear the example"):
        for k in ("pred_example_image", "pred_example_label"):
            st.session_state.pop(k, None)
        st.rerun()

img_bytes, source = None, ""
if up is not None:
    img_bytes, source = up.getvalue(), "uploaded image"
elif st.session_state.get("pred_example_image"):
    try:
        img_bytes = Path(st.session_state["pred_example_image"]).read_bytes()
        source = f"example pin (true class: {st.session_state.get('pred_example_label')})"
    except OSError:
        st.warning("The example's image file is missing.")
upload = predict.read_image(img_bytes)
if upload.message:
    st.error(md_text(upload.message, 600))
for note in upload.notes:
    st.info(md_text(note, 600))
text, note = clip_text(text)
if note:
    st.info(md_text(note, 600))

if upload.image is None and not text:
    st.info("Upload an image, type a description, or load an example: image alone or text "
            "alone also gets a prediction from the models that can give one.")
    st.stop()

# ----------------------------------------------------------------------------- prediction
left, right = st.columns([1, 2])
with left:
    if upload.image is not None:
        shown, width = predict.preview(upload.image)
        st.image(shown, caption=md_text(source), width=width)
    if text:
        st.text(text[:400] + ("…" if len(text) > 400 else ""))

t0 = time.perf_counter()
with st.spinner("Loading the models and predicting ..."):
    preds = data.load_predictors(ds, ver, list(weights))
    pin = predict_pin(preds, modalities, weights, upload.image, text, combine)
elapsed = time.perf_counter() - t0

with right:
    if pin.fused is None:
        st.warning("No model of the fusion could vote on this input (see why below).")
    else:
        top = top_k(pin.fused, classes, 5)
        st.success(f"Fused prediction: **{md_text(top[0][0])}** ({top[0][1]:.2f})")
        for note in prediction_notes(pin.fused, pin.probs, classes):
            st.warning(md_text(note, 600))
        st.plotly_chart(charts.share_bar({"image": pin.image_share, "text": 1 - pin.image_share},
                                         "How much the fusion leaned on image vs text"), key="share",
                        config=widgets.chart_config(f"{ds}-prediction-image-vs-text"))
votes = {m: top_k(p, classes, 3) for m, p in pin.probs.items()}
if pin.fused is not None:
    votes = {"fused": top_k(pin.fused, classes, 5), **votes}
if votes:
    st.plotly_chart(charts.votes_figure(votes, "Each model's top-3 vote and the fused top-5",
                                        {m: out.models[m].family for m in out.models}), key="votes",
                    config=widgets.chart_config(f"{ds}-prediction-votes"))
if pin.weights:
    st.caption("Weights used: " + ", ".join(f"{md_text(m)} {w:.3f}" for m, w in pin.weights.items()))
refused = img_bytes is not None and upload.image is None  # an image came but could not be used
for m, why in pin.skipped.items():
    if refused and modalities.get(m) == "image":
        why = "the image was refused (the reason is above)"
    st.caption(f"{md_text(m)}: no vote, {md_text(why, 600)}")
st.caption(f"Prediction time {elapsed * 1000:.0f} ms (" +
           ", ".join(f"{md_text(m)} {t * 1000:.0f} ms" for m, t in pin.seconds.items()) + ")")
