"""Rough edges of the command line: model patterns, plain-text headers, quick listings."""

from __future__ import annotations


from pinterest_mm.cli import main
from pinterest_mm.models.registry import list_models, name_matches


def test_models_pattern_matches_as_substring_or_glob(capsys):
    assert [s.name for s in list_models("convnext")] == ["convnext-tiny", "convnext-small", "convnext-base"]
    assert [s.name for s in list_models("ConvNeXt-*")] == ["convnext-tiny", "convnext-small", "convnext-base"]
    assert [s.name for s in list_models("lite?")] == []  # a glob covers the whole name
    assert name_matches("tfidf-lr", "lr") and not name_matches("tfidf-lr", "lr*")
    assert main(["models", "convnext"]) == 0
    out = capsys.readouterr().out
    assert out.count("convnext-") == 3 and "effnet" not in out


def test_models_pattern_without_match_says_how_to_glob(capsys):
    assert main(["models", "resnet"]) == 0
    out = capsys.readouterr().out
    assert "No model name matches 'resnet'" in out and "glob" in out


def test_build_shows_cv_progress_per_model_unless_quiet(tiny_store, monkeypatch, capsys):
    monkeypatch.setenv("PINTEREST_MM_HOME", str(tiny_store.path.parent))
    assert main(["build", "tiny", "--models", "tfidf-lr", "--quiet"]) == 0
    assert "C by" not in capsys.readouterr().err
    assert main(["build", "tiny", "--models", "glove-6b-50,tfidf-svm"]) == 0
    err = capsys.readouterr().err
    for name in ("glove-6b-50", "tfidf-svm"):  # the build's LR CV and a classifier's own CV
        assert f"{name}: C by " in err and "fit" in err


def test_net_inputs_from_read_only_arrays_raise_no_torch_warning():
    import warnings

    import numpy as np
    import torch

    from pinterest_mm.fusion.nets import _tensor

    ro = np.arange(6, dtype=np.float32).reshape(2, 3)
    ro.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "non-writable NumPy array" warning fails here
        t = _tensor(torch, ro, np.float32)
    assert t.tolist() == ro.tolist()
    rw = np.ones((2, 2), np.float32)
    assert _tensor(torch, rw, np.float32).data_ptr() == rw.ctypes.data  # writable: no copy


def test_report_thesis_shows_progress_and_plain_headers(tmp_path, monkeypatch, capsys):
    from app_fixtures import DATASET, make_test_cache

    make_test_cache(tmp_path / "home")
    monkeypatch.setenv("PINTEREST_MM_HOME", str(tmp_path / "home"))
    assert main(["report", DATASET, "--thesis"]) == 0
    out, err = capsys.readouterr()
    assert "thesis report:" in err and "fusion" in err  # the bar, on stderr
    header = next(line for line in out.splitlines() if line.startswith("Thesis report:"))
    assert "{" not in header and "pins: train " in header
    assert main(["report", DATASET, "--thesis", "--quiet"]) == 0
    assert "thesis report:" not in capsys.readouterr().err


def test_datasets_loads_no_heavy_module_and_errors_still_exit_2(tiny_store, monkeypatch, capsys):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    code = ("import sys; from pinterest_mm.cli import main; main(['datasets']); "
            "print([m for m in ('sklearn', 'torch', 'pinterest_mm.data.importer') if m in sys.modules])")
    env = {**os.environ, "PINTEREST_MM_HOME": str(tiny_store.path.parent), "PYTHONPATH": str(repo)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "tiny" in out and out.strip().splitlines()[-1] == "[]"
    monkeypatch.setenv("PINTEREST_MM_HOME", str(tiny_store.path.parent))
    assert main(["import", str(tiny_store.path.parent / "missing.csv"), "--name", "x"]) == 2  # a known problem
    assert main(["report", "no-such-dataset"]) == 2
    assert capsys.readouterr().err.count("error: ") == 2


def test_import_summary_prints_split_counts_as_text(tmp_path, tiny_manifest, monkeypatch, capsys):
    monkeypatch.setenv("PINTEREST_MM_HOME", str(tmp_path / "home"))
    assert main(["import", str(tiny_manifest), "--name", "t", "--min-per-class", "5", "--quiet"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("Imported 't'"))
    assert "{" not in line and "splits train " in line and ", val " in line and ", test " in line


def test_build_warns_when_a_text_model_knows_too_few_words(tiny_store, monkeypatch, capsys):
    """`build` prints the unknown-words warning of the text models it built: none for GloVe on
    the tiny English dataset at the default levels, one when the levels are 0 (every model warns)."""
    from pinterest_mm import coverage

    monkeypatch.setenv("PINTEREST_MM_HOME", str(tiny_store.path.parent))
    assert main(["build", "tiny", "--models", "glove-6b-50", "--quiet"]) == 0
    assert "knows no word" not in capsys.readouterr().err
    monkeypatch.setattr(coverage, "PINS_WARN", 0.0)
    monkeypatch.setattr(coverage, "TOKENS_WARN", 0.0)
    assert main(["build", "tiny", "--models", "glove-6b-50", "--quiet"]) == 0  # cached: still checked
    assert "warning: glove-6b-50 knows no word" in capsys.readouterr().err
