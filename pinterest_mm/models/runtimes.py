"""Inference runtimes of the feature backbones: torch (the reference), ONNX Runtime, OpenVINO.

A backbone is exported once from its torch weights to an ONNX graph (``torch.onnx.export``,
TorchScript exporter, opset :data:`OPSET`) and kept in the store's checkpoint folder of the
model with a JSON sidecar (what it was exported from and the file's SHA-256). Later builds and
the Predict page reuse it; a graph that is missing, damaged or exported from other weights is
exported again, with a message. The write is atomic: the graph goes to a temporary file, is
loaded by the runtime and checked against torch on one batch, and only then renamed into
place, so a half-written graph is never loaded.

The runtimes all expose the same callable: ``forward(batch)`` with ``batch`` of shape
(N, 3, H, W) float32 (pixel values as the graph expects them) returning (N, D) float32.

Choosing: ``backend`` argument, else ``$PINTEREST_MM_BACKEND``, else :func:`default_backend`
(ONNX Runtime on CPU when installed; torch on a CUDA GPU). Precision is ``fp32`` everywhere
unless asked: ``bf16`` exists for OpenVINO only (its default on CPUs with bf16 units, turned
off here as the features move). ONNX Runtime and OpenVINO are imported only when used.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

BACKENDS = ("torch", "onnxruntime", "openvino")
PRECISIONS = {"torch": ("fp32",), "onnxruntime": ("fp32",), "openvino": ("fp32", "bf16")}
OPSET = 17
EXPORT_VERSION = 1  # bump when the exported graph changes for the same weights
ENV_BACKEND = "PINTEREST_MM_BACKEND"
ENV_THREADS = "PINTEREST_MM_THREADS"
ENV_WORKERS = "PINTEREST_MM_DECODE_WORKERS"
# fp32 runtimes must agree with torch eager this closely on the same inputs (max abs).
FP32_TOLERANCE = 1e-4
_MODULES = {"torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino", "onnx": "onnx"}
_INSTALL = {"onnxruntime": "pip install onnxruntime onnx", "openvino": "pip install 'pinterest-mm[openvino]'"}

Forward = Callable[[np.ndarray], np.ndarray]


class RuntimeUnavailable(ValueError):
    """A backend or precision was asked for that does not exist or is not installed."""


class GraphError(RuntimeError):
    """An exported graph could not be written or does not reproduce torch's features."""


@dataclass(frozen=True)
class RuntimeSettings:
    """How feature extraction runs (user overrides; None picks the measured default).

    Attributes:
        backend: ``torch``, ``onnxruntime`` or ``openvino`` (None: ``$PINTEREST_MM_BACKEND``
            or :func:`default_backend`). Part of the feature fingerprint.
        precision: ``fp32`` (default) or ``bf16`` (OpenVINO). Part of the feature fingerprint.
        threads: Intra-op threads of the network (None: ``$PINTEREST_MM_THREADS`` or
            :func:`default_threads`). Does not change the features.
        workers: Image-decoding threads (None: ``$PINTEREST_MM_DECODE_WORKERS`` or
            :func:`default_workers`). Does not change the features.
    """

    backend: str | None = None
    precision: str = "fp32"
    threads: int | None = None
    workers: int | None = None

    def model_options(self) -> dict:
        """The image-model constructor options these settings give (only those set)."""
        out = {"runtime": self.backend, "precision": self.precision,
               "threads": self.threads, "workers": self.workers}
        return {k: v for k, v in out.items() if v is not None and not (k == "precision" and v == "fp32")}


def installed(backend: str) -> bool:
    """Return True when the package of ``backend`` can be imported."""
    return importlib.util.find_spec(_MODULES[backend]) is not None


def default_backend(device: str | None = None) -> str:
    """The measured default: ONNX Runtime on CPU when installed, torch on a GPU or otherwise.

    On 2 loaded cores ONNX Runtime ran Lite0 about 5x faster than torch eager with the same
    features (max abs diff ~1e-5); see the README's benchmark section.
    """
    if device and str(device).startswith("cuda"):
        return "torch"
    return "onnxruntime" if installed("onnxruntime") and installed("onnx") else "torch"


