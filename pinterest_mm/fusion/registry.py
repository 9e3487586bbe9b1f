"""One registry for every fusion method (like timm's ``@register_model``).

A method is a function ``fit(outputs, config) -> FusionResult`` registered with a typed
dataclass config. Every method chooses its settings on the VALIDATION split only; the test
split is only scored. :func:`fuse` builds the config from keyword arguments, and caches the
result under a hash of (method, full config, dataset version) when given a store.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import metrics
from ..jsonable import to_json
from ..outputs import Outputs


@dataclass
class FusionResult:
    """A fused model: settings chosen on validation, scored on test.

    Attributes:
        method: Registry name.
        config: The full config, JSON-able.
        chosen: Settings chosen on validation (e.g. ``{"l": 1.0, "models": [...]}``).
        val_probs: Fused validation probabilities, shape (n_val, C), float32.
        test_probs: Fused test probabilities, shape (n_test, C), float32.
        val_accuracy: Accuracy on validation.
        test_accuracy: Accuracy on test.
        test_topk: Test top-k accuracy for k = 1..10, length 10.
        weights: Model name to weight, or None when the method has no per-model weights.
        per_pin_weight: Per-pin image weight on test, shape (n_test,), or None (gated only).
        grid: Rows ``{"setting", "val_accuracy", "test_accuracy"}`` of every setting tried.
        key: The cache key (set by :func:`fuse`).
    """

    method: str
    config: dict
    chosen: dict
    val_probs: np.ndarray
    test_probs: np.ndarray
    val_accuracy: float
    test_accuracy: float
    test_topk: list[float]
    weights: dict[str, float] | None = None
    per_pin_weight: np.ndarray | None = None
    grid: list[dict] = field(default_factory=list)
    key: str = ""

    def summary(self) -> dict:
        """Return the small JSON-able part (no arrays)."""
        return {
            "method": self.method,
            "config": self.config,
            "chosen": self.chosen,
            "val_accuracy": self.val_accuracy,
            "test_accuracy": self.test_accuracy,
            "test_topk": list(self.test_topk),
            "weights": self.weights,
            "grid": self.grid,
        }

    def to_json(self) -> dict:
        """Return everything as JSON-able Python objects (arrays as nested lists)."""
        out = self.summary()
        out["val_probs"] = np.asarray(self.val_probs, np.float32).tolist()
        out["test_probs"] = np.asarray(self.test_probs, np.float32).tolist()
        out["per_pin_weight"] = (
            None if self.per_pin_weight is None else np.asarray(self.per_pin_weight).tolist()
        )
        out["key"] = self.key
        return out

    def to_record(self) -> dict:
        """Return :meth:`to_json` with the arrays kept as float32 numpy arrays (for the store's cache)."""
        out = self.summary()
        out["val_probs"] = np.asarray(self.val_probs, np.float32)
        out["test_probs"] = np.asarray(self.test_probs, np.float32)
        out["per_pin_weight"] = None if self.per_pin_weight is None else np.asarray(self.per_pin_weight, np.float32)
        out["key"] = self.key
        return out

    @classmethod
    def from_json(cls, d: dict) -> "FusionResult":
        """Inverse of :meth:`to_json` and :meth:`to_record`."""
        ppw = d.get("per_pin_weight")
        return cls(
            method=d["method"],
            config=d["config"],
            chosen=d["chosen"],
            val_probs=np.asarray(d["val_probs"], np.float32),
            test_probs=np.asarray(d["test_probs"], np.float32),
            val_accuracy=float(d["val_accuracy"]),
            test_accuracy=float(d["test_accuracy"]),
            test_topk=list(d["test_topk"]),
            weights=d.get("weights"),
            per_pin_weight=None if ppw is None else np.asarray(ppw, np.float32),
            grid=d.get("grid", []),
            key=d.get("key", ""),
        )


@dataclass(frozen=True)
class FusionMethod:
    """A registry entry."""

    name: str
    config_cls: type
    fit: Callable[[Outputs, Any], FusionResult]
    description: str
    kind: str  # "late" or "learned"


_REGISTRY: dict[str, FusionMethod] = {}


def register(name: str, config_cls: type, description: str = "", kind: str = "late"):
    """Decorator adding ``fit(outputs, config) -> FusionResult`` to the registry."""

    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"Fusion method {name!r} is already registered.")
        _REGISTRY[name] = FusionMethod(name, config_cls, fn, description or (fn.__doc__ or "").split("\n")[0], kind)
        return fn

    return deco


