"""`pinterest-mm weights`: listing, download from a hub (a local fake hub over HTTP), resuming,
pack/unpack to an air-gapped machine with checksums, and build profiles."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from thesis_weights import TIMM_ARCH, place_in_hub_cache, save_timm, save_tiny_transformer, save_vectors, timm_state_dict

from pinterest_mm.cli import main
from pinterest_mm.models import weights_store as ws
from pinterest_mm.models.registry import get_model, list_models, profile_models, weights_env_var

THESIS = [s.name for s in list_models() if s.thesis]
COMMIT = "c0ffee" + "0" * 34


class FakeHub:
    """A local hub over HTTP serving ``root``: ``/<repo>/resolve/main/<file>`` redirects (with
    the commit and SHA-256 headers of the hub) to ``/files/hf/<repo>/<file>``; gensim-data
    files are ``/gensim/<name>/<file>``. Range requests are honoured; ``cut_after`` bytes
    cut the next answer of a file short, once (a dropped connection)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, str | None]] = []
        self.cut_after: dict[str, int] = {}
        self.bad_sha: set[str] = set()
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                hub.requests.append((self.path, self.headers.get("Range")))
                if "/resolve/main/" in self.path:
                    repo, fname = self.path.lstrip("/").split("/resolve/main/")
                    f = hub.root / "hf" / repo / fname
                    if not f.is_file():
                        return self.send_error(404)
                    sha = hashlib.sha256(f.read_bytes()).hexdigest()
                    self.send_response(302)
                    self.send_header("Location", f"/files/hf/{repo}/{fname}")
                    self.send_header("X-Repo-Commit", COMMIT)
                    self.send_header("X-Linked-Etag", '"' + ("0" * 64 if fname in hub.bad_sha else sha) + '"')
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                rel = self.path.removeprefix("/files/")
                f = hub.root / rel
                if not f.is_file():
                    return self.send_error(404)
                data = f.read_bytes()
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        return self.send_error(416)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                cut = hub.cut_after.pop(f.name, None)
                self.wfile.write(body[:cut] if cut is not None else body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """An empty machine: its own hub cache and gensim-data folder, no weights variables."""
    import huggingface_hub.constants as hub_constants

    def switch(name: str) -> Path:
        root = tmp_path / name
        monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(root / "hub"))
        monkeypatch.setenv("GENSIM_DATA_DIR", str(root / "gensim-data"))
        for model in THESIS:
            monkeypatch.delenv(weights_env_var(model), raising=False)
        return root

    monkeypatch.delenv("PINTEREST_MM_DOWNLOAD", raising=False)
    monkeypatch.setenv("PINTEREST_MM_HOME", str(tmp_path / "home"))
    switch("a")
    return switch


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A fake hub holding effnetv2-b1 (real architecture), a tiny BERT and GloVe-Twitter."""
    root = tmp_path / "fakehub"
    state = timm_state_dict(TIMM_ARCH["effnetv2-b1"], seed=3)
    save_timm(state, root / "hf" / "timm" / TIMM_ARCH["effnetv2-b1"], "folder")
    save_tiny_transformer("bert", root / "hf" / "bert-base-uncased")
    save_vectors(root / "gensim" / "glove-twitter-200" / "glove-twitter-200.gz", "word2vec-text-gz", 200, seed=4)
    hub = FakeHub(root)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("PINTEREST_MM_GENSIM_DATA_URL", hub.url + "/files/gensim")
    hub.state = state
    yield hub
    hub.close()


def test_listing_says_where_it_looks_and_what_it_found(machine, tmp_path, monkeypatch, capsys):
    root = machine("a")
    f = tmp_path / "w" / "convnext.safetensors"
    f.parent.mkdir()
    f.write_bytes(b"x" * 1234)
    monkeypatch.setenv(weights_env_var("convnext-tiny"), str(f))
    place_in_hub_cache(root / "hub", "timm/" + TIMM_ARCH["effnetv2-b1"], {"model.safetensors": f})
    save_vectors(root / "gensim-data" / "word2vec-google-news-300" / "word2vec-google-news-300.gz", "word2vec-bin-gz", 300)
    rows = {r.model: r for r in ws.weights_status()}
    assert rows["convnext-tiny"].found == f and rows["convnext-tiny"].size == 1234
    assert rows["effnetv2-b1"].found is not None and rows["effnetv2-b1"].found.name == "model.safetensors"
    assert rows["word2vec-google-news-300"].found.name == "word2vec-google-news-300.gz"
    assert rows["bert-base"].found is None and "PINTEREST_MM_WEIGHTS_BERT_BASE" in rows["bert-base"].looks
    assert rows["effnet-lite0"].source == "packaged" and rows["word2vec-train"].source == "trained"
    assert main(["weights"]) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.startswith("convnext-tiny "))
    assert " yes " in line and "1.2 KB" in line
    assert "pinterest-mm weights download --models convnext-small" in text
    assert main(["weights", "list", "--models", "bert-base", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["weights"]
    assert [(r["model"], r["found"]) for r in listed] == [("bert-base", False)]


def test_download_from_a_hub_resumes_and_fills_the_caches_the_loaders_read(machine, fake_hub, capsys):
    root = machine("a")
    names = ["effnetv2-b1", "bert-base", "glove-twitter-200"]
    # The connection drops 1 MB into the EfficientNetV2 weights: the command says so.
    fake_hub.cut_after["model.safetensors"] = 1 << 20
    with pytest.raises(ws.WeightsStoreError, match="run the command again"):
        ws.download([get_model(n) for n in names], progress=False)
    part = root / "hub" / ("models--timm--" + TIMM_ARCH["effnetv2-b1"]) / ".incoming" / ".model.safetensors.incomplete"
    assert part.stat().st_size == 1 << 20
    assert not get_model("effnetv2-b1").available()[0]
    # Run again: it continues from the partial file with a range request.
    fake_hub.requests.clear()
    results = ws.download([get_model(n) for n in names], progress=False)
    assert [r["status"] for r in results] == ["downloaded"] * 3
    ranged = [r for p, r in fake_hub.requests if p == f"/files/hf/timm/{TIMM_ARCH['effnetv2-b1']}/model.safetensors"]
    assert ranged == [f"bytes={1 << 20}-"]  # only the rest was asked for
    src = fake_hub.root / "hf" / "timm" / TIMM_ARCH["effnetv2-b1"] / "model.safetensors"
    got = ws.locate(get_model("effnetv2-b1"))
    assert got.read_bytes() == src.read_bytes() and COMMIT in got.parts
    for n in names:
        assert get_model(n).available()[0], n
    # The loaders read what was downloaded: the weights, the folder, the vectors.
    net = get_model("effnetv2-b1").create(image_size=32).torch_backbone("cpu").net
    key = "conv_stem.weight"
    assert np.array_equal(net.state_dict()[key].numpy(), fake_hub.state[key].numpy())
    src_bert, _ = get_model("bert-base").create().source()
    assert Path(src_bert).name == COMMIT and (Path(src_bert) / "tokenizer.json").exists()
    X = get_model("glove-twitter-200").create().featurize(texts=["football team", "zzz"])
    assert X.shape == (2, 200) and np.abs(X[0]).sum() > 0 and not X[1].any()
    # A second download finds everything and fetches nothing.
    fake_hub.requests.clear()
    assert main(["weights", "download", "--models", ",".join(names), "--quiet"]) == 0
    assert capsys.readouterr().out.count("present") == 3
    assert fake_hub.requests == []


def test_download_rejects_a_corrupt_file_and_an_unreachable_hub(machine, fake_hub, monkeypatch):
    root = machine("a")
    fake_hub.bad_sha.add("model.safetensors")
    with pytest.raises(ws.WeightsStoreError, match="corrupt"):
        ws.download([get_model("effnetv2-b1")], progress=False)
    assert ws.locate(get_model("effnetv2-b1")) is None
    assert not list((root / "hub").rglob("*.incomplete"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(ws.WeightsStoreError, match="weights pack DIR"):
        ws.download([get_model("effnetv2-b1")], progress=False)


def test_pack_and_unpack_move_the_weights_to_an_air_gapped_machine(machine, tmp_path, monkeypatch, capsys):
    root = machine("a")
    state = timm_state_dict(TIMM_ARCH["effnetv2-b1"], seed=5)
    monkeypatch.setenv(weights_env_var("effnetv2-b1"), str(save_timm(state, tmp_path / "w", "bin")))
    place_in_hub_cache(root / "hub", "bert-base-uncased",
                       {p.name: p for p in save_tiny_transformer("bert", tmp_path / "bert").iterdir()}, revision=COMMIT)
    save_vectors(root / "gensim-data" / "glove-twitter-200" / "glove-twitter-200.gz", "word2vec-text-gz", 200)
    pack_dir = tmp_path / "pack"
    assert main(["weights", "pack", str(pack_dir), "--profile", "thesis", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Packed 3 models" in out and "roberta-base" in out
    manifest = json.loads((pack_dir / "manifest.json").read_text())
    for e in manifest["files"]:
        assert hashlib.sha256((pack_dir / e["path"]).read_bytes()).hexdigest() == e["sha256"]
    assert {e["model"] for e in manifest["files"]} == {"effnetv2-b1", "bert-base", "glove-twitter-200"}

    machine("b")  # the air-gapped machine: empty caches, no variables
    assert not get_model("effnetv2-b1").available()[0]
    bad = next(e for e in manifest["files"] if e["filename"] == "pytorch_model.bin")
    blob = bytearray((pack_dir / bad["path"]).read_bytes())
    blob[-1] ^= 0xFF
    (pack_dir / bad["path"]).write_bytes(bytes(blob))
    assert main(["weights", "unpack", str(pack_dir), "--quiet"]) == 2
    assert "checksum differs" in capsys.readouterr().err
    assert not (tmp_path / "b" / "hub").exists() and not (tmp_path / "b" / "gensim-data").exists()
    blob[-1] ^= 0xFF
    (pack_dir / bad["path"]).write_bytes(bytes(blob))
    assert main(["weights", "unpack", str(pack_dir), "--quiet"]) == 0
    for n in ("effnetv2-b1", "bert-base", "glove-twitter-200"):
        assert get_model(n).available()[0], n
    net = get_model("effnetv2-b1").create(image_size=32).torch_backbone("cpu").net
    assert np.array_equal(net.state_dict()["conv_stem.weight"].numpy(), state["conv_stem.weight"].numpy())
    src, _ = get_model("bert-base").create().source()
    assert Path(src).name == COMMIT  # the snapshot keeps its hub commit


def test_profiles_and_build_profile_thesis_says_what_is_missing(machine, tiny_store, monkeypatch, capsys):
    assert [s.name for s in profile_models("thesis")] == THESIS and len(THESIS) == 11
    assert all(s.offline for s in profile_models("offline"))
    assert len(profile_models("all")) == len(list_models())
    with pytest.raises(ValueError, match="Profiles: offline, thesis, all"):
        profile_models("paper")
    monkeypatch.setenv("PINTEREST_MM_HOME", str(tiny_store.root))
    assert main(["build", "tiny", "--profile", "thesis", "--quiet"]) == 2  # nothing can build here
    err = capsys.readouterr().err
    assert "11 of the 11 models of profile 'thesis' have no weights here" in err
    assert "pinterest-mm weights download --profile thesis" in err and "weights unpack DIR" in err
    assert main(["build", "tiny", "--profile", "thesis", "--models", "bert-base"]) == 2
    assert "not both" in capsys.readouterr().err
