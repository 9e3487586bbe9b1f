"""Load time of one model's probabilities: schema 1 (a row per pin) against schema 2 (files).

Saves ``--models`` models' probabilities on a split of ``--pins`` rows and ``--classes`` classes
in both layouts (schema 1's ``probs`` table, one row per pin, written as it used to be, into a
DuckDB file; schema 2 through :meth:`Store.save_model`, one float32 file per split), then loads
one model's split from each (both times include opening the database; schema 2 through
``Store(read_only=True)``, as the app does), alternating, ``--repeats`` times, and prints the
medians of wall and CPU seconds (CPU time, all threads, is steadier on a shared machine).
Both are timed in one run, so a loaded machine slows both alike.

    python benchmarks/bench_probs.py [--pins 1000000] [--classes 29] [--models 11] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from pinterest_mm import store_probs
from pinterest_mm.store import Store

LEGACY = "CREATE TABLE probs (dataset VARCHAR, model VARCHAR, split VARCHAR, split_row INTEGER, probs FLOAT[])"


def write_legacy(con: duckdb.DuckDBPyConnection, model: str, arr: np.ndarray) -> None:
    """Write ``arr`` (n, C) as schema 1 did: one row per pin with a FLOAT[] list."""
    n, c = arr.shape
    offsets = pa.array(np.arange(0, (n + 1) * c, c, dtype=np.int32))
    table = pa.table({
        "dataset": pa.array(["d"] * n), "model": pa.array([model] * n), "split": pa.array(["test"] * n),
        "split_row": pa.array(np.arange(n, dtype=np.int32)),
        "probs": pa.ListArray.from_arrays(offsets, pa.array(arr.reshape(-1))),
    })
    con.register("_legacy", table)
    con.execute("INSERT INTO probs SELECT * FROM _legacy")
    con.unregister("_legacy")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pins", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=29)
    parser.add_argument("--models", type=int, default=11)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    arr = np.random.default_rng(0).random((args.pins, args.classes), dtype=np.float32)
    out = {"pins": args.pins, "classes": args.classes, "models": args.models}
    with tempfile.TemporaryDirectory() as tmp:
        legacy_path = str(Path(tmp) / "schema1.duckdb")
        con = duckdb.connect(legacy_path)
        con.execute(LEGACY)
        store = Store(Path(tmp) / "home")
        write = {"schema1": [], "schema2": []}
        for m in range(args.models):
            t0 = time.perf_counter()
            write_legacy(con, f"m{m}", arr)
            write["schema1"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            store.save_model("d", f"m{m}", family="other", modality="text", params={}, cv_score=None,
                             val_accuracy=0.0, test_accuracy=0.0, seconds=0.0, fingerprint="bench",
                             probs={"test": arr})
            write["schema2"].append(time.perf_counter() - t0)
        con.close()
        load = {"schema1": [], "schema2": []}
        cpu = {"schema1": [], "schema2": []}
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            con = duckdb.connect(legacy_path, read_only=True)  # opening counted on both sides
            a = store_probs._read_legacy(con, "d", "m3", "test")
            con.close()
            load["schema1"].append(time.perf_counter() - t0)
            cpu["schema1"].append(time.process_time() - c0)
            t0, c0 = time.perf_counter(), time.process_time()
            b = Store(Path(tmp) / "home", read_only=True).load_probs("d", "m3", "test")
            load["schema2"].append(time.perf_counter() - t0)
            cpu["schema2"].append(time.process_time() - c0)
            assert np.array_equal(a, arr) and np.array_equal(b, arr)
        for k in load:
            out[f"{k}_write_s_median"] = round(statistics.median(write[k]), 3)
            out[f"{k}_load_s_median"] = round(statistics.median(load[k]), 3)
            out[f"{k}_load_cpu_s_median"] = round(statistics.median(cpu[k]), 3)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
