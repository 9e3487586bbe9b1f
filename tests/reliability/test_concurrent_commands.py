"""Commands that run at the same time on one dataset: a build, a second build, ``import --replace``.

Before the per-dataset lock and the version check, ``import --replace`` during a build let the
build save the old dataset's probabilities under the new one (exit 0; ``report`` and four
pages then crashed on a shape mismatch), and a second build died on the first one's chunk
files with a raw ``FileNotFoundError`` (exit 0 too).

The races are made deterministic, never timed: a real ``build()`` in a subprocess stops just
before it saves its model (the window where the old code saved stale results) and waits on
its stdin, while the test runs the competing commands through the real CLI; the lock-bypass
cases replace the dataset from inside the build's own thread (a writer that ignores the lock,
e.g. an older pinterest-mm), which the version check must still catch.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_CONFIG, make_tiny_manifest
from pinterest_mm.cli import main
from pinterest_mm.data.importer import import_manifest
from pinterest_mm.models.tfidf import TfidfClassifier
from pinterest_mm.store import DatasetChanged, Store

from .conftest import REPO, cli_env, run_cli

# A real build of ``tfidf-lr`` that pauses right before saving: prints "saving" and waits for
# a line on stdin (the test's go-ahead), then saves and prints the result's status.
PAUSED_BUILD = """
import sys
from pinterest_mm.build import build
from pinterest_mm.store import Store

real_save = Store.save_model

def paused_save(self, *args, **kwargs):
    print("saving", flush=True)
    sys.stdin.readline()
    return real_save(self, *args, **kwargs)

Store.save_model = paused_save
results = build(Store(), "tiny", ["tfidf-lr"], progress=False)
print("done", results[0]["status"], flush=True)
"""


@pytest.fixture
def other_manifest(tmp_path_factory) -> Path:
    """A different tiny dataset (16 pins per class, another seed): other pins, other splits."""
    return make_tiny_manifest(tmp_path_factory.mktemp("other_data"), per_class=16, seed=3)


@pytest.fixture
def paused_build(tiny_store):
    """A build of ``tiny`` in another process, stopped just before it saves ``tfidf-lr``."""
    proc = subprocess.Popen([sys.executable, "-c", PAUSED_BUILD], cwd=REPO, env=cli_env(tiny_store.root),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if line != "saving":
        proc.kill()
        pytest.fail(f"the build did not reach its save: {line!r} {proc.stderr.read()}")
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)
    proc.stdout.close()
    proc.stderr.close()


def _refused(res: subprocess.CompletedProcess, pid: int) -> None:
    """A clean refusal: exit 2, one paragraph naming the running build, no traceback."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "FileNotFoundError" not in res.stderr, res.stderr
    assert res.stderr.startswith("error: Dataset 'tiny' is busy: a build"), res.stderr
    assert f"pid {pid}" in res.stderr and "run this command again" in res.stderr, res.stderr


def _version(store: Store) -> tuple:
    info = store.dataset_info("tiny")
    return info["fingerprint"], info["created_at"]


def test_replace_and_second_build_are_refused_while_a_build_runs(paused_build, tiny_store, other_manifest):
    """Check ``import --replace`` and a second ``build`` of the dataset are refused at once
    (exit 2, the running build named) and change nothing, while another dataset imports and
    builds meanwhile; the first build then saves its model on the version it started from,
    exits cleanly, and the replace works once it is done."""
    before = _version(tiny_store)
    res = run_cli(tiny_store.root, "import", str(other_manifest), "--name", "tiny", "--replace",
                  "--min-per-class", "10", "--quiet")
    _refused(res, paused_build.pid)
    res = run_cli(tiny_store.root, "build", "tiny", "--models", "tfidf-lr", "--quiet")
    _refused(res, paused_build.pid)
    assert _version(tiny_store) == before  # not replaced
    # the lock is per dataset: another one imports and builds meanwhile
    res = run_cli(tiny_store.root, "import", str(other_manifest), "--name", "other",
                  "--min-per-class", "10", "--quiet")
    assert res.returncode == 0, res.stderr
    res = run_cli(tiny_store.root, "build", "other", "--models", "tfidf-lr", "--quiet")
    assert res.returncode == 0, res.stderr

    out, err = paused_build.communicate("go\n", timeout=300)
    assert paused_build.returncode == 0, err
    assert out.strip() == "done built"
    assert list(tiny_store.models("tiny")["model"]) == ["tfidf-lr"]
    n_test = tiny_store.dataset_info("tiny")["split_counts"]["test"]
    assert tiny_store.load_probs("tiny", "tfidf-lr", "test").shape == (n_test, 6)
    res = run_cli(tiny_store.root, "report", "tiny")
    assert res.returncode == 0 and "tfidf-lr" in res.stdout, res.stderr

    # the lock went with the build: a replace now works (and removes the old version's models)
    res = run_cli(tiny_store.root, "import", str(other_manifest), "--name", "tiny", "--replace",
                  "--min-per-class", "10", "--quiet")
    assert res.returncode == 0, res.stderr
    assert tiny_store.models("tiny").empty


