"""The Ray engine's GPU branch on a cluster that advertises a GPU (``ray.init(num_gpus=1)``):
the backbone actor pool asks for one GPU per actor and the actor gets it. Without CUDA (the
development machine) the actor runs on the CPU and gives the local build's features bit for bit;
with CUDA it runs on the GPU, within float error of the local CPU build. Runs in a child
process: a driver is connected to one cluster only, and the session's ``ray_cluster`` has no GPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CONFIG
from pinterest_mm.build import build
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.store import Store

pytest.importorskip("ray.data")
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
MODEL = "effnet-lite0"
# torch: the actor's CUDA-or-CPU choice is the branch under test; one thread in both builds
OPTIONS = {MODEL: {"image_size": 128, "chunk_rows": 48, "batch_size": 8, "runtime": "torch", "threads": 1}}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_gpu_cluster_gives_each_actor_a_gpu_and_the_local_features(tmp_path, tiny_manifest):
    local = Store(tmp_path / "local")
    import_manifest(local, tiny_manifest, "tiny", TINY_CONFIG, progress=False)
    build(local, "tiny", [MODEL], progress=False, options=OPTIONS)
    on_ray = Store(tmp_path / "ray")
    import_manifest(on_ray, tiny_manifest, "tiny", TINY_CONFIG, progress=False)
    tmp = Path(tempfile.mkdtemp(prefix="pmmgpu-"))  # short: Ray's socket paths are limited
    script = (
        "import json, ray; from pinterest_mm.build import build; from pinterest_mm.store import Store; "
        f"ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, _temp_dir={str(tmp / 'ray')!r}); "
        f"r = build(Store({str(on_ray.root)!r}), 'tiny', [{MODEL!r}], progress=False, options={OPTIONS!r}, "
        "engine='ray'); print('RESULT', json.dumps(r[0])); ray.shutdown()"
    )
    env = {**os.environ, "RAY_TMPDIR": str(tmp),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("RAY_ADDRESS", None)
    try:
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.split("RESULT ", 1)[1].splitlines()[0])
    assert result["status"] == "built", result
    info = result["engine"]
    assert info["gpus_per_actor"] == 1  # the pool asked for num_gpus=1 per actor
    assert info["actor_gpus"] == [1]  # and every actor that ran held one GPU
    assert info["computed"] == 3
    a, b = np.load(local.features_path("tiny", MODEL)), np.load(on_ray.features_path("tiny", MODEL))
    if _cuda():  # the actor ran on the GPU: float error against the local CPU features
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-3)
        return
    np.testing.assert_array_equal(b, a)  # the actor fell back to the CPU: the same bits
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(on_ray.load_probs("tiny", MODEL, split),
                                      local.load_probs("tiny", MODEL, split), err_msg=split)
