"""Per-dataset locks: one build or replace of a dataset at a time, across processes.

A build writes a dataset's feature chunks, checkpoints and probabilities over minutes or hours;
a second build of the same dataset would write the same files, and ``import --replace`` would
delete them and swap the pins under it. :func:`dataset_lock` takes an exclusive, non-blocking
OS lock (``flock``) on ``<store>/locks/<dataset>.lock`` for the duration of such a job; a
second job of that dataset is refused at once with who holds it, instead of waiting for hours.

The lock is re-entrant within a thread (an import holds it and writes the dataset, which
takes it again); another thread of the same process is refused like another process. The OS
drops the lock when its process ends, however it ends (a SIGKILL included), so a killed build
never leaves a stale lock behind. The lock file itself stays (removing it would race with the
next job); while held, it names the holder's pid, job and start time for messages. Different
datasets never block each other; readers (the app, ``report``) never take it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False


_held: dict[tuple[str, int], int] = {}  # (lock file, thread) -> nesting depth
_held_guard = threading.Lock()


class DatasetBusy(RuntimeError):
    """Another process builds or replaces the dataset; the message names it and what to do.

    Attributes:
        holder: What the other process wrote in the lock file (``pid``, ``job``, ``since``;
            empty when it could not be read).
    """

    def __init__(self, message: str, holder: dict) -> None:
        super().__init__(message)
        self.holder = holder


def lock_path(root: Path, dataset: str) -> Path:
    """Return the lock file of ``dataset`` in the store folder ``root``."""
    return Path(root) / "locks" / f"{dataset}.lock"


def _read_holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        holder = json.loads(os.read(fd, 4096).decode() or "{}")
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def describe_holder(holder: dict) -> str:
    """Return e.g. ``"a build (pid 4242, since 2026-12-01 05:58 UTC)"`` for messages."""
    job = holder.get("job") or "a build or import"
    bits = [f"pid {holder['pid']}"] if holder.get("pid") else []
    if holder.get("since"):
        bits.append(f"since {holder['since']}")
    return f"{job} ({', '.join(bits)})" if bits else job


@contextmanager
def dataset_lock(root: Path, dataset: str, job: str) -> Iterator[None]:
    """Hold the exclusive lock of ``dataset`` while the block runs.

    Args:
        root: The store folder.
        dataset: The dataset's (validated) name.
        job: What this process does, for the other's message, e.g. ``"a build"``.

    Raises:
        DatasetBusy: Another process holds the lock (nothing is waited for).
        OSError: The lock file cannot be created (e.g. a read-only store folder).
    """
    path = lock_path(root, dataset)
    key = (str(path.resolve()), threading.get_ident())
    with _held_guard:
        if key in _held:  # this process holds it already
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    try:
        if not _try_lock(fd):
            holder = _read_holder(fd)
            raise DatasetBusy(
                f"Dataset {dataset!r} is busy: {describe_holder(holder)} is running on it. Two "
                "jobs on one dataset would overwrite each other's files, so this one did not "
                "start and changed nothing. Wait for the other to finish (or stop it), then run "
                "this command again; a build reuses every model the other one finished.",
                holder,
            )
        since = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps({"pid": os.getpid(), "job": job, "since": since}).encode())
        with _held_guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
            os.ftruncate(fd, 0)  # no stale holder shown to the next one (a kill leaves it: fine)
    finally:
        os.close(fd)  # closing the descriptor releases the lock
