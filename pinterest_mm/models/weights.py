"""Where a model's pretrained weights come from: local files, the hub cache, download permission.

Shared by the registry and the model implementations (image, text, transformer), so neither
imports the other for it. Nothing here touches the network.

``PINTEREST_MM_WEIGHTS_<NAME>`` (name upper-cased, ``-`` and ``.`` as ``_``) points a model at a
local weights file or folder; ``PINTEREST_MM_DOWNLOAD=1`` lets the loaders fetch from a hub.
"""

from __future__ import annotations

import os
from pathlib import Path


class WeightsUnavailable(RuntimeError):
    """A model's pretrained weights are not on this machine; the message says how to get them."""


def download_allowed() -> bool:
    """Return True when ``PINTEREST_MM_DOWNLOAD=1`` lets loaders reach a model hub."""
    return os.environ.get("PINTEREST_MM_DOWNLOAD", "") in {"1", "true", "yes"}


def weights_env_var(name: str) -> str:
    """Return the environment variable that points a model at local weights."""
    return "PINTEREST_MM_WEIGHTS_" + name.upper().replace("-", "_").replace(".", "_")


def local_weights(name: str, options: dict | None = None) -> Path | None:
    """Return a user-given local weights path (``weights_path`` option or env var), or None."""
    raw = (options or {}).get("weights_path") or os.environ.get(weights_env_var(name))
    return Path(raw).expanduser() if raw else None


def weights_identity(path: Path) -> str:
    """A short identity of a local weights file or folder, for the build fingerprints.

    Other weights give other features, so a cache built with one file must not be reused with
    another; the path itself is not used (the same weights may sit elsewhere on another
    machine). Hashes every file's relative name and size, and the first and last MiB of its
    bytes: cheap for multi-GB checkpoints, and any re-saved or fine-tuned file differs there.

    Returns:
        16 hex digits, or ``missing`` when nothing is at ``path`` (the build then says why).
    """
    import hashlib

    path = Path(path)
    if not path.exists():
        return "missing"
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h = hashlib.sha256()
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.relative_to(path) if path.is_dir() else ''}\0{size}\0".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def hub_hint(name: str, how: str) -> str:
    """Return the standard 'how to get the weights' text for :class:`WeightsUnavailable`."""
    return (
        f"Model {name!r} needs pretrained weights that are not on this machine. It needs the "
        f"hub: run once with internet `pinterest-mm weights download --models {name}` (or "
        f"`{how}`, or set PINTEREST_MM_DOWNLOAD=1 and build with internet); without internet "
        "bring them with `pinterest-mm weights pack DIR` on a machine that has them and "
        "`pinterest-mm weights unpack DIR` here; or pass a local weights file/folder with "
        f"{weights_env_var(name)}=path (or a `weights_path` option). The offline default "
        "models need no download."
    )
