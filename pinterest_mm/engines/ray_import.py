"""The import's image checks and hashing as Ray tasks (``pinterest-mm import --engine ray``).

Each task inspects a batch of image files with :func:`pinterest_mm.data.clean.inspect_image`
(decode, size limits, grayscale difference hash, SHA-1): the per-image work of the import,
and most of its time on a large manifest. The results come back in the order of the paths
given, so the import goes on exactly as with local threads (same checks, same hashes, so the
same duplicate groups, pins and dataset fingerprint). Grouping the hashes into duplicates
stays in the importer: it needs every hash at once and takes seconds.

The workers read the images by path, so every node must see the images root at the same
path (one machine, or shared storage mounted alike), and import ``pinterest_mm`` (install it
on every node). Ray is imported only here.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..data.clean import ImageCheck, inspect_image


@dataclass(frozen=True)
class RayImportConfig:
    """Where and how the image checks run on Ray.

    Attributes:
        address: The cluster to join (``auto``, ``ray://HOST:PORT``); None starts a local
            one for this process (and stops it afterwards).
        batch: Image files per task (a task's overhead is a few milliseconds).
    """

    address: str | None = None
    batch: int = 256


def _inspect_batch(paths: list[str], max_pixels: int, max_bytes: int) -> list[ImageCheck]:
    """One task: inspect ``paths`` in order."""
    return [inspect_image(Path(p), max_pixels, max_bytes) for p in paths]


def ray_image_checker(config: RayImportConfig = RayImportConfig()):
    """Return a checker for :func:`pinterest_mm.data.importer.import_manifest`'s ``image_checker``.

    Raises:
        ImportError: Ray is not installed (``pip install -e '.[ray]'``).
    """
    if importlib.util.find_spec("ray") is None:
        raise ImportError("--engine ray needs Ray: install it with pip install -e '.[ray]' "
                          "(or pip install 'ray[data]'), or import with the local engine.")

    def check(unique: list[str], max_pixels: int, max_bytes: int, progress: bool) -> list[ImageCheck]:
        return check_images(unique, max_pixels, max_bytes, progress, config)

    return check


def check_images(paths: list[str], max_pixels: int, max_bytes: int, progress: bool,
                 config: RayImportConfig = RayImportConfig()) -> list[ImageCheck]:
    """Inspect each path in Ray tasks of ``config.batch`` files; results in ``paths`` order.

    Joins the running Ray session if this process has one, else ``config.address`` (or a
    new local cluster, shut down again at the end).

    Args:
        paths: Image files (absolute paths), shape (n,).
        max_pixels, max_bytes: The import's image limits.
        progress: Show a bar over the images checked, with its ETA.

    Returns:
        One :class:`~pinterest_mm.data.clean.ImageCheck` per path, shape (n,).
    """
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address=config.address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    try:
        task = ray.remote(_inspect_batch)
        batches = [paths[i:i + config.batch] for i in range(0, len(paths), max(1, config.batch))]
        refs = [task.remote(b, max_pixels, max_bytes) for b in batches]
        index = {ref: k for k, ref in enumerate(refs)}
        done: list[list[ImageCheck] | None] = [None] * len(refs)
        pending = list(refs)
        with tqdm(total=len(paths), desc="checking images (ray)", unit="img", disable=not progress) as bar:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    k = index[ref]
                    done[k] = ray.get(ref)
                    bar.update(len(batches[k]))
        return [check for batch in done for check in batch]  # type: ignore[union-attr]
    finally:
        if started:
            ray.shutdown()