def list_methods(pattern: str = "*", kind: str | None = None) -> list[str]:
    """Registered method names matching a glob pattern (and kind ``late``/``learned``)."""
    return sorted(
        n for n, m in _REGISTRY.items() if fnmatch.fnmatch(n, pattern) and (kind is None or m.kind == kind)
    )


def get_method(name: str) -> FusionMethod:
    """Return a registry entry; unknown names raise with the list of known ones."""
    if name not in _REGISTRY:
        raise KeyError(f"Unknown fusion method {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def make_config(method: str, **config) -> Any:
    """Build a method's typed config from keyword arguments (unknown keys raise TypeError)."""
    cls = get_method(method).config_cls
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(config) - names
    if unknown:
        raise TypeError(f"{method}: unknown config keys {sorted(unknown)}; known: {sorted(names)}")
    # JSON round-trips lists; dataclass fields declared as tuples get tuples back.
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    return cls(**config)


def config_dict(config: Any) -> dict:
    """A config as a JSON-able dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=to_json))


def cache_key(method: str, config: Any, version: str) -> str:
    """Hash of method + full config + dataset version string."""
    payload = json.dumps(
        {"method": method, "config": config_dict(config), "version": version}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


_CONTROLLER = None


def blas_threads(n: int = 1):
    """Context limiting BLAS (OpenBLAS/MKL) to ``n`` threads.

    On a small, busy machine BLAS threads spin-wait for each other: measured on 2 cores,
    stacking's LR fits took 10-14 s with 2 BLAS threads and 0.3 s with 1.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=n, user_api="blas")


def fuse(
    outputs: Outputs,
    method: str,
    *,
    store=None,
    version: str | None = None,
    threads: int = 1,
    **config,
) -> FusionResult:
    """Fit one fusion method with settings chosen on validation; cache when a store is given.

    Args:
        outputs: The probability cache.
        method: Registry name (see :func:`list_methods`).
        store: Optional :class:`pinterest_mm.store.Store` for ``get_fusion``/``put_fusion``.
        version: Dataset version string for the cache key (default ``store.version``
            when a store is given, else the dataset name).
        threads: BLAS threads while fitting (see :func:`blas_threads`); not part of the key.
        **config: Fields of the method's config dataclass.

    Returns:
        The :class:`FusionResult` (from the cache when present).
    """
    entry = get_method(method)
    cfg = make_config(method, **config)
    if version is None:
        version = store.version(outputs.dataset) if store is not None else outputs.dataset
    key = cache_key(method, cfg, version)
    if store is not None:
        cached = store.get_fusion(outputs.dataset, key)
        if cached is not None:
            return FusionResult.from_json(cached)
    with blas_threads(threads):
        result = entry.fit(outputs, cfg)
    result.key = key
    if store is not None:
        store.put_fusion(outputs.dataset, key, config_dict(cfg), result.to_record())
    return result


def finish(
    outputs: Outputs,
    method: str,
    config: Any,
    chosen: dict,
    val_probs: np.ndarray,
    test_probs: np.ndarray,
    *,
    weights: dict[str, float] | None = None,
    per_pin_weight: np.ndarray | None = None,
    grid: list[dict] | None = None,
) -> FusionResult:
    """Score fused val/test probabilities and pack a :class:`FusionResult` (helper for methods)."""
    val_probs = np.asarray(val_probs, np.float32)
    test_probs = np.asarray(test_probs, np.float32)
    return FusionResult(
        method=method,
        config=config_dict(config),
        chosen=json.loads(json.dumps(chosen, default=to_json)),
        val_probs=val_probs,
        test_probs=test_probs,
        val_accuracy=metrics.accuracy(val_probs, outputs.y["val"]),
        test_accuracy=metrics.accuracy(test_probs, outputs.y["test"]),
        test_topk=[float(v) for v in metrics.topk_curve(test_probs, outputs.y["test"], metrics.KMAX)],
        weights=None if weights is None else {k: float(v) for k, v in weights.items()},
        per_pin_weight=per_pin_weight,
        grid=grid or [],
    )

