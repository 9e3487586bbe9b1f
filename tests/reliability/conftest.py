"""Helpers of the reliability suite: the CLI in a subprocess and a ``streamlit run`` server.

Fixtures of ``tests/conftest.py`` (``tiny_manifest``, ``tiny_store``, ...) apply here too;
``tests/`` is on ``sys.path`` (this folder is a package), so ``app_fixtures`` imports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app_fixtures import cli_env, free_port, streamlit_server  # noqa: F401 (re-exported)

REPO = Path(__file__).resolve().parents[2]


def run_cli(home: Path, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
    """Run ``python -m pinterest_mm.cli ARGS`` on the store ``home``."""
    return subprocess.run([sys.executable, "-m", "pinterest_mm.cli", *args], cwd=REPO,
                          env=cli_env(home, **extra), capture_output=True, text=True, timeout=timeout)


def rss_mb(pid: int) -> float:
    """Resident memory of a process (MB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
