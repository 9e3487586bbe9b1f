"""MiniLM on a CPU: the frozen encoder + logistic regression; fine-tuning records its loss."""

from __future__ import annotations

import numpy as np
import pytest

from pinterest_mm.build import build
from pinterest_mm.models import load_predictor
from pinterest_mm.models.transformer import TransformerConfig


def test_cpu_default_is_the_frozen_encoder_with_the_thesis_logreg(tiny_store):
    assert TransformerConfig().epochs == 0 and TransformerConfig.thesis().epochs == 7
    ck = tiny_store.checkpoints_dir("tiny", "minilm-l6")
    ck.mkdir(parents=True, exist_ok=True)
    (ck / "best_e2.safetensors").write_bytes(b"an earlier fine-tune's weights")
    [res] = build(tiny_store, "tiny", ["minilm-l6"], progress=False, device="cpu")
    assert res["status"] == "built"
    row = tiny_store.models("tiny").set_index("model").loc["minilm-l6"]
    params = row["params"]
    assert params["mode"].startswith("frozen encoder") and params["dim"] == 384
    assert params["C"] in (0.1, 0.01, 0.001, 0.0001) and row["cv_score"] == params["cv_scores"][str(params["C"])]
    counts = tiny_store.dataset_info("tiny")["split_counts"]
    train = tiny_store.load_probs("tiny", "minilm-l6", "train")  # out-of-fold, so it is kept
    assert train.shape == (counts["train"], 6) and np.allclose(train.sum(1), 1, atol=1e-4)
    assert row["val_accuracy"] > 0.5
    assert not list(ck.glob("*.safetensors"))  # no weights copy, and an earlier fine-tune's are gone
    val = tiny_store.pins("tiny", "val").head(8)
    out = load_predictor(tiny_store, "tiny", "minilm-l6").predict_proba(texts=val["description"].tolist())
    np.testing.assert_allclose(out, tiny_store.load_probs("tiny", "minilm-l6", "val")[: len(val)], atol=2e-4)


@pytest.mark.slow
def test_fine_tuning_records_the_train_loss_per_epoch(tiny_store):
    opts = {"minilm-l6": {"epochs": 2, "batch_size": 32, "max_length": 16}}
    build(tiny_store, "tiny", ["minilm-l6"], progress=False, device="cpu", options=opts)
    params = tiny_store.models("tiny").set_index("model").loc["minilm-l6", "params"]
    loss = params["epoch_train_loss"]
    assert len(loss) == len(params["epoch_val_accuracy"]) == 2
    assert all(0 < v < 10 for v in loss) and loss[1] < loss[0]
