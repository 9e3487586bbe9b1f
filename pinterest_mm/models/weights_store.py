"""The hub models' pretrained weights: where the lab looks, download, pack and unpack.

The loaders (:mod:`.image`, :mod:`.transformer`, :mod:`.text`) read weights from a file named
by ``PINTEREST_MM_WEIGHTS_<NAME>``, from the local Hugging Face hub cache (timm and
transformers models) or from the gensim-data folder (word vectors). This module fills those
caches:

- :func:`weights_status` lists, per model, where the lab looks, whether it found the
  weights and their size;
- :func:`download` fetches them once on a machine with internet, into the caches the loaders
  read, resumably (an interrupted file continues with an HTTP range request) and with a
  progress bar; the hub's SHA-256 of a large file is checked;
- :func:`pack` copies what this machine holds into a folder with a ``manifest.json`` of
  SHA-256 checksums, and :func:`unpack` checks that folder and places the files into the
  caches of an air-gapped machine (or a cluster node), where the models then build without
  any variable set.

The HTTP side (addresses, resumable fetch, checksums) is :mod:`.weights_fetch`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from .registry import ModelSpec, list_models
from .weights import local_weights, weights_env_var
from .weights_fetch import (  # noqa: F401  (WeightsStoreError is raised here too)
    WeightsStoreError,
    fetch,
    gensim_data_url,
    hub_endpoint,
    sha256_file,
)

PACK_FORMAT = 1
UNKNOWN_REVISION = "0" * 40  # a hub that does not name its commit (a mirror): one fixed snapshot
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One file of a model's weights as a hub serves it.

    Attributes:
        model: Registry name.
        source: ``hf`` (a Hugging Face hub repo) or ``gensim`` (a gensim-data release).
        repo: Hub repo id, or gensim-data name.
        filename: File name in the repo / release.
        required: False for files a model may lack (``pytorch_model.bin`` when the repo has
            ``model.safetensors``, tokenizer files of the other tokenizer family).
    """

    model: str
    source: str
    repo: str
    filename: str
    required: bool = True


@dataclass(frozen=True)
class WeightsStatus:
    """Where a model's weights are on this machine.

    Attributes:
        model: Registry name.
        source: ``hf``, ``gensim``, ``packaged`` (ships in a package) or ``trained`` (made by
            the build from the dataset).
        looks: The places the lab looks, in order (variable, then cache).
        found: The file or folder the loader will read, or None.
        size: Bytes at ``found`` (all files of a folder); 0 when not found.
        thesis: One of the thesis's eleven models.
    """

    model: str
    source: str
    looks: tuple[str, ...]
    found: Path | None
    size: int
    thesis: bool


# ---------------------------------------------------------------------- what each model needs
_HF_FILES = (("config.json", True), ("model.safetensors", True), ("tokenizer.json", False),
             ("tokenizer_config.json", False), ("special_tokens_map.json", False),
             ("vocab.txt", False), ("vocab.json", False), ("merges.txt", False))


def remote_files(spec: ModelSpec) -> list[RemoteFile]:
    """Return the files a hub model's loader needs (empty for packaged and trained models)."""
    opts = spec.options
    if opts.get("backend") == "timm":
        repo = f"timm/{opts['timm_name']}"
        return [RemoteFile(spec.name, "hf", repo, "model.safetensors"),
                RemoteFile(spec.name, "hf", repo, "config.json", required=False)]
    if spec.family == "transformer" and opts.get("hf_id"):
        return [RemoteFile(spec.name, "hf", opts["hf_id"], f, req) for f, req in _HF_FILES]
    if opts.get("backend") == "gensim_data":
        name = opts["gensim_name"]
        return [RemoteFile(spec.name, "gensim", name, f"{name}.gz"),
                RemoteFile(spec.name, "gensim", name, "__init__.py", required=False)]
    return []


