"""A store file that is truncated, from a newer schema, locked by another process, on a
read-only filesystem or not writable by this user, or damaged by the old build/replace race.

The CLI exits non-zero with one paragraph saying what is wrong and what to do (never a
traceback); the app shows the message on the page (never an exception box); the file
itself is left untouched (nothing overwritten, nothing silently reset). A read-only store
still serves every command that only reads it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from app_fixtures import add_synth_models
from conftest import TINY_CONFIG, make_tiny_manifest
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.store import Store

from .conftest import REPO, cli_env, run_cli

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


# ----------------------------------------------------------------------------- read-only stores
# A real read-only filesystem: a read-only bind mount of the store folder, in a mount namespace
# of the command's own (``unshare --mount``; the mount is gone when the command ends, and
# nothing outside it sees it). Root ignores file modes but not a read-only mount.
_RO_MOUNT = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'


def _read_only_mounts_work() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    with tempfile.TemporaryDirectory() as d:
        res = subprocess.run(["unshare", "--mount", "sh", "-c", _RO_MOUNT, d, "sh", "-c", "! touch \"$0/x\"", d],
                             capture_output=True, timeout=30)
        return res.returncode == 0


def _cli_on_read_only_fs(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "--mount", "sh", "-c", _RO_MOUNT, str(home),
                           sys.executable, "-m", "pinterest_mm.cli", *args],
                          cwd=REPO, env=cli_env(home), capture_output=True, text=True, timeout=300)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _check_read_only_store(run, home: Path, manifest: Path, reason: str) -> None:
    """Reads work; writes exit 2 naming the OS error, not 'corrupt'; no file changes."""
    before = _files(home)
    res = run("datasets")
    assert res.returncode == 0 and "tiny" in res.stdout, res.stderr
    res = run("report", "tiny", "--json")
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)["models"]) == 6
    for args in (["build", "tiny", "--models", "tfidf-lr", "--quiet"],
                 ["import", str(manifest), "--name", "tiny", "--replace", "--min-per-class", "10", "--quiet"]):
        res = run(*args)
        _clean_failure(res, reason)
        assert "intact" in res.stderr and "writable" in res.stderr, res.stderr
        assert "corrupt" not in res.stderr and "mv " not in res.stderr, res.stderr
    assert _files(home) == before


@pytest.mark.skipif(not _read_only_mounts_work(), reason="needs unshare --mount (mount namespaces)")
def test_store_on_a_read_only_filesystem(tiny_store, tiny_manifest):
    """Check ``datasets`` and ``report`` work on a read-only filesystem, and ``build`` and
    ``import`` say "Read-only file system" (not "corrupt: move it away")."""
    add_synth_models(tiny_store)
    home = tiny_store.root
    _check_read_only_store(lambda *a: _cli_on_read_only_fs(home, *a), home, tiny_manifest,
                           "Read-only file system")


# A full disk: a tmpfs just larger than the store, mounted over the store folder in the
# command's own mount namespace; the import's commit cannot grow the write-ahead log.
_FULL_DISK = ('mount -t tmpfs -o size="$2" tmpfs "$0" && cp "$1" "$0"/ && '
              '"$3" -m pinterest_mm.cli import "$4" --name other --min-per-class 10 --quiet; '
              'echo "import-status=$?"; "$3" -m pinterest_mm.cli datasets --json')


@pytest.mark.skipif(not _read_only_mounts_work(), reason="needs unshare --mount (mount namespaces)")
def test_full_disk_is_reported_as_a_full_disk(tmp_path, tiny_store, tiny_manifest):
    """Check an import that fills the disk exits 2 with "No space left on device" (not
    "corrupt: move it away"), and the store still holds what it held."""
    home = tmp_path / "full"
    home.mkdir()
    size_kb = -(-tiny_store.path.stat().st_size // 4096) * 4 + 8  # the file's pages + 2 pages
    res = subprocess.run(["unshare", "--mount", "sh", "-c", _FULL_DISK, str(home), str(tiny_store.path),
                          f"{size_kb}k", sys.executable, str(tiny_manifest)],
                         cwd=REPO, env=cli_env(home), capture_output=True, text=True, timeout=300)
    assert "import-status=2" in res.stdout, (res.stdout, res.stderr)
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr, res.stderr
    assert "No space left on device" in res.stderr and "Free some disk space" in res.stderr, res.stderr
    assert "corrupt" not in res.stderr, res.stderr
    names = [d["name"] for d in json.loads(res.stdout.split("import-status=2", 1)[1])["datasets"]]
    assert names == ["tiny"]


# Root ignores file modes through CAP_DAC_OVERRIDE: run the command as root without it (and
# without CAP_DAC_READ_SEARCH), so the modes apply as to any other user.
_OBEY_MODES = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
               "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None,
                    reason="as root, needs setpriv to drop CAP_DAC_OVERRIDE")
def test_store_this_user_cannot_write(tmp_path, tiny_store, tiny_manifest):
    """Check the same for a store folder and files without write permission ("Permission
    denied"); as root the commands run without the capability that ignores file modes."""
    add_synth_models(tiny_store)
    home = tmp_path / "readable"
    shutil.copytree(tiny_store.root, home)
    prefix = _OBEY_MODES if os.geteuid() == 0 else []
    try:
        for p in [home, *home.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)

        def run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([*prefix, sys.executable, "-m", "pinterest_mm.cli", *args], cwd=REPO,
                                  env=cli_env(home), capture_output=True, text=True, timeout=300)

        _check_read_only_store(run, home, tiny_manifest, "Permission denied")
    finally:
        for p in [home, *home.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


# ----------------------------------------------------------------------------- the old race's damage
@pytest.fixture
def raced_store(tmp_path, tiny_store) -> Store:
    """A store as the old build/replace race left it: ``tiny`` re-imported from another
    manifest (other pins, other splits), and ``synth-img-a`` saved afterwards with the old
    version's probabilities (as a build that started before the replace did)."""
    add_synth_models(tiny_store)
    old = {s: tiny_store.load_probs("tiny", "synth-img-a", s) for s in ("train", "val", "test")}
    other = make_tiny_manifest(tmp_path / "other", per_class=16, seed=3)
    import_manifest(tiny_store, other, "tiny", TINY_CONFIG, replace=True, progress=False)
    add_synth_models(tiny_store)
    tiny_store.save_model("tiny", "synth-img-a", family="image", modality="image", params={"C": 1.0},
                          cv_score=0.5, val_accuracy=0.5, test_accuracy=0.5, seconds=1.0,
                          fingerprint="built-on-the-old-version", probs=old)
    return tiny_store


REBUILD = "`pinterest-mm build tiny --models synth-img-a`"


def test_report_skips_a_model_saved_on_an_older_version(raced_store):
    """Check ``report`` (text, JSON, ``--thesis``) leaves the mismatched model out with the
    rebuild command, and reports the others (the thesis report used to crash)."""
    res = run_cli(raced_store.root, "report", "tiny")
    assert res.returncode == 0, res.stderr
    assert "Skipped: Model synth-img-a is left out" in res.stdout and REBUILD in res.stdout
    assert "5 models built" in res.stdout
    res = run_cli(raced_store.root, "report", "tiny", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert [s["name"] for s in report["skipped"]] == ["synth-img-a"]
    assert "synth-img-a" not in {m["name"] for m in report["models"]}
    res = run_cli(raced_store.root, "report", "tiny", "--thesis")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr and "broadcast" not in res.stderr, res.stderr
    assert REBUILD in res.stdout


@pytest.mark.parametrize("script", ["pages/2_Models.py", "pages/3_Fusion_lab.py", "pages/4_Compare.py",
                                    "pages/5_Users.py", "pages/6_Predict.py"])
def test_app_skips_a_model_saved_on_an_older_version(script, raced_store, monkeypatch):
    """Check every page with models shows the others and says which to rebuild, no exception."""
    at = _page(raced_store.root, monkeypatch, script)
    assert not at.exception, [e.message for e in at.exception]
    # the message names a dataset and models from the store: shown as text (Markdown-escaped)
    warnings = " ".join(w.value for w in at.warning).replace("\\", "")
    assert "synth-img-a is left out" in warnings and REBUILD in warnings
