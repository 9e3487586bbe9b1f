"""Helpers of the reliability suite: the CLI in a subprocess and a ``streamlit run`` server.

Fixtures of ``tests/conftest.py`` (``tiny_manifest``, ``tiny_store``, ...) apply here too;
``tests/`` is on ``sys.path`` (this folder is a package), so ``app_fixtures`` imports.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def cli_env(home: Path, **extra: str) -> dict:
    """The environment of a CLI or server subprocess on the store ``home``."""
    env = dict(os.environ, PINTEREST_MM_HOME=str(home), STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
               PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def run_cli(home: Path, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
    """Run ``python -m pinterest_mm.cli ARGS`` on the store ``home``."""
    return subprocess.run([sys.executable, "-m", "pinterest_mm.cli", *args], cwd=REPO,
                          env=cli_env(home, **extra), capture_output=True, text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(home: Path, log_path: Path, *extra_args: str):
    """``streamlit run app.py`` on a free loopback port; yields (url, Popen)."""
    port = free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port", str(port),
         "--server.headless", "true", "--server.fileWatcherType", "none",
         "--server.address", "127.0.0.1", *extra_args],
        cwd=REPO, env=cli_env(home), stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited early; see {log_path}")
            if time.time() > deadline:
                pytest.fail("streamlit did not become healthy in 60 s")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def rss_mb(pid: int) -> float:
    """Resident memory of a process (MB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
