"""Parquet shards of a feature array: names, row ranges, atomic writes, and the assembly into
the ``.npy`` a local build writes.

A shard holds the pins of rows ``lo`` to ``hi`` (exclusive) of one model's features, in
``features/<dataset>/<model>.shards/rows_<lo>_<hi>.parquet`` with columns ``row`` (int64),
``pin_id``, ``ok`` (the image decoded; for a text model, the text is not empty), ``features``
(fixed-size list of ``d`` float32) and the Ray node ids ``decode_node`` (the node that prepared
the inputs: decoded the images; for a text model the encoder's own node) and ``extract_node``. The shards are the local build's chunks, so
their rows are cut into the local build's batches (:func:`local_batches`). Nothing here imports
Ray.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..models.base import disk_error

def shard_dir(features_path: Path) -> Path:
    """The folder of a feature array's Parquet shards."""
    return Path(features_path).with_suffix(".shards")


def shard_file(folder: Path, lo: int, hi: int) -> Path:
    """The shard of rows ``lo`` to ``hi`` (exclusive)."""
    return Path(folder) / f"rows_{lo:09d}_{hi:09d}.parquet"


def shard_ranges(n: int, shard_rows: int) -> list[tuple[int, int]]:
    """Row ranges of the shards: the local build's chunks."""
    return [(lo, min(n, lo + shard_rows)) for lo in range(0, n, shard_rows)]


def local_batches(lo: int, hi: int, batch_size: int) -> list[tuple[int, int]]:
    """The local build's batches inside one chunk (they restart at the chunk's first row)."""
    return [(s, min(hi, s + batch_size)) for s in range(lo, hi, batch_size)]


def prepare_folder(folder: Path, meta: dict) -> None:
    """Keep ``folder``'s shards only if they were made with ``meta``'s settings."""
    meta_file = folder / "meta.json"
    if folder.exists():
        try:
            same = json.loads(meta_file.read_text()) == meta
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    if not meta_file.exists():
        tmp = folder / "meta.json.tmp"
        tmp.write_text(json.dumps(meta, sort_keys=True))
        os.replace(tmp, meta_file)


def write_shard(path: Path, rows: np.ndarray, pin_ids: list[str], ok: np.ndarray, features: np.ndarray,
                decode_node: list[str], extract_node: list[str]) -> None:
    """Write one shard atomically: rows (m,), ok (m,), features (m, d) float32."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    feats = np.ascontiguousarray(features, dtype=np.float32)
    table = pa.table({
        "row": pa.array(rows, pa.int64()),
        "pin_id": pa.array([str(p) for p in pin_ids], pa.string()),
        "ok": pa.array(ok, pa.bool_()),
        "features": pa.FixedSizeListArray.from_arrays(pa.array(feats.reshape(-1)), feats.shape[1]),
        "decode_node": pa.array(decode_node, pa.string()),
        "extract_node": pa.array(extract_node, pa.string()),
    })
    tmp = path.with_name(path.name + ".tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise disk_error(exc, path) from exc


def read_shard(path: Path) -> dict:
    """Read a shard back: ``row`` (m,), ``pin_id`` list, ``ok`` (m,), ``features`` (m, d) float32,
    ``decode_node`` and ``extract_node`` lists."""
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    col = t.column("features").combine_chunks()
    d = col.type.list_size
    return {"row": t.column("row").to_numpy(), "pin_id": t.column("pin_id").to_pylist(),
            "ok": t.column("ok").to_numpy(zero_copy_only=False),
            "features": col.flatten().to_numpy().astype(np.float32, copy=False).reshape(-1, d),
            "decode_node": t.column("decode_node").to_pylist(),
            "extract_node": t.column("extract_node").to_pylist()}


def assemble(folder: Path, ranges: list[tuple[int, int]], pin_ids: list[str], out_path: Path) -> list[int]:
    """Copy every shard, in row order, into ``out_path`` (.npy, atomically); return the rows
    whose ``ok`` is False (images that did not decode, empty texts), ascending."""
    n = len(pin_ids)
    tmp_out = out_path.with_suffix(".npy.tmp")
    bad_rows: list[int] = []
    try:
        out = None
        for lo, hi in ranges:
            shard = read_shard(shard_file(folder, lo, hi))
            if not np.array_equal(shard["row"], np.arange(lo, hi)) or shard["pin_id"] != pin_ids[lo:hi]:
                raise RuntimeError(f"Shard {shard_file(folder, lo, hi).name} does not hold the pins of "
                                   f"rows {lo}-{hi}; delete {folder} and build again.")
            if out is None:
                out = np.lib.format.open_memmap(tmp_out, mode="w+", dtype=np.float32,
                                                shape=(n, shard["features"].shape[1]))
            out[lo:hi] = shard["features"]
            bad_rows.extend(int(r) for r in shard["row"][~shard["ok"]])
        if out is None:
            out = np.lib.format.open_memmap(tmp_out, mode="w+", dtype=np.float32, shape=(0, 0))
        out.flush()
        del out
        tmp_out.replace(out_path)
    except OSError as exc:
        tmp_out.unlink(missing_ok=True)
        raise disk_error(exc, out_path) from exc
    return bad_rows
