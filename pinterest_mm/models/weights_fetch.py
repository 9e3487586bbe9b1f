"""Resumable HTTP downloads of weights files from a model hub (stdlib ``urllib``, no extra package).

The hub's address is ``HF_ENDPOINT`` (Hugging Face's own setting, else huggingface_hub's
default); gensim-data's is ``PINTEREST_MM_GENSIM_DATA_URL`` (a mirror), else gensim's own
``DOWNLOAD_BASE_URL``. Used by :mod:`.weights_store`.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

_CHUNK = 1 << 20


class WeightsStoreError(RuntimeError):
    """A download, pack or unpack could not be done; the message says why and what to do."""


def hub_endpoint() -> str:
    """The Hugging Face hub's address (``HF_ENDPOINT``, else huggingface_hub's default)."""
    import huggingface_hub.constants as hub_constants

    return os.environ.get("HF_ENDPOINT", hub_constants.ENDPOINT).rstrip("/")


def gensim_data_url() -> str:
    """gensim-data's release address (``PINTEREST_MM_GENSIM_DATA_URL``, else gensim's own)."""
    env = os.environ.get("PINTEREST_MM_GENSIM_DATA_URL")
    if env:
        return env.rstrip("/")
    from gensim.downloader import DOWNLOAD_BASE_URL

    return DOWNLOAD_BASE_URL


class _KeepRedirectHeaders(urllib.request.HTTPRedirectHandler):
    """Follow redirects, keeping the hub's headers of the first answer (commit, checksum)."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        for key in ("X-Repo-Commit", "X-Linked-Etag", "X-Linked-Size"):
            if headers.get(key) and key not in self.seen:
                self.seen[key] = headers[key]
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(url: str, dest: Path, *, progress: bool = True, desc: str = "") -> dict[str, str]:
    """Download ``url`` to ``dest`` resumably and return the hub's headers.

    The bytes go to ``.<name>.incomplete`` next to ``dest``; a later call continues from its
    size with a range request (a server that ignores ranges restarts it). ``dest`` appears
    only complete (``os.replace``), and its SHA-256 is checked when the hub gives one.

    Raises:
        FileNotFoundError: The server has no such file (HTTP 404).
        WeightsStoreError: The server cannot be reached, or the file came short or corrupt.
    """
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.incomplete")
    have = part.stat().st_size if part.exists() else 0
    keep = _KeepRedirectHeaders()
    opener = urllib.request.build_opener(keep)
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = opener.open(req, timeout=60)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise FileNotFoundError(url) from None
        if exc.code == 416 and have:  # nothing left to send: the partial file is whole
            resp = None
        else:
            raise WeightsStoreError(f"The download of {dest.name} failed: HTTP {exc.code} {exc.reason}.") from None
    except (urllib.error.URLError, OSError) as exc:
        raise WeightsStoreError(
            f"Cannot reach {url.split('/')[2] if '//' in url else url} to download {dest.name} "
            f"({getattr(exc, 'reason', exc)}). Without internet, bring the weights with "
            "`pinterest-mm weights pack DIR` on a machine that has them and `pinterest-mm weights "
            "unpack DIR` here."
        ) from None
    headers = dict(keep.seen)
    if resp is not None:
        with resp:
            for key in ("X-Repo-Commit", "X-Linked-Etag", "ETag"):
                if resp.headers.get(key) and key not in headers:
                    headers[key] = resp.headers[key]
            if resp.status != 206:  # a full answer: start over
                have = 0
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            with open(part, "ab" if have else "wb") as fh, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=desc or dest.name,
                disable=not progress,
            ) as bar:
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    fh.write(chunk)
                    bar.update(len(chunk))
            if total is not None and part.stat().st_size != total:
                raise WeightsStoreError(
                    f"The download of {dest.name} stopped at {part.stat().st_size:,} of {total:,} "
                    "bytes; run the command again to continue it.")
    expected = headers.get("X-Linked-Etag", "").strip('"').removeprefix("W/").strip('"')
    if re.fullmatch(r"[0-9a-f]{64}", expected) and sha256_file(part) != expected:
        part.unlink()
        raise WeightsStoreError(f"The download of {dest.name} is corrupt (SHA-256 differs); run it again.")
    os.replace(part, dest)
    return headers


def sha256_file(path: Path) -> str:
    """Return the SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
