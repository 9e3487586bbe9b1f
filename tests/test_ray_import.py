"""``pinterest-mm import --engine ray``: the image checks and hashing run as Ray tasks and the
dataset comes out the same as with local threads (pins, fingerprint, import report)."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from conftest import TINY_CONFIG  # noqa: E402
from pinterest_mm.data.importer import import_manifest  # noqa: E402
from pinterest_mm.engines import ray_import  # noqa: E402
from pinterest_mm.store import Store  # noqa: E402


@pytest.fixture(scope="module")
def ray_session(ray_cluster):
    """The session's Ray cluster (conftest): two one-CPU nodes."""
    yield ray_cluster


def test_ray_import_equals_local_import(tmp_path, tiny_manifest, ray_session, monkeypatch):
    """Check the Ray checker ran (over several tasks of 7 images) and the dataset equals
    the local import: same fingerprint, same pins with the same hashes, same report."""
    seen: list[int] = []
    local, remote = Store(tmp_path / "local"), Store(tmp_path / "ray")
    import_manifest(local, tiny_manifest, "tiny", TINY_CONFIG, progress=False)
    checker = ray_import.ray_image_checker(ray_import.RayImportConfig(batch=7))
    real_check = ray_import.check_images

    def spy(paths, *a, **k):
        seen.append(len(paths))
        return real_check(paths, *a, **k)

    monkeypatch.setattr(ray_import, "check_images", spy)
    import_manifest(remote, tiny_manifest, "tiny", TINY_CONFIG, progress=False, image_checker=checker)
    assert seen and seen[0] > 7  # several tasks
    a, b = local.dataset_info("tiny"), remote.dataset_info("tiny")
    assert a["fingerprint"] == b["fingerprint"] and a["n_pins"] == b["n_pins"] > 0
    cols = ["pin_id", "split", "split_row", "label", "image_hash"]
    assert local.pins("tiny")[cols].equals(remote.pins("tiny")[cols])
    assert local.import_report("tiny").equals(remote.import_report("tiny"))
