"""Train a joint space (001 §4.3 on cached features): seeded, resumable, chosen on validation.

Only train pins and the saves of train pins are used for training: the posts are the
(train pin, user) saves plus the train pins nobody saved (user missing); the user vectors
start from the mean word vector of their train pins; the image standardization uses train
pins. After every epoch the validation pins are scored (mean median rank of each retrieval
task whose lambda is non-zero, normalized by its number of candidates, summed, as 001
does) and the best epoch's weights are kept. Every epoch writes a checkpoint (safetensors +
JSON: weights, best weights, Adam state, the shuffling generator), so a killed run resumes
where it stopped and ends with the same result.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..models.base import fingerprint_of
from ..store import Store
from .data import TEXT_ENCODERS, EmbedData, load_embed_data
from .model import PAIRS, Batch, JointModel, mixture_loss
from .retrieval import RetrievalScore, retrieve
from .space import JointSpace, unit

EMBED_VERSION = 1  # bump when a change of this code changes results
TASK_OF_PAIR = {"text_user": "text->user", "image_text": "image->text", "image_user": "image->user"}


@dataclass(frozen=True)
class EmbedConfig:
    """Settings of one joint space (defaults: 001 §4.3 scaled to CPU minutes).

    Attributes:
        lambdas: (lambda1 text-user, lambda2 image-text); image-user gets 1 - l1 - l2.
        image_model, word_model: Built models whose cached features / vectors are used.
        text_encoder: ``cnn`` (a CNN over the word model's frozen vectors, 001 §4.3) or
            ``minilm`` (the packaged MiniLM's frozen, mean-pooled sentence embeddings).
        dim: D, the joint space's width (001: 1024).
        filters: Channels of the text CNN's three convolutions (001: 512, 256, 256).
        max_words: Words per text (001: 20).
        margin: m of the ranking loss (001: 0.2).
        batch_size: Posts per minibatch, the pool of negatives (001: 1000; smaller here, as our
            datasets are small: more steps per epoch).
        epochs: Passes over the train posts; lr: Adam's rate, divided by 10 every ``lr_step``
            epochs (001: 5e-4, 10; with 20 epochs of 500 posts the demo still improved at the
            last epoch, hence 30 and 15).
        seed: Of the initialization and the shuffling.
    """

    lambdas: tuple[float, float] = (0.33, 0.33)
    image_model: str = "effnet-lite0"
    word_model: str = "glove-6b-50"
    dim: int = 256
    filters: tuple[int, int, int] = (128, 64, 64)
    max_words: int = 20
    margin: float = 0.2
    batch_size: int = 256
    epochs: int = 30
    lr: float = 5e-4
    lr_step: int = 15
    seed: int = 0
    text_encoder: str = "cnn"

    def __post_init__(self) -> None:
        if self.text_encoder not in TEXT_ENCODERS:
            raise ValueError(f"text_encoder {self.text_encoder!r}: use one of {', '.join(TEXT_ENCODERS)}.")
        l1, l2 = (float(x) for x in self.lambdas)
        if min(l1, l2) < 0 or l1 + l2 > 1 + 1e-9:
            raise ValueError(f"lambdas {self.lambdas}: need l1, l2 >= 0 and l1 + l2 <= 1 "
                             "(the image-user weight is 1 - l1 - l2).")
        object.__setattr__(self, "lambdas", (round(l1, 4), round(l2, 4)))
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))

    @property
    def weights(self) -> tuple[float, float, float]:
        """(lambda1, lambda2, lambda3 = 1 - lambda1 - lambda2)."""
        l1, l2 = self.lambdas
        return l1, l2, round(max(0.0, 1 - l1 - l2), 4)

    @property
    def tag(self) -> str:
        """Folder name of the space: ``embed-<l1>-<l2>`` (plus the models, the text encoder and
        the seed when not the defaults)."""
        l1, l2 = self.lambdas
        tag = f"embed-{l1:g}-{l2:g}"
        if (self.image_model, self.word_model) != ("effnet-lite0", "glove-6b-50"):
            tag += f"-{self.image_model}-{self.word_model}"
        if self.text_encoder != "cnn":
            tag += f"-{self.text_encoder}"
        if self.seed != 0:
            tag += f"-s{self.seed}"
        return tag[:64]

    def fingerprint_dict(self) -> dict:
        """The settings as they enter the fingerprint (the default ``cnn`` left out, so spaces
        trained before the encoder option keep theirs)."""
        d = asdict(self)
        if d["text_encoder"] == "cnn":
            del d["text_encoder"]
        return d


@dataclass
class TrainResult:
    """What :func:`train` returns: the space and how it got there."""

    space: JointSpace
    status: str  # "trained", "resumed" or "cached"
    history: list[dict] = field(default_factory=list)


def _say(msg: str, progress: bool) -> None:
    if progress:
        print(msg, file=sys.stderr, flush=True)


def evaluate(data: EmbedData, vecs: dict[str, np.ndarray], split: str, k: int = 10,
             tasks: tuple[str, ...] = ("image->text", "text->user", "image->user")) -> dict[str, RetrievalScore]:
    """Score retrieval tasks on a split's pins.

    Args:
        data: The dataset.
        vecs: ``image`` and/or ``text`` (N, D) and ``user`` (K, D) vectors (any space: a
            baseline may give word-vector means).
        split: Whose pins are the queries (and, for image->text, the candidates).
        tasks: ``image->text`` (candidates: the split's texts), ``text->user`` and
            ``image->user`` (candidates: all K users; truth: the pin's savers with a vector).

    Returns:
        Task -> score (tasks without queries or vectors are left out).
    """
    rows = data.rows(split)
    out: dict[str, RetrievalScore] = {}
    if "image->text" in tasks and "image" in vecs and "text" in vecs:
        cand = rows[data.has_text[rows]]
        pos = {r: i for i, r in enumerate(cand)}
        q = cand[data.has_image[cand]]
        if len(q):
            out["image->text"] = retrieve("image->text", vecs["image"][q], vecs["text"][cand],
                                          [np.array([pos[r]]) for r in q], k)
    if "user" in vecs and len(vecs["user"]):
        s = data.saves[(data.saves["split"] == split) & (data.saves["user"] >= 0)]
        by_row = s.groupby("row")["user"].apply(lambda x: x.to_numpy())
        for task, mod, has in (("text->user", "text", data.has_text), ("image->user", "image", data.has_image)):
            if task not in tasks or mod not in vecs:
                continue
            q = np.array([r for r in by_row.index if has[r]], np.int64)
            if len(q):
                out[task] = retrieve(task, vecs[mod][q], vecs["user"], [by_row[r] for r in q], k)
    return out


def _validation_score(scores: dict[str, RetrievalScore], weights) -> float:
    """Sum of normalized mean median ranks of the tasks whose lambda is non-zero (lower is better)."""
    used = [TASK_OF_PAIR[p] for p, w in zip(PAIRS, weights) if w > 0]
    vals = [scores[t].normalized_rank for t in used if t in scores]
    return float(sum(vals)) if vals else float("inf")


def _make_model(data: EmbedData, cfg: EmbedConfig) -> JointModel:
    import torch

    torch.manual_seed(cfg.seed)
    train_rows = data.rows("train")
    X = data.image[train_rows]
    mean, std = X.mean(0), X.std(0) + 1e-6
    text_src = data.text_means_source()
    if data.has_users:
        user_init = data.user_means(text_src, "train")
    else:  # no users: a placeholder row the loss never reaches
        user_init = np.zeros((1, text_src.shape[1]), np.float32)
    sent = None
    if cfg.text_encoder == "minilm":
        if data.sentences is None:
            raise ValueError("The minilm text encoder needs the data loaded with text_encoder='minilm'.")
        S = data.sentences[train_rows[data.has_text[train_rows]]]
        sent = (S.mean(0), S.std(0) + 1e-6)
    return JointModel(data.image.shape[1], data.vectors, user_init, dim=cfg.dim, filters=cfg.filters,
                      image_mean=mean, image_std=std, sentence_stats=sent)


def _embed_all(model: JointModel, data: EmbedData, chunk: int = 4096) -> dict[str, np.ndarray]:
    import torch

    model.eval()
    img, txt = [], []
    with torch.no_grad():
        for a in range(0, len(data.pins), chunk):
            img.append(model.embed_images(torch.as_tensor(data.image[a:a + chunk])).numpy())
            txt.append(model.embed_texts(torch.as_tensor(data.text_input[a:a + chunk])).numpy())
        users = (model.embed_users(torch.arange(len(data.users))).numpy() if data.has_users
                 else np.zeros((0, model.image_proj.out_features), np.float32))
    image, text = np.concatenate(img), np.concatenate(txt)
    image[~data.has_image] = 0.0
    text[~data.has_text] = 0.0
    return {"image": image, "text": text, "user": users}


# ----------------------------------------------------------------------------- checkpoints
def _save_checkpoint(folder: Path, model, best_state, opt, gen, doc: dict) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v.clone().contiguous() for k, v in best_state.items()})
    opt_state = opt.state_dict()
    for i, st in opt_state["state"].items():
        for name, v in st.items():
            tensors[f"opt.{i}.{name}"] = v.detach().clone().contiguous()
    tensors["gen"] = gen.get_state().clone()
    save_file(tensors, str(folder / "train_state.tmp.safetensors"))
    os.replace(folder / "train_state.tmp.safetensors", folder / "train_state.safetensors")
    doc = {**doc, "param_groups": opt_state["param_groups"], "opt_keys": sorted(opt_state["state"])}
    (folder / "train_state.tmp.json").write_text(json.dumps(doc))
    os.replace(folder / "train_state.tmp.json", folder / "train_state.json")


def _load_checkpoint(folder: Path, fingerprint: str, model, opt, gen):
    """Restore an interrupted run; return (doc, best_state) or None when there is none to resume."""
    from safetensors.torch import load_file

    side = folder / "train_state.json"
    if not (side.exists() and (folder / "train_state.safetensors").exists()):
        return None
    doc = json.loads(side.read_text())
    if doc.get("fingerprint") != fingerprint:
        return None
    t = load_file(str(folder / "train_state.safetensors"))
    model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
    best = {k[5:]: v for k, v in t.items() if k.startswith("best.")}
    state: dict = {}
    for key, v in t.items():
        if key.startswith("opt."):
            _, i, name = key.split(".", 2)
            state.setdefault(int(i), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": doc["param_groups"]})
    gen.set_state(t["gen"])
    return doc, best


# ----------------------------------------------------------------------------- training
def _batch(data: EmbedData, rows: np.ndarray, users: np.ndarray):
    import torch

    return Batch(
        image=torch.as_tensor(data.image[rows]), text=torch.as_tensor(data.text_input[rows]),
        user=torch.as_tensor(users), pin=torch.as_tensor(rows),
        has_image=torch.as_tensor(data.has_image[rows]), has_text=torch.as_tensor(data.has_text[rows]),
    )


def train(store: Store, dataset: str, cfg: EmbedConfig = EmbedConfig(), *, data: EmbedData | None = None,
          progress: bool = False, force: bool = False, stop_after: int | None = None) -> TrainResult:
    """Train (or load, or resume) the joint space of ``cfg`` on a dataset.

    Args:
        store: The store (the space goes to ``checkpoints/<dataset>/<cfg.tag>/``).
        dataset: The dataset.
        cfg: The settings.
        data: Preloaded inputs (default: read with ``cfg``'s models).
        progress: Print one line per epoch (stderr).
        force: Retrain even when a finished space with the same fingerprint exists.
        stop_after: Stop after this many epochs in this call (leaves a checkpoint to resume;
            for tests of resumption).

    Returns:
        The :class:`TrainResult` (its ``space`` is None when stopped early).
    """
    import torch

    # One torch thread: these small matrices gain nothing from more, and on busy shared cores
    # two threads made an epoch 8 times slower (synthetic 2,000 pins: 10.1 s vs 1.2 s for 2 epochs).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(store, dataset, cfg, data=data, progress=progress, force=force, stop_after=stop_after)
    finally:
        torch.set_num_threads(threads)


def _train(store: Store, dataset: str, cfg: EmbedConfig, *, data: EmbedData | None, progress: bool,
           force: bool, stop_after: int | None) -> TrainResult:
    import torch

    data = data if data is not None else load_embed_data(store, dataset, cfg.image_model, cfg.word_model,
                                                         cfg.max_words, cfg.text_encoder, progress)
    if data.text_encoder != cfg.text_encoder:
        raise ValueError(f"The data was loaded for the {data.text_encoder!r} text encoder, the settings "
                         f"ask for {cfg.text_encoder!r}.")
    folder = store.checkpoints_dir(dataset, cfg.tag)
    fp = fingerprint_of({"config": cfg.fingerprint_dict(), "data": data.fingerprint, "v": EMBED_VERSION})
    if not force:
        done = JointSpace.load(folder)
        if done is not None and done.meta.get("fingerprint") == fp:
            return TrainResult(done, "cached", done.meta.get("history", []))
    model = _make_model(data, cfg)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    weights = cfg.weights
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    doc = {"fingerprint": fp, "epoch": 0, "best_epoch": 0, "best_score": float("inf"), "history": []}
    status = "trained"
    resumed = None if force else _load_checkpoint(folder, fp, model, opt, gen)
    if resumed is not None:
        doc, best_state = resumed
        doc = {k: doc[k] for k in ("fingerprint", "epoch", "best_epoch", "best_score", "history")}
        status = "resumed"
        _say(f"{cfg.tag}: resuming after epoch {doc['epoch']}", progress)
    rows, users = data.posts("train")
    n_run = 0
    while doc["epoch"] < cfg.epochs:
        if stop_after is not None and n_run >= stop_after:
            return TrainResult(None, "stopped", doc["history"])
        epoch = doc["epoch"]
        for g in opt.param_groups:
            g["lr"] = cfg.lr * (0.1 ** (epoch // cfg.lr_step))
        model.train()
        perm = torch.randperm(len(rows), generator=gen).numpy()
        losses = []
        for a in range(0, len(perm), cfg.batch_size):
            idx = perm[a:a + cfg.batch_size]
            b = _batch(data, rows[idx], users[idx])
            emb = {"image": model.embed_images(b.image), "text": model.embed_texts(b.text),
                   "user": model.embed_users(b.user.clamp(min=0))}
            loss, _ = mixture_loss(emb, b, weights, cfg.margin)
            if loss.requires_grad:
                opt.zero_grad()
                loss.backward()
                opt.step()
            losses.append(float(loss.detach()))
        vecs = _embed_all(model, data)
        val = evaluate(data, vecs, "val")
        score = _validation_score(val, weights)
        doc["epoch"] = epoch + 1
        doc["history"].append({"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else 0.0,
                               "val_score": score,
                               **{f"val_{t}": s.mean_median_rank for t, s in val.items()}})
        if score < doc["best_score"] or doc["best_epoch"] == 0:
            doc["best_score"], doc["best_epoch"] = score, epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        _save_checkpoint(folder, model, best_state, opt, gen, doc)
        n_run += 1
        _say(f"{cfg.tag}: epoch {epoch + 1}/{cfg.epochs} loss {doc['history'][-1]['loss']:.4f} "
             f"val score {score:.4f}", progress)
    model.load_state_dict(best_state)
    vecs = _embed_all(model, data)
    meta = {"fingerprint": fp, "vocab": data.vocab, "image_dim": int(data.image.shape[1]),
            "history": doc["history"], "best_epoch": doc["best_epoch"], "val_score": doc["best_score"],
            "weights": list(weights)}
    space = JointSpace(dataset=dataset, config=asdict(cfg), pin_ids=data.pins["pin_id"].astype(str).tolist(),
                       image=vecs["image"], text=vecs["text"], has_image=data.has_image.copy(),
                       has_text=data.has_text.copy(), user_ids=list(data.users), users=vecs["user"],
                       meta=meta, model=model)
    space.save(folder, {k: v.contiguous() for k, v in best_state.items()})
    model.eval()
    return TrainResult(space, status, doc["history"])


def space_vectors(space: JointSpace) -> dict[str, np.ndarray]:
    """The space's vectors under the names :func:`evaluate` takes."""
    return {"image": space.image, "text": space.text, "user": space.users}


def baseline_vectors(data: EmbedData) -> dict[str, dict[str, np.ndarray]]:
    """The averaging baselines of 001 Table 4: users as the mean of their train pins' features.

    Returns:
        ``avg-text``: pins' mean word vectors and users' means of them (for text->user);
        ``avg-image``: pins' standardized image features and users' means (for image->user).
    """
    W = data.mean_word_vectors()
    tr = data.rows("train")
    X = (data.image - data.image[tr].mean(0)) / (data.image[tr].std(0) + 1e-6)
    return {"avg-text": {"text": unit(W), "user": unit(data.user_means(W))},
            "avg-image": {"image": unit(X), "user": unit(data.user_means(X))}}