def hub_specs(specs: Iterable[ModelSpec] | None = None) -> list[ModelSpec]:
    """Return the models (of ``specs``, default all) whose weights come from a hub."""
    return [s for s in (list_models() if specs is None else specs) if remote_files(s)]


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder the loaders read (``HF_HUB_CACHE`` / ``HF_HOME``)."""
    import huggingface_hub.constants as hub_constants

    return Path(hub_constants.HF_HUB_CACHE)


def _repo_cache(repo: str) -> Path:
    return hub_cache_dir() / ("models--" + repo.replace("/", "--"))


def locate(spec: ModelSpec) -> Path | None:
    """Return the file or folder the loader of ``spec`` will read, or None (no network)."""
    path = local_weights(spec.name)
    if path is not None:
        return path if path.exists() else None
    opts = spec.options
    if opts.get("backend") == "timm":
        from .backbones import _timm_hub_file

        hit = _timm_hub_file(opts["timm_name"])
        return Path(hit) if hit else None
    if spec.family == "transformer" and opts.get("hf_id"):
        from .transformer import hf_snapshot_dir

        return hf_snapshot_dir(opts["hf_id"])
    if opts.get("backend") == "gensim_data":
        from .text import gensim_data_file

        return gensim_data_file(opts["gensim_name"])
    return None


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def weights_status(specs: Iterable[ModelSpec] | None = None) -> list[WeightsStatus]:
    """Return where every model's weights are (default: every registered model)."""
    from .text import gensim_base_dir

    rows = []
    for spec in list_models() if specs is None else specs:
        files = remote_files(spec)
        if not files:
            ok, why = spec.available()
            trained = spec.options.get("backend") in {"word2vec", "fasttext", "scratch-cnn"} or spec.kind == "classifier" and spec.family == "other"
            rows.append(WeightsStatus(spec.name, "trained" if trained else "packaged", (why,), None, 0, spec.thesis))
            continue
        env = weights_env_var(spec.name)
        if files[0].source == "hf":
            cache = f"hub cache {_repo_cache(files[0].repo)}"
        else:
            cache = f"gensim-data {gensim_base_dir() / files[0].repo}"
        found = locate(spec)
        rows.append(WeightsStatus(spec.name, files[0].source, (env, cache), found,
                                  _size(found) if found else 0, spec.thesis))
    return rows


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def format_weights_table(rows: list[WeightsStatus]) -> str:
    """Return a text table: model, thesis, found, size, and where it is or where the lab looks."""
    head = f"{'model':<26} {'thesis':<6} {'found':<5} {'size':>9}  where"
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.source in {"packaged", "trained"}:
            lines.append(f"{r.model:<26} {'yes' if r.thesis else '':<6} {'-':<5} {'':>9}  {r.source}: {r.looks[0]}")
            continue
        where = str(r.found) if r.found else "looks in " + ", then ".join(r.looks)
        lines.append(f"{r.model:<26} {'yes' if r.thesis else '':<6} {'yes' if r.found else 'no':<5} "
                     f"{_human(r.size) if r.found else '-':>9}  {where}")
    missing = [r.model for r in rows if r.source in {"hf", "gensim"} and r.found is None]
    if missing:
        lines.append("")
        lines.append(missing_hint(missing))
    return "\n".join(lines)


def missing_hint(models: list[str]) -> str:
    """How to get the weights of ``models`` (with internet, or from a machine that has them)."""
    thesis = {s.name for s in list_models() if s.thesis}
    names = "--profile thesis" if set(models) == thesis else "--models " + ",".join(models)
    return (
        f"Missing weights: {', '.join(models)}. With internet: `pinterest-mm weights download "
        f"{names}`. Without: on a machine that has them run `pinterest-mm weights pack "
        f"DIR {names}`, copy DIR here and run `pinterest-mm weights unpack DIR`; or "
        "point PINTEREST_MM_WEIGHTS_<NAME> at a local file or folder."
    )


# ---------------------------------------------------------------------- download
def _place_hf(repo: str, filename: str, revision: str) -> Path:
    """The cache path of a hub file at ``revision``; ``refs/main`` is set to it."""
    root = _repo_cache(repo)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    return root / "snapshots" / revision / filename


def _have_hf(repo: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, filename, cache_dir=str(hub_cache_dir())), str)


def download(specs: Iterable[ModelSpec], *, progress: bool = True) -> list[dict]:
    """Fetch the weights of ``specs`` (hub models; others are skipped) into the local caches.

    A model whose weights the lab already finds is skipped; an interrupted download
    continues where it stopped on the next call.

    Returns:
        One dict per hub model: ``model``, ``status`` (``downloaded``, ``present``) and
        ``files`` (names fetched).

    Raises:
        WeightsStoreError: The hub cannot be reached or a required file is missing there.
    """
    from .text import gensim_base_dir

    out = []
    for spec in hub_specs(specs):
        if locate(spec) is not None:
            out.append({"model": spec.name, "status": "present", "files": []})
            continue
        fetched = []
        revision = None
        for rf in remote_files(spec):
            if rf.source == "hf":
                if _have_hf(rf.repo, rf.filename):
                    continue
                url = f"{hub_endpoint()}/{rf.repo}/resolve/main/{rf.filename}"
                tmp = _repo_cache(rf.repo) / ".incoming" / rf.filename
            else:
                url = f"{gensim_data_url()}/{rf.repo}/{rf.filename}"
                tmp = gensim_base_dir() / rf.repo / rf.filename
                if tmp.exists():
                    continue
            try:
                headers = fetch(url, tmp, progress=progress, desc=f"{spec.name}: {rf.filename}")
            except FileNotFoundError:
                if rf.required:
                    raise WeightsStoreError(
                        f"The hub has no {rf.filename} for {spec.name} ({rf.repo}); nothing else was "
                        "changed. Check HF_ENDPOINT / PINTEREST_MM_GENSIM_DATA_URL.") from None
                continue
            if rf.source == "hf":
                revision = revision or headers.get("X-Repo-Commit") or UNKNOWN_REVISION
                final = _place_hf(rf.repo, rf.filename, revision)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
            fetched.append(rf.filename)
        out.append({"model": spec.name, "status": "downloaded", "files": fetched})
    return out


