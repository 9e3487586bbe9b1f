"""A trained joint space: every pin's image and text vector, every user's vector, and the
encoders that put a new text or image into the same space. Saved without pickles:
``space.safetensors`` (the vectors), ``model.safetensors`` (the chosen weights, the frozen
word vectors included) and ``space.json`` (settings, ids, vocabulary, training history).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

SPACE_FILES = ("space.safetensors", "model.safetensors", "space.json")


def run_inference(fn):
    """Run ``fn()`` on the process's single inference thread with one torch thread (as the
    Predict page does): one query's small forward pass takes ~0.3 ms there, against ~140 ms
    with two torch threads on two busy cores."""
    from ..models.predictor import _INFERENCE, _one_thread

    return _INFERENCE.submit(_one_thread, lambda images, texts: fn(), None, None).result()


def unit(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32."""
    X = np.asarray(X, np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


@dataclass
class JointSpace:
    """A trained space.

    Attributes:
        dataset: The dataset.
        config: The :class:`~pinterest_mm.embed.train.EmbedConfig` as a dict.
        pin_ids: The N pins in row order.
        image, text: (N, D) unit vectors of the pins' images and texts (zeros where missing).
        has_image, has_text: (N,) bool.
        user_ids: The K users with a vector; users: (K, D) unit vectors.
        meta: Fingerprint, vocabulary, history, chosen epoch and validation score.
    """

    dataset: str
    config: dict
    pin_ids: list[str]
    image: np.ndarray
    text: np.ndarray
    has_image: np.ndarray
    has_text: np.ndarray
    user_ids: list[str]
    users: np.ndarray
    meta: dict = field(default_factory=dict)
    model: object = None  # the JointModel (torch), for new queries

    @property
    def dim(self) -> int:
        return int(self.image.shape[1])

    @property
    def text_encoder(self) -> str:
        """``cnn`` (word vectors + CNN) or ``minilm`` (frozen sentence embeddings)."""
        return str(self.config.get("text_encoder", "cnn"))

    def pin_vectors(self) -> np.ndarray:
        """(N, D) one vector per pin: the normalized sum of its image and text vectors."""
        return unit(self.image * self.has_image[:, None] + self.text * self.has_text[:, None])

    # ------------------------------------------------------------------ queries
    @cached_property
    def word_index(self) -> dict[str, int]:
        """Word -> id of the text encoder (1..V; 0 is padding)."""
        return {w: i + 1 for i, w in enumerate(self.meta["vocab"])}

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Raw descriptions -> (n, D) unit vectors (cleaned as at import; a text the encoder
        cannot read -> zeros: no known word for ``cnn``, an empty text for ``minilm``)."""
        import torch

        from ..data.clean import clean_words
        from .data import encode_words

        if self.text_encoder == "minilm":
            from .sentence import query_text, sentence_encoder

            clean = [query_text(t) for t in texts]

            def forward_sentences():
                S = sentence_encoder()(clean)
                with torch.no_grad():
                    out = self.model.embed_texts(torch.as_tensor(S)).numpy()
                out[np.abs(S).sum(1) == 0] = 0.0
                return out

            return run_inference(forward_sentences)
        ids = encode_words([[t.lower() for t in clean_words(x)] for x in texts], self.word_index,
                           int(self.config["max_words"]))
        def forward():
            with torch.no_grad():
                return self.model.embed_texts(torch.as_tensor(ids)).numpy()

        out = run_inference(forward)
        out[(ids == 0).all(1)] = 0.0
        return out

    def embed_image_features(self, feats: np.ndarray) -> np.ndarray:
        """Backbone features (n, D_I) of new images -> (n, D) unit vectors."""
        import torch

        def forward():
            with torch.no_grad():
                return self.model.embed_images(torch.as_tensor(np.asarray(feats, np.float32))).numpy()

        return run_inference(forward)

    # ------------------------------------------------------------------ files
    def save(self, folder: Path, state: dict) -> None:
        """Write the three files (the JSON last: its presence means the set is complete)."""
        from safetensors.numpy import save_file as save_np
        from safetensors.torch import save_file as save_torch

        folder = Path(folder)
        arrays = {"image": self.image, "text": self.text, "users": self.users,
                  "has_image": self.has_image.astype(np.uint8), "has_text": self.has_text.astype(np.uint8)}
        save_np({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(folder / "space.tmp.safetensors"))
        os.replace(folder / "space.tmp.safetensors", folder / "space.safetensors")
        save_torch({k: v.contiguous() for k, v in state.items()}, str(folder / "model.tmp.safetensors"))
        os.replace(folder / "model.tmp.safetensors", folder / "model.safetensors")
        doc = {"dataset": self.dataset, "config": self.config, "pin_ids": self.pin_ids,
               "user_ids": self.user_ids, "meta": self.meta}
        (folder / "space.tmp.json").write_text(json.dumps(doc))
        os.replace(folder / "space.tmp.json", folder / "space.json")

    @classmethod
    def load(cls, folder: Path) -> "JointSpace | None":
        """Load a space saved by :meth:`save` (None when incomplete)."""
        from safetensors.numpy import load_file as load_np
        from safetensors.torch import load_file as load_torch

        from .model import JointModel

        folder = Path(folder)
        if not all((folder / f).exists() for f in SPACE_FILES):
            return None
        doc = json.loads((folder / "space.json").read_text())
        arr = load_np(str(folder / "space.safetensors"))
        state = load_torch(str(folder / "model.safetensors"))
        cfg, meta = doc["config"], doc["meta"]
        minilm = cfg.get("text_encoder", "cnn") == "minilm"
        model = JointModel(
            image_dim=int(meta["image_dim"]),
            word_vectors=None if minilm else state["text_cnn.emb.weight"].numpy(),
            user_init=state["users.weight"].numpy(), dim=int(cfg["dim"]), filters=tuple(cfg["filters"]),
            sentence_stats=(state["text_sent.mean"].numpy(), state["text_sent.std"].numpy()) if minilm else None,
        )
        model.load_state_dict(state)
        model.eval()
        return cls(dataset=doc["dataset"], config=cfg, pin_ids=doc["pin_ids"], image=arr["image"],
                   text=arr["text"], has_image=arr["has_image"].astype(bool), has_text=arr["has_text"].astype(bool),
                   user_ids=doc["user_ids"], users=arr["users"], meta=meta, model=model)
