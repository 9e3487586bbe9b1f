"""Watching the Ray engine's shards during a resumed build (shared by the Ray engine tests)."""

from __future__ import annotations

from pathlib import Path


def shard_stamps(paths) -> dict[str, tuple[int, int]]:
    """Shard file name -> (inode, mtime ns): changes when a shard is rewritten or replaced."""
    return {Path(p).name: (Path(p).stat().st_ino, Path(p).stat().st_mtime_ns) for p in paths}


def watch_resume(monkeypatch, kept: dict[str, tuple[int, int]]) -> tuple[list[str], dict]:
    """Record the shards the next build writes, and the stamps of ``kept`` just before assembly.

    Returns ``(written, seen)``, filled in while the build runs: the names of the shards written
    and :func:`shard_stamps` of the kept shards as the assembly finds them.
    """
    from pinterest_mm.engines import ray_pipeline

    written: list[str] = []
    seen: dict = {}
    real_write, real_assemble = ray_pipeline.write_shard, ray_pipeline.assemble

    def recording_write(path, *args, **kwargs):
        written.append(Path(path).name)
        return real_write(path, *args, **kwargs)

    def checking_assemble(folder, *args, **kwargs):
        seen.update(shard_stamps(Path(folder) / name for name in kept))
        return real_assemble(folder, *args, **kwargs)

    monkeypatch.setattr(ray_pipeline, "write_shard", recording_write)
    monkeypatch.setattr(ray_pipeline, "assemble", checking_assemble)
    return written, seen
