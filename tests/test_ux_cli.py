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
