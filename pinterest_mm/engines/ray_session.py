"""Where the Ray engine runs: its settings, the connection to a cluster, and clear messages
when Ray is missing, no cluster answers, or a Ray Client address (``ray://``) is given.

Ray Data cannot run through Ray Client with Ray 2.60: the streaming executor needs the full
driver of a node (through a ``ray://`` connection it fails with ``'Worker' object has no
attribute 'core_worker'``; measured here against a real ``ray start --head``), and Ray's
documentation recommends Ray Jobs for Ray Data. So a ``ray://`` address is refused before any
work, with the command that runs the build on the cluster instead (:func:`check_address`).
Ray is imported only when the engine is chosen.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..models.base import cpu_count

INSTALL_HINT = "pip install -e '.[ray]'"
ENV_TMPDIR = "RAY_TMPDIR"
CLIENT_PREFIX = "ray://"
_MAX_TEMP_DIR = 60  # Ray's session sockets must fit a 107-byte AF_UNIX path


class EngineUnavailable(ValueError):
    """The Ray engine was asked for but Ray is not installed, its cluster cannot be reached, or
    the address is one the engine cannot use (Ray Client)."""


def require_ray():
    """Return the ``ray`` module, or raise :class:`EngineUnavailable` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray without its Data extra cannot run the pipeline)
    except ImportError as exc:
        raise EngineUnavailable(
            f"The Ray engine needs Ray Data, which is not installed here ({exc}). Install the "
            f"extra with `{INSTALL_HINT}` (it brings ray[data,client,default]), or build with the default "
            "`--engine local`, which needs nothing more."
        ) from None
    return ray


def check_address(address: str | None, dataset: str = "NAME") -> None:
    """Refuse a Ray Client address (``ray://HOST:PORT``) with the command to use instead.

    Raises:
        EngineUnavailable: ``address`` starts with ``ray://``.
    """
    if not address or not address.strip().lower().startswith(CLIENT_PREFIX):
        return
    host = address.strip()[len(CLIENT_PREFIX):].rsplit(":", 1)[0] or "HEAD"
    raise EngineUnavailable(
        f"The Ray engine cannot build through Ray Client ({address}): Ray Data pipelines need a "
        "driver on a node of the cluster (through ray:// Ray 2.60 fails with \"'Worker' object "
        "has no attribute 'core_worker'\"), and Ray recommends Ray Jobs for them. Submit the "
        f"build as a job that runs on the head: `ray job submit --address http://{host}:8265 -- "
        f"pinterest-mm build {dataset} --engine ray --address auto` (Ray Jobs need the head's "
        "dashboard: pip install 'ray[default]' there; the store is the head's: set "
        "PINTEREST_MM_HOME there, e.g. with --runtime-env-json '{\"env_vars\": "
        "{\"PINTEREST_MM_HOME\": \"/path/on/head\"}}'), or run `pinterest-mm build "
        f"{dataset} --engine ray --address auto` in a shell on a node that holds the store."
    )


@dataclass(frozen=True)
class RayEngineConfig:
    """Where and how the Ray engine runs.

    Attributes:
        address: ``auto`` (the cluster this machine belongs to) or a GCS address
            (``HOST:6379``); None starts a local one-machine cluster. ``ray://`` (Ray Client)
            is refused (:func:`check_address`).
        max_actors: Largest actor pool (None: one per GPU on GPU clusters for image models,
            else the cluster's CPUs less the decoding tasks' share, at least 1).
        cpus_per_actor: CPUs reserved per actor; also its network's intra-op threads unless
            the model sets ``threads``.
        decode_cpus: CPUs reserved per read + decode task. It must differ from
            ``cpus_per_actor``: Ray Data fuses consecutive operators of equal resources, which
            would move the decoding into the actors (no decoding while the network runs).
        temp_dir: Session folder of a local cluster (None: ``$RAY_TMPDIR`` when set, else
            ``<store>/ray`` when short enough for Ray's sockets, else a folder named after
            the store in the system temp folder).
    """

    address: str | None = None
    max_actors: int | None = None
    cpus_per_actor: float = 1.0
    decode_cpus: float = 0.5
    temp_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.decode_cpus == self.cpus_per_actor:
            raise ValueError(f"decode_cpus and cpus_per_actor are both {self.decode_cpus}; make them "
                             "differ so that Ray Data keeps decoding in tasks of its own.")
        check_address(self.address)


def local_temp_dir(store_root: Path) -> Path | None:
    """The session folder of a local cluster (None: Ray's ``$RAY_TMPDIR`` is honoured)."""
    if os.environ.get(ENV_TMPDIR):
        return None
    preferred = Path(store_root).resolve() / "ray"
    if len(str(preferred)) <= _MAX_TEMP_DIR:
        return preferred
    import hashlib

    tag = hashlib.sha256(str(preferred).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"pmm-ray-{tag}"


class RaySession:
    """Connects to Ray once, on first use, and disconnects at :meth:`close` if it connected."""

    def __init__(self, config: RayEngineConfig, store_root: Path) -> None:
        self.config = config
        self.store_root = Path(store_root)
        self.started = False

    def ensure(self):
        """Return ``ray``, initialised (an existing session is used as it is)."""
        ray = require_ray()
        if ray.is_initialized():
            return ray
        if self.config.address:  # the cluster's own settings
            kwargs: dict = {"address": self.config.address}
        else:
            kwargs = {"include_dashboard": False, "configure_logging": False}
            temp = self.config.temp_dir or local_temp_dir(self.store_root)
            if temp is not None:
                Path(temp).mkdir(parents=True, exist_ok=True)
                kwargs["_temp_dir"] = str(temp)
            kwargs["num_cpus"] = cpu_count()
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise EngineUnavailable(
                f"No Ray cluster answered at {self.config.address!r} ({exc}). Start one with "
                "`ray start --head` (and `ray start --address HEAD:6379` on the workers) and run "
                "the build on a node with --address auto, or leave --address out to run a "
                "cluster on this machine only."
            ) from None
        self.started = True
        return ray

    def close(self) -> None:
        """Shut Ray down if this session started or joined it."""
        if self.started:
            import ray

            ray.shutdown()
            self.started = False
