"""The DU2MCE encoders and its mixture of max-margin ranking losses (seed 001 §3.1, eq. 1-4).

Three encoders map into one D-dimensional space compared by cosine similarity:

- image: frozen pooled backbone features (standardized with train statistics) -> linear;
- text: a sequence of frozen word vectors -> three parallel 1-D convolutions (kernel widths
  2, 3, 4), ReLU, max over time, concatenated -> linear (001 §4.3, after Kim 2014); or a
  frozen MiniLM sentence embedding (standardized with train statistics) -> linear;
- user: an embedding matrix (initialized from the mean word vector of the user's train pins)
  -> linear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

PAIRS = ("text_user", "image_text", "image_user")  # the order of lambda1, lambda2, 1 - l1 - l2


class TextCNN(nn.Module):
    """CNN sentence encoder over frozen word vectors.

    Args:
        vectors: (V + 1, d) word vectors; row 0 is the padding token (zeros).
        filters: Output channels per convolution.
        kernels: Kernel widths of the parallel convolutions.
    """

    def __init__(self, vectors: np.ndarray, filters=(128, 64, 64), kernels=(2, 3, 4)) -> None:
        super().__init__()
        self.emb = nn.Embedding.from_pretrained(torch.as_tensor(np.asarray(vectors, np.float32)),
                                                freeze=True, padding_idx=0)
        d = int(vectors.shape[1])
        # padding k - 1 lets a sentence shorter than a kernel still produce outputs
        self.convs = nn.ModuleList(nn.Conv1d(d, f, k, padding=k - 1) for f, k in zip(filters, kernels))
        self.dim = int(sum(filters))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Word ids (B, L) -> sentence features (B, sum(filters))."""
        x = self.emb(ids).transpose(1, 2)  # (B, d, L)
        return torch.cat([F.relu(conv(x)).amax(dim=2) for conv in self.convs], dim=1)


class SentenceHead(nn.Module):
    """Frozen sentence embeddings, standardized (the text side of the ``minilm`` encoder).

    Args:
        mean, std: (d,) train statistics of the embeddings.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, np.float32)))
        self.register_buffer("std", torch.as_tensor(np.asarray(std, np.float32)))
        self.dim = int(len(mean))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sentence embeddings (B, d) -> standardized (B, d)."""
        return (x - self.mean) / self.std


class JointModel(nn.Module):
    """Image, text and user encoders into one D-dimensional space.

    Args:
        image_dim: Width of the image features.
        word_vectors: (V + 1, d) frozen word vectors of the text encoder (row 0 = padding).
        user_init: (K, d_u) initial user embeddings.
        dim: D, the width of the joint space.
        filters: Channels of the three text convolutions.
        image_mean, image_std: (image_dim,) standardization of the image features.
        sentence_stats: (mean, std) of frozen sentence embeddings (d,) each: the text side is a
            :class:`SentenceHead` (``minilm``) instead of the CNN, and ``word_vectors`` is unused.
    """

    def __init__(self, image_dim: int, word_vectors: np.ndarray | None, user_init: np.ndarray, dim: int = 256,
                 filters=(128, 64, 64), image_mean: np.ndarray | None = None,
                 image_std: np.ndarray | None = None, sentence_stats: tuple | None = None) -> None:
        super().__init__()
        self.image_proj = nn.Linear(image_dim, dim)
        if sentence_stats is not None:
            self.text_sent = SentenceHead(*sentence_stats)
        else:
            self.text_cnn = TextCNN(word_vectors, filters)
        self.text_proj = nn.Linear(self.text_enc.dim, dim)
        self.users = nn.Embedding.from_pretrained(torch.as_tensor(np.asarray(user_init, np.float32)), freeze=False)
        self.user_proj = nn.Linear(int(user_init.shape[1]), dim)
        mean = np.zeros(image_dim, np.float32) if image_mean is None else np.asarray(image_mean, np.float32)
        std = np.ones(image_dim, np.float32) if image_std is None else np.asarray(image_std, np.float32)
        self.register_buffer("image_mean", torch.as_tensor(mean))
        self.register_buffer("image_std", torch.as_tensor(std))

    @property
    def text_enc(self) -> nn.Module:
        """The text side before the projection (the CNN or the sentence head)."""
        return self.text_sent if hasattr(self, "text_sent") else self.text_cnn

    def embed_images(self, feats: torch.Tensor) -> torch.Tensor:
        """Image features (B, image_dim) -> unit vectors (B, D)."""
        return F.normalize(self.image_proj((feats - self.image_mean) / self.image_std), dim=1)

    def embed_texts(self, x: torch.Tensor) -> torch.Tensor:
        """Word ids (B, L) (CNN) or sentence embeddings (B, d) (MiniLM) -> unit vectors (B, D)."""
        return F.normalize(self.text_proj(self.text_enc(x)), dim=1)

    def embed_users(self, idx: torch.Tensor) -> torch.Tensor:
        """User indices (B,) -> unit vectors (B, D)."""
        return F.normalize(self.user_proj(self.users(idx)), dim=1)