def test_a_killed_build_leaves_no_stale_lock(paused_build, tiny_store, other_manifest):
    """Check the lock holds while the build runs and goes with it when the build is killed
    with SIGKILL (no cleanup code runs): the dataset is not blocked afterwards."""
    res = run_cli(tiny_store.root, "build", "tiny", "--models", "tfidf-lr", "--quiet")
    _refused(res, paused_build.pid)
    paused_build.send_signal(signal.SIGKILL)
    paused_build.wait(30)
    res = run_cli(tiny_store.root, "import", str(other_manifest), "--name", "tiny", "--replace",
                  "--min-per-class", "10", "--quiet")
    assert res.returncode == 0, res.stderr
    assert tiny_store.models("tiny").empty


def test_a_build_never_saves_on_a_replaced_dataset(tiny_store, other_manifest, monkeypatch, capsys):
    """Check the version check: a replace that slips past the lock (here from the build's own
    thread) between computing and saving stops the build with exit 2 and saves nothing."""
    real_save = Store.save_model

    def replace_then_save(self, *args, **kwargs):
        import_manifest(self, other_manifest, "tiny", TINY_CONFIG, replace=True, progress=False)
        return real_save(self, *args, **kwargs)

    n_pins = tiny_store.dataset_info("tiny")["n_pins"]
    monkeypatch.setattr(Store, "save_model", replace_then_save)
    monkeypatch.setenv("PINTEREST_MM_HOME", str(tiny_store.root))
    assert main(["build", "tiny", "--models", "tfidf-lr", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "was replaced or deleted while" in err and "`pinterest-mm build tiny`" in err, err
    monkeypatch.undo()
    assert tiny_store.models("tiny").empty  # the old version's probabilities were not saved
    assert tiny_store.dataset_info("tiny")["n_pins"] < n_pins  # the other manifest's pins


def test_files_vanishing_under_a_replace_stop_the_build(tiny_store, other_manifest, monkeypatch):
    """Check a model that fails because the dataset was replaced under it (its files removed)
    stops the whole build with DatasetChanged: no 'FAILED' model, and the next model is not
    built on the old pins and saved under the new ones."""

    def replaced_under_it(self, ctx):
        import_manifest(ctx.store, other_manifest, "tiny", TINY_CONFIG, replace=True, progress=False)
        raise FileNotFoundError(f"{ctx.features_path.parent}/effnet-lite0.partial/chunk_00000.npy")

    n_pins = tiny_store.dataset_info("tiny")["n_pins"]
    monkeypatch.setattr(TfidfClassifier, "fit", replaced_under_it)
    from pinterest_mm.build import build

    with pytest.raises(DatasetChanged, match="replaced or deleted while this build ran"):
        build(tiny_store, "tiny", ["tfidf-lr", "glove-6b-50"], progress=False)
    assert tiny_store.models("tiny").empty
    assert tiny_store.dataset_info("tiny")["n_pins"] < n_pins


def test_dataset_lock_is_reentrant_in_its_thread_only(tmp_path):
    """Check the lock: the holding thread may take it again (an import writing its dataset),
    another thread is refused with the holder's pid and job, other datasets are free, and it
    is free again once released."""
    import os
    import threading

    from pinterest_mm.locks import DatasetBusy, dataset_lock

    refused: list[DatasetBusy] = []

    def other_thread() -> None:
        try:
            with dataset_lock(tmp_path, "tiny", "an import"):
                pass
        except DatasetBusy as exc:
            refused.append(exc)

    with dataset_lock(tmp_path, "tiny", "a build"):
        with dataset_lock(tmp_path, "tiny", "an import"):
            pass
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        with dataset_lock(tmp_path, "other", "a build"):
            pass
    assert len(refused) == 1
    assert refused[0].holder["pid"] == os.getpid() and refused[0].holder["job"] == "a build"
    assert "is busy: a build (pid" in str(refused[0])
    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert len(refused) == 1  # released: the other thread got it
