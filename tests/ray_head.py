"""A real ``ray start --head`` for tests that need a cluster outside the test process (Ray
Client, Ray Jobs), not the session's ``cluster_utils`` cluster (``conftest.ray_cluster``).

The head runs in its own process group with its own temp folder (its address file included)
and is killed by group at the end; ``ray stop`` would stop every Ray cluster on the machine,
the test session's own among them.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's commands (ray, pinterest-mm)
RAY = BIN / "ray"


@dataclass(frozen=True)
class RayHead:
    """A running head.

    Attributes:
        env: Environment of the head's processes (``PYTHONPATH`` puts this checkout first,
            ``RAY_TMPDIR`` its temp folder), for children that should see the same.
        address: Its GCS address (``HOST:PORT``), read from its address file.
        token_auth: ``ray start`` turned token authentication on (Ray 2.60 does when
            ``~/.ray/auth_token`` exists).
    """

    env: dict
    address: str
    token_auth: bool


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_group(pgid: int) -> None:
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


@contextmanager
def ray_head(options: list[str], env: dict | None = None, prefix: str = "pmmrh-") -> Iterator[RayHead]:
    """Start a one-CPU head with ``ray start --head <options>``; kill its process group on exit.

    ``env`` adds to (or overrides) the head's environment; skipped when the venv has no ``ray``
    command.
    """
    if not RAY.exists():
        pytest.skip(f"no ray command next to {sys.executable}")
    tmp = Path(tempfile.mkdtemp(prefix=prefix))  # short: Ray's socket paths are limited to 107 bytes
    head_env = {**os.environ, "RAY_TMPDIR": str(tmp),
                "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    head_env.pop("RAY_ADDRESS", None)
    cmd = [str(RAY), "start", "--head", f"--port={free_port()}", "--num-cpus=1", f"--temp-dir={tmp / 'ray'}",
           "--disable-usage-stats", *options]
    proc = subprocess.Popen(cmd, env=head_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own group: the daemons stay in it
    try:
        out = proc.communicate(timeout=120)[0]
        address_file = tmp / "ray" / "ray_current_cluster"
        assert proc.returncode == 0 and address_file.exists(), out[-3000:]
        yield RayHead(head_env, address_file.read_text().strip(), "Token authentication is enabled" in out)
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_group(proc.pid)
        shutil.rmtree(tmp, ignore_errors=True)