def pair_loss(anchor: torch.Tensor, other: torch.Tensor, valid: torch.Tensor, same: torch.Tensor,
              margin: float) -> tuple[torch.Tensor, int]:
    """Summed max-margin ranking loss of one modality pair in a minibatch (001 eq. 4).

    For every post j whose pair is valid: sum over the negatives n (other posts whose ``other``
    modality is present and that are not the same item) of [m - S(a_j, o_j) + S(a_j, o_n)]_+.

    Args:
        anchor: (B, D) unit vectors of the anchor modality (e.g. texts).
        other: (B, D) unit vectors of the other modality (e.g. users).
        valid: (B,) bool: post j has both modalities.
        same: (B, B) bool: o_n is the same item as o_j (same user / same pin), so no negative.
        margin: m.

    Returns:
        (sum of the hinge terms, number of valid pairs N).
    """
    S = anchor @ other.T  # cosine similarities, as rows are unit vectors
    pos = S.diagonal()
    negative = valid[None, :] & ~same
    hinge = (margin - pos[:, None] + S).clamp(min=0) * negative
    return hinge[valid].sum(), int(valid.sum())


@dataclass
class Batch:
    """One minibatch of posts (B of them).

    Attributes:
        image: (B, image_dim) features; text: (B, L) word ids or (B, d) sentence embeddings; user: (B,) user index (-1 none).
        pin: (B,) pin row (same pin = same image and text).
        has_image, has_text: (B,) bool.
    """

    image: torch.Tensor
    text: torch.Tensor
    user: torch.Tensor
    pin: torch.Tensor
    has_image: torch.Tensor
    has_text: torch.Tensor


def mixture_loss(emb: dict[str, torch.Tensor], batch: Batch, lambdas: tuple[float, float, float],
                 margin: float = 0.2) -> tuple[torch.Tensor, dict[str, float]]:
    """The DU2MCE loss (001 eq. 1): sum_k lambda_k / N_k * L_k over the three pairs.

    A pair with lambda 0 or no valid post in the batch is skipped.

    Args:
        emb: ``image``, ``text``, ``user`` unit vectors (B, D) (rows of missing items are ignored).
        batch: The posts.
        lambdas: (lambda1 text-user, lambda2 image-text, lambda3 image-user).
        margin: m.

    Returns:
        (loss, per pair the normalized loss L_k / N_k for logging).
    """
    has_user = batch.user >= 0
    same_pin = batch.pin[:, None] == batch.pin[None, :]
    same_user = (batch.user[:, None] == batch.user[None, :]) | same_pin
    spec = {
        "text_user": ("text", "user", batch.has_text & has_user, same_user),
        "image_text": ("image", "text", batch.has_image & batch.has_text, same_pin),
        "image_user": ("image", "user", batch.has_image & has_user, same_user),
    }
    total = emb["image"].new_zeros(())
    parts: dict[str, float] = {}
    for lam, name in zip(lambdas, PAIRS):
        if lam <= 0:
            continue
        a, o, valid, same = spec[name]
        s, n = pair_loss(emb[a], emb[o], valid, same, margin)
        if n == 0:
            continue
        total = total + lam * s / n
        parts[name] = float(s.detach()) / n
    return total, parts
