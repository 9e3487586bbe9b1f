"""A built faiss index kept on disk next to its space, so that loading the space does not
rebuild it.

Two files per index, from a path stem ``P``: ``P.faiss`` (``faiss.write_index``; the tuned
``nprobe`` / ``efSearch`` is part of it) and ``P.json`` (the fingerprint it was built for, the
file's own BLAKE2b digest, its kind and measured recall). Both are written to a temporary file and renamed; the
JSON is written last and removed first, so its presence means the pair is complete. The
fingerprint is a BLAKE2b hash of the vectors' shape and float32 bytes, of the tuning queries
and of the :class:`~pinterest_mm.embed.index.IndexConfig`: other vectors (a retrained space)
or other settings never reuse a file. A missing pair is built silently; a damaged, incomplete
or stale one is rebuilt after a one-line message.

At 10^6 vectors of D = 256 (IVF, 4,000 lists, a 988 MB file) loading took 7-10 s of wall clock
on the 2 loaded cores (3-5 s of CPU: hashing the vectors 2.9 s, the file 3.0 s,
``faiss.read_index`` 0.5 s) against 208 s (93 s of CPU) to rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Callable

import numpy as np

FORMAT = 1


def fingerprint(X: np.ndarray, Q: np.ndarray, config: dict) -> str:
    """Hex digest of the (N, D) vectors, the (m, D) tuning queries and the settings (a dict)."""
    import faiss

    h = hashlib.blake2b(digest_size=20)
    for A in (X, Q):
        A = np.ascontiguousarray(A, np.float32)
        h.update(repr(A.shape).encode())
        h.update(memoryview(A).cast("B"))
    h.update(json.dumps({"config": config, "faiss": faiss.__version__, "format": FORMAT},
                        sort_keys=True).encode())
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    """BLAKE2b of a file's bytes (damage anywhere in it, not only a short read, changes it)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=20)).hexdigest()


def _paths(stem: Path) -> tuple[Path, Path]:
    return stem.with_name(stem.name + ".faiss"), stem.with_name(stem.name + ".json")


def _tmp(path: Path) -> Path:
    """A temporary name beside ``path``, private to this process and thread."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def load(stem: Path, key: str, shape: tuple[int, int], say: Callable[[str], None]):
    """(the faiss index, its JSON dict) kept at ``stem`` when built for ``key`` from (N, D) =
    ``shape`` vectors; else None (after a one-line message when a file was there but unusable)."""
    import faiss

    idx_path, meta_path = _paths(stem)
    if not idx_path.exists() and not meta_path.exists():
        return None
    why = None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != key:
            why = "was built from other vectors or settings"
        elif _file_digest(idx_path) != meta["digest"]:
            why = "is damaged (its bytes are not those written)"
        else:
            index = faiss.read_index(str(idx_path))
            if (index.ntotal, index.d) != tuple(shape):
                why = f"holds {index.ntotal:,} x {index.d} vectors, not {shape[0]:,} x {shape[1]}"
            else:
                return index, meta
    except FileNotFoundError as exc:
        why = f"is incomplete ({Path(exc.filename or '').name or 'a file'} missing)"
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as exc:
        why = f"could not be read ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})"
    say(f"The search index {idx_path} {why}; rebuilding it.")
    return None


def save(index, stem: Path, key: str, info: dict, say: Callable[[str], None]) -> bool:
    """Write the faiss ``index`` and a JSON of ``key``, the file's digest and ``info`` (its kind,
    recall, ...) at ``stem`` (see the module docstring); False (after a one-line message) when
    the folder cannot be written: the index is then only in memory."""
    import faiss

    idx_path, meta_path = _paths(stem)
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        meta_path.unlink(missing_ok=True)
        tmp = _tmp(idx_path)
        faiss.write_index(index, str(tmp))
        os.replace(tmp, idx_path)
        meta = {**info, "key": key, "digest": _file_digest(idx_path), "format": FORMAT}
        tmp = _tmp(meta_path)
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, meta_path)
        return True
    except (OSError, RuntimeError) as exc:
        say(f"The search index could not be saved to {idx_path} ({type(exc).__name__}: {exc}); "
            "it will be rebuilt next time.")
        return False
