"""A build running while the app is open: readers see the last complete cache, then the new one.

The app opens the store read-only with short connections; a build writes each model in one
transaction. Readers running in a loop during a real ``pinterest-mm build`` subprocess must
never see a half-built model, never a lock error, and must see the new models once it ends.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from app_fixtures import SYNTH_MODELS, make_test_cache
from pinterest_mm.outputs import load_outputs
from pinterest_mm.store import Store

from .conftest import REPO, cli_env

AppTest = pytest.importorskip("streamlit.testing.v1").AppTest
NEW = ["tfidf-lr", "glove-6b-50"]


@pytest.mark.slow
def test_app_keeps_serving_during_a_build(tmp_path, monkeypatch):
    root = tmp_path / "home"
    make_test_cache(root, per_class=24)
    old = set(SYNTH_MODELS)
    counts = Store(root).dataset_info("tiny")["split_counts"]
    monkeypatch.setenv("PINTEREST_MM_HOME", str(root))
    proc = subprocess.Popen([sys.executable, "-m", "pinterest_mm.cli", "build", "tiny", "--models",
                             ",".join(NEW), "--quiet"], cwd=REPO, env=cli_env(root),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen, reads, page_runs, errors = [], 0, 0, []
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            done = proc.poll() is not None
            out = load_outputs(Store(root, read_only=True), "tiny")
            reads += 1
            names = set(out.models)
            assert old <= names <= old | set(NEW), names
            for m in names:  # every model visible is complete: all splits, one row per pin
                for s in ("train", "val", "test"):
                    p = out.probs[m][s]
                    assert p.shape == (counts[s], 6) and np.allclose(p.sum(1), 1, atol=1e-4), (m, s)
            if not seen or seen[-1] != sorted(names):
                seen.append(sorted(names))
            if reads % 5 == 0:  # the Models page through Streamlit's loaders
                at = AppTest.from_file(str(REPO / "pages/2_Models.py"), default_timeout=60)
                at.query_params["dataset"] = "tiny"
                at.run()
                page_runs += 1
                errors += [e.message for e in at.exception] + [e.value for e in at.error]
            if done:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert not errors, errors
    assert "locked" not in err
    at = AppTest.from_file(str(REPO / "pages/2_Models.py"), default_timeout=60)
    at.query_params["dataset"] = "tiny"
    at.run()
    assert not at.exception
    shown = " ".join(str(df.value.to_csv()) for df in at.dataframe)
    assert all(m in shown for m in NEW), "the page picks up the new models once the build ends"
    print(f"\nreads during the build: {reads}, Models page runs: {page_runs}, model sets seen: "
          f"{[len(s) for s in seen]}")
    assert seen[0] == sorted(old) and seen[-1] == sorted(old | set(NEW))
