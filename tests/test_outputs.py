"""Reading the probability cache: a read that races a writer retries, and never returns a mix."""

from __future__ import annotations

import itertools

import pytest

from app_fixtures import add_synth_models
from pinterest_mm.outputs import load_outputs
from pinterest_mm.store import StoreError


def test_a_read_during_a_write_retries_then_settles(tiny_store, monkeypatch):
    add_synth_models(tiny_store)
    versions = iter(["v1", "v2", "v2", "v2"])  # a commit lands during the first read
    monkeypatch.setattr(tiny_store, "version", lambda dataset: next(versions))
    out = load_outputs(tiny_store, "tiny")
    assert len(out.models) == 6 and next(versions, None) is None  # read twice, then settled


def test_a_read_that_never_settles_raises_instead_of_mixing(tiny_store, monkeypatch):
    counter = itertools.count()
    monkeypatch.setattr(tiny_store, "version", lambda dataset: f"v{next(counter)}")
    with pytest.raises(StoreError, match="changed during each of 3 reads"):
        load_outputs(tiny_store, "tiny", attempts=3)
