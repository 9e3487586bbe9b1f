"""A store file that is truncated, from a newer schema, or locked by another process.

The CLI exits non-zero with one paragraph saying what is wrong and what to do (never a
traceback); the app shows the message on the page (never an exception box); the file
itself is left untouched (nothing overwritten, nothing silently reset).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pinterest_mm.store import Store

from .conftest import REPO, run_cli

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest


def _truncated(root: Path, tiny_store: Store) -> Path:
    src = tiny_store.path.read_bytes()
    root.mkdir(parents=True)
    (root / "store.duckdb").write_bytes(src[: len(src) // 3])
    return root


def _newer(root: Path, tiny_store: Store) -> Path:
    s = Store(root)
    with s.connect() as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    return root


def _garbage(root: Path, tiny_store: Store) -> Path:
    root.mkdir(parents=True)
    (root / "store.duckdb").write_bytes(b"\x00not a database" * 4096)
    return root


BAD = {"truncated": (_truncated, "truncated or corrupt"), "newer": (_newer, "newer than this"),
       "garbage": (_garbage, "truncated or corrupt")}


def _hold_lock(root, seconds: float) -> subprocess.Popen:
    """Another process that opens the store at ``root`` for writing, for ``seconds``."""
    Store(root)
    code = ("import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            f"time.sleep({seconds}); con.close()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(root / "store.duckdb")],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture
def lock_holder(tmp_path):
    """Another process holding the store open for writing until the test ends."""
    root = tmp_path / "locked"
    proc = _hold_lock(root, 120)
    yield root
    proc.kill()
    proc.wait(10)


def _clean_failure(res: subprocess.CompletedProcess, expect: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr
    assert res.stderr.startswith("error: ") and expect in res.stderr, res.stderr


@pytest.mark.parametrize("kind", list(BAD))
def test_cli_on_a_bad_store_exits_with_a_message_and_leaves_it(kind, tmp_path, tiny_store):
    """Check ``datasets``/``build``/``import`` say what is wrong, with a way out, and write nothing."""
    make, expect = BAD[kind]
    root = make(tmp_path / "bad", tiny_store)
    before = (root / "store.duckdb").read_bytes()
    for args in (["datasets"], ["build", "tiny", "--models", "tfidf-lr", "--quiet"],
                 ["report", "tiny"]):
        res = run_cli(root, *args)
        _clean_failure(res, expect)
        assert ("mv " in res.stderr) or ("Upgrade pinterest-mm" in res.stderr)  # the way out
    assert (root / "store.duckdb").read_bytes() == before


def test_cli_on_a_locked_store_waits_then_explains(lock_holder):
    """Check a store held by another process gives 'locked' (read and write paths), after the timeout."""
    t0 = time.monotonic()
    res = run_cli(lock_holder, "datasets", PINTEREST_MM_LOCK_TIMEOUT="1.5")
    assert time.monotonic() - t0 >= 1.5
    _clean_failure(res, "is locked by another process")
    assert "wait for it to finish" in res.stderr.lower()


def test_store_waits_for_a_lock_that_goes_away(tmp_path):
    """Check a short-held lock (a build writing) is waited for, not reported."""
    root = tmp_path / "s"
    proc = _hold_lock(root, 1.5)
    try:
        assert Store(root, read_only=True).dataset_names() == []
    finally:
        proc.wait(10)


# ----------------------------------------------------------------------------- the app
def _page(root: Path, monkeypatch, script: str = "pages/1_Overview.py") -> AppTest:
    monkeypatch.setenv("PINTEREST_MM_HOME", str(root))
    return AppTest.from_file(str(REPO / script), default_timeout=60).run()


@pytest.mark.parametrize("kind", list(BAD))
@pytest.mark.parametrize("script", ["pages/1_Overview.py", "pages/3_Fusion_lab.py", "app.py"])
def test_app_on_a_bad_store_shows_the_message(kind, script, tmp_path, tiny_store, monkeypatch):
    """Check every entry point shows the store's message on the page, no exception."""
    make, expect = BAD[kind]
    root = make(tmp_path / "bad", tiny_store)
    at = _page(root, monkeypatch, script)
    assert not at.exception, [e.message for e in at.exception]
    errors = " ".join(e.value for e in at.error)
    assert "The store cannot be read" in errors and expect in errors


def test_app_on_a_locked_store_shows_the_message(lock_holder, monkeypatch):
    """Check the app (read-only) says the store is locked and to reload, no exception."""
    monkeypatch.setenv("PINTEREST_MM_LOCK_TIMEOUT", "1")
    at = _page(lock_holder, monkeypatch, "pages/2_Models.py")
    assert not at.exception, [e.message for e in at.exception]
    errors = " ".join(e.value for e in at.error)
    assert "locked by another process" in errors and "reload" in errors