# ---------------------------------------------------------------------- pack / unpack
def _pack_files(spec: ModelSpec, found: Path) -> list[tuple[Path, RemoteFile, str]]:
    """(source file, where it goes, revision) of every file of ``spec``'s weights at ``found``."""
    first = remote_files(spec)[0]
    revision = UNKNOWN_REVISION
    if "snapshots" in found.parts:  # a hub-cache snapshot keeps its commit
        revision = found.parts[found.parts.index("snapshots") + 1]
    if first.source == "gensim":
        return [(found, RemoteFile(spec.name, "gensim", first.repo, found.name), revision)]
    if spec.options.get("backend") == "timm":
        from .backbones import timm_weights_file

        f = timm_weights_file(found)
        target = "model.safetensors" if f.suffix == ".safetensors" else "pytorch_model.bin"
        files = [(f, RemoteFile(spec.name, "hf", first.repo, target), revision)]
        if (f.parent / "config.json").is_file():
            files.append((f.parent / "config.json", RemoteFile(spec.name, "hf", first.repo, "config.json"), revision))
        return files
    return [(p, RemoteFile(spec.name, "hf", first.repo, p.relative_to(found).as_posix()), revision)
            for p in sorted(found.rglob("*")) if p.is_file() and not p.name.startswith(".")]


def pack(specs: Iterable[ModelSpec], out_dir: Path, *, progress: bool = True) -> dict:
    """Copy the weights this machine holds for ``specs`` into ``out_dir`` with checksums.

    ``out_dir/manifest.json`` lists every file (model, hub repo, name, size, SHA-256);
    models without weights here are listed under ``missing``.

    Raises:
        WeightsStoreError: ``out_dir`` holds another pack, or none of ``specs`` has weights here.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    if (out_dir / "manifest.json").exists():
        raise WeightsStoreError(f"{out_dir} already holds a weights pack; choose an empty folder.")
    plan, missing = [], []
    for spec in hub_specs(specs):
        found = locate(spec)
        if found is None:
            missing.append(spec.name)
        else:
            plan.extend(_pack_files(spec, found))
    if not plan:
        raise WeightsStoreError("No weights to pack: this machine has none of them. " + missing_hint(missing))
    entries = []
    with tqdm(total=sum(p.stat().st_size for p, _, _ in plan), unit="B", unit_scale=True,
              desc="pack", disable=not progress) as bar:
        for src, rf, revision in plan:
            rel = Path(rf.source) / rf.repo / rf.filename
            dest = out_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            h = hashlib.sha256()
            with open(src, "rb") as fi, open(dest, "wb") as fo:
                for chunk in iter(lambda: fi.read(_CHUNK), b""):
                    h.update(chunk)
                    fo.write(chunk)
                    bar.update(len(chunk))
            entries.append({**asdict(rf), "path": rel.as_posix(), "revision": revision,
                            "size": dest.stat().st_size, "sha256": h.hexdigest()})
    manifest = {"format": PACK_FORMAT, "files": entries, "missing": missing}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def unpack(in_dir: Path, *, progress: bool = True) -> list[str]:
    """Check a pack's files against its checksums, then place them into the local caches.

    Nothing is placed unless every file is whole; files already in the caches are replaced
    atomically. Returns the models placed.

    Raises:
        WeightsStoreError: No manifest, or a file is missing or differs from its checksum.
    """
    from tqdm.auto import tqdm

    from .text import gensim_base_dir

    in_dir = Path(in_dir)
    try:
        manifest = json.loads((in_dir / "manifest.json").read_text())
        entries = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise WeightsStoreError(
            f"{in_dir} is not a weights pack (no readable manifest.json); make one with "
            "`pinterest-mm weights pack DIR`.") from None
    bad = []
    with tqdm(total=sum(int(e["size"]) for e in entries), unit="B", unit_scale=True, desc="check",
              disable=not progress) as bar:
        for e in entries:
            src = in_dir / e["path"]
            if ".." in Path(e["path"]).parts or ".." in Path(e["filename"]).parts or ".." in Path(e["repo"]).parts:
                bad.append(f"{e['path']} (a path outside the pack)")
            elif not src.is_file() or src.stat().st_size != int(e["size"]):
                bad.append(f"{e['path']} (missing or of another size)")
            elif sha256_file(src) != e["sha256"]:
                bad.append(f"{e['path']} (checksum differs)")
            bar.update(int(e["size"]))
    if bad:
        raise WeightsStoreError(
            f"The weights pack is damaged, nothing was placed: {'; '.join(bad[:5])}. Copy it again.")
    for e in entries:
        if e["source"] == "hf":
            dest = _place_hf(e["repo"], e["filename"], e.get("revision") or UNKNOWN_REVISION)
        else:
            dest = gensim_base_dir() / e["repo"] / e["filename"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.unpacking")
        shutil.copyfile(in_dir / e["path"], tmp)
        os.replace(tmp, dest)
    return sorted({e["model"] for e in entries})