def resolve_backend(backend: str | None = None, device: str | None = None, precision: str = "fp32") -> str:
    """Return the backend to use: ``backend``, else ``$PINTEREST_MM_BACKEND``, else the default.

    Raises:
        RuntimeUnavailable: Unknown name, package not installed, or a precision that backend
            does not offer.
    """
    name = (backend or os.environ.get(ENV_BACKEND) or "").strip().lower() or default_backend(device)
    if name not in BACKENDS:
        raise RuntimeUnavailable(
            f"Unknown inference backend {name!r}; choose one of {', '.join(BACKENDS)} "
            f"(--backend or {ENV_BACKEND}).")
    if not installed(name) or (name == "onnxruntime" and not installed("onnx")):
        raise RuntimeUnavailable(
            f"The inference backend {name!r} is not installed here: `{_INSTALL[name]}`, or choose "
            f"another with --backend / {ENV_BACKEND} ({', '.join(b for b in BACKENDS if installed(b))}).")
    if precision not in PRECISIONS[name]:
        raise RuntimeUnavailable(
            f"Precision {precision!r} is not offered by {name}; it offers {', '.join(PRECISIONS[name])}.")
    return name


def env_int(var: str) -> int | None:
    """A positive whole number from the environment variable ``var``, or None when unset."""
    raw = os.environ.get(var, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise RuntimeUnavailable(f"{var} must be a whole number of threads, not {raw!r}.") from None
    if value < 1:
        raise RuntimeUnavailable(f"{var} must be at least 1, not {value}.")
    return value


def default_threads(backend: str, cores: int) -> int:
    """Intra-op threads of a backend on ``cores`` usable cores (``$PINTEREST_MM_THREADS`` wins).

    One per core: on 2 loaded cores, ONNX Runtime end to end (with 2 decoding threads) ran
    12.3 images/s with 2 threads vs 11.0 with 1 (medians of 5, side by side, load ~11); torch
    is set the same way (its one-thread edge is for single-image predictions, see
    :mod:`.predictor`).
    """
    return env_int(ENV_THREADS) or max(1, cores)


def default_workers(cores: int) -> int:
    """Decoding threads (``$PINTEREST_MM_DECODE_WORKERS`` wins): one per core, at most 4.

    Measured with ONNX Runtime on 2 loaded cores: 2 decoding threads 12.3 images/s end to end,
    1 thread 11.0 (the threads mostly wait on I/O and PIL's C code, which releases the GIL).
    """
    return env_int(ENV_WORKERS) or min(4, max(1, cores))


# ---------------------------------------------------------------------- runtimes
def _onnxruntime_forward(path: Path, threads: int, precision: str) -> Forward:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # No busy-waiting between runs: on a shared machine the spinning threads took the cores the
    # decoding threads needed (end to end ~20% faster without, measured side by side).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(str(path), opts, providers=providers)
    name = session.get_inputs()[0].name

    def forward(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    return forward


def _openvino_forward(path: Path, threads: int, precision: str) -> Forward:
    import openvino as ov

    core = ov.Core()
    hint = {"fp32": "f32", "bf16": "bf16"}[precision]
    compiled = core.compile_model(str(path), "CPU", {
        "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": int(threads),
        "PERFORMANCE_HINT": "LATENCY",
    })
    request = compiled.create_infer_request()

    def forward(batch: np.ndarray) -> np.ndarray:
        out = request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.array(out[compiled.output(0)], dtype=np.float32, copy=True)

    return forward


def load_forward(backend: str, path: Path, *, threads: int = 1, precision: str = "fp32") -> Forward:
    """Load an exported graph into ``backend`` and return its ``forward`` callable.

    Args:
        backend: ``onnxruntime`` or ``openvino``.
        path: The ``.onnx`` file.
        threads: Intra-op threads.
        precision: ``fp32`` or (OpenVINO) ``bf16``.
    """
    if backend == "onnxruntime":
        return _onnxruntime_forward(Path(path), threads, precision)
    if backend == "openvino":
        return _openvino_forward(Path(path), threads, precision)
    raise RuntimeUnavailable(f"{backend!r} does not load exported graphs")


# ---------------------------------------------------------------------- export, atomically
def file_sha256(path: Path) -> str:
    """SHA-256 of a file (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def graph_meta_path(path: Path) -> Path:
    """The JSON sidecar of an exported graph."""
    return Path(path).with_suffix(".json")


def _stored_graph_problem(path: Path, identity: dict) -> str | None:
    """Why the graph at ``path`` cannot be reused for ``identity`` (None: it can)."""
    meta_path = graph_meta_path(path)
    if not path.exists():
        return None if not meta_path.exists() else "its file is missing"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return "its description is missing or damaged"
    if meta.get("identity") != identity:
        return "it was exported from other weights or settings"
    if meta.get("sha256") != file_sha256(path):
        return "the file is damaged (its checksum differs)"
    return None


def export_onnx(module, example, path: Path) -> None:
    """Export a torch module ``(N, 3, H, W) float32 -> (N, D)`` to ONNX at ``path``.

    TorchScript-based exporter (``dynamo=False``): needs no onnxscript, and the same weights
    give the same bytes. The batch axis is dynamic.
    """
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
        with torch.inference_mode(False), torch.no_grad():
            torch.onnx.export(
                module, (example,), str(path), dynamo=False, opset_version=OPSET,
                input_names=["pixels"], output_names=["features"],
                dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
                do_constant_folding=True,
            )


# Graphs exported and checked by this process: (identity, backend) -> (path, sha256). A store
# that lacks one gets a byte copy instead of a new export (tests, several datasets in one build).
_CHECKED: dict[str, tuple[Path, str]] = {}


def _checked_key(identity: dict, backend: str) -> str:
    return json.dumps([identity, backend], sort_keys=True, default=str)


def ensure_graph(path: Path, identity: dict | None, make_module: Callable[[], object], example: np.ndarray,
                 reference: Forward, *, backend: str, threads: int = 1, precision: str = "fp32",
                 say: Callable[[str], None] | None = None) -> Forward:
    """Return ``backend``'s forward of the graph at ``path``, exporting it first when needed.

    A stored graph is reused when its sidecar names the same ``identity`` and its checksum
    matches. Otherwise (missing, damaged, other weights) the torch module is exported to a
    temporary file, loaded by ``backend``, checked against ``reference`` (torch) on
    ``example``, and renamed into place; the sidecar is written last. A graph this process
    already exported and checked for the same identity is copied instead of exported again.

    Args:
        path: Where the graph lives (``.onnx``).
        identity: What the graph is exported from (model, weights, image size, versions);
            None for weights that exist only in this process (random init): always exported.
        make_module: Builds the torch module to export (only called when exporting).
        example: (N, 3, H, W) float32 batch for the check.
        reference: torch's forward, the reference for the check.
        backend, threads, precision: The runtime to load into.
        say: Receives the one-line messages (default: stderr).

    Raises:
        GraphError: The exported graph does not reproduce torch's features (fp32 max abs
            difference over :data:`FP32_TOLERANCE`).
    """
    say = say or (lambda msg: print(msg, file=sys.stderr))
    path = Path(path)
    name = (identity or {}).get("model", path.stem)
    problem = None if identity is None else _stored_graph_problem(path, identity)
    if identity is not None and path.exists() and problem is None:
        try:
            return load_forward(backend, path, threads=threads, precision=precision)
        except Exception as exc:  # noqa: BLE001 - a file the runtime rejects is exported again
            problem = f"{backend} could not load it ({type(exc).__name__})"
    if problem:
        say(f"{name}: the exported graph {path.name} is rebuilt: {problem}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    meta_path = graph_meta_path(path)
    key = _checked_key(identity, backend) if identity is not None else None
    try:
        import shutil

        import torch

        known = _CHECKED.get(key) if key else None
        copied = bool(known and known[0].exists() and known[0] != path and file_sha256(known[0]) == known[1])
        if copied:
            shutil.copyfile(known[0], tmp)  # the same bytes this process checked against torch
        else:
            export_onnx(make_module(), torch.from_numpy(np.ascontiguousarray(example[:1])), tmp)
        forward = load_forward(backend, tmp, threads=threads, precision=precision)
        out = forward(example)
        diff = None if copied else float(np.abs(out - reference(example)).max())
        if not np.isfinite(out).all() or (precision == "fp32" and diff is not None and not diff <= FP32_TOLERANCE):
            raise GraphError(f"the {backend} graph of {name} differs from torch by "
                             f"{diff if diff is not None else float('nan'):.2e} (max abs) on a check "
                             "batch; use --backend torch")
        sha = file_sha256(tmp)
        meta = {"identity": identity, "sha256": sha, "check_max_abs_diff": diff, "checked_with": backend}
        meta_path.unlink(missing_ok=True)  # no sidecar names a graph that is being replaced
        os.replace(tmp, path)
        meta_tmp = meta_path.with_name(meta_path.name + ".tmp")
        meta_tmp.write_text(json.dumps(meta, sort_keys=True, indent=1))
        os.replace(meta_tmp, meta_path)
        if key:
            _CHECKED[key] = (path, sha)
    finally:
        tmp.unlink(missing_ok=True)
    return forward  # the runtime holds the graph in memory: the rename does not affect it
