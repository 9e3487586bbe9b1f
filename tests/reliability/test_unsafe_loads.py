"""Nothing deserializes code from a file a user can write without saying so.

torch checkpoints are loaded with ``weights_only=True`` (tensors only) or as safetensors.
What a build fits is saved without pickles (:mod:`pinterest_mm.models.checkpoints`:
skops for scikit-learn, ``.npy`` + JSON for word vectors). The one pickle-based load left is
a gensim ``.kv`` file that the operator names in ``PINTEREST_MM_WEIGHTS_<NAME>``: listed here
with its reason.
"""

from __future__ import annotations

import re
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "pinterest_mm"

UNSAFE = re.compile(r"\bpickle\.loads?\(|\bjoblib\.load\(|\bcloudpickle\b|\bdill\.load|read_pickle\(|"
                    r"allow_pickle\s*=\s*True|yaml\.load\(|\bKeyedVectors\.load\(|\.from_pretrained\(.*trust_remote_code\s*=\s*True|(?<![.\w])eval\(|(?<![.\w])exec\(")

# file -> number of allowed hits, and why each is acceptable
ALLOWED = {
    "models/text.py": (1, "a gensim .kv/.model vectors file that the operator names in "
                          "PINTEREST_MM_WEIGHTS_<NAME> (word2vec text/.bin files are not pickles)"),
}


def _hits(pattern: re.Pattern) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in sorted(PKG.rglob("*.py")):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code):
                found.setdefault(str(f.relative_to(PKG)), []).append(f"{i}: {line.strip()}")
    return found


def test_every_torch_load_is_weights_only():
    """Every ``torch.load`` call passes ``weights_only=True``."""
    bad = []
    for f in sorted(PKG.rglob("*.py")):
        text = f.read_text()
        for m in re.finditer(r"torch\.load\(", text):
            call = text[m.start(): text.find(")", m.start()) + 1]
            if "weights_only=True" not in call:
                bad.append(f"{f.relative_to(PKG)}: {call}")
    assert not bad, bad


def test_no_unexpected_pickle_loads():
    """Pickle-based loads appear only where listed in ALLOWED (with the reason)."""
    hits = _hits(UNSAFE)
    unexpected = {f: h for f, h in hits.items() if f not in ALLOWED or len(h) != ALLOWED[f][0]}
    assert not unexpected, unexpected


def test_transformer_checkpoints_are_safetensors():
    """Fine-tuned transformer weights are written and read as safetensors."""
    text = (PKG / "models" / "transformer.py").read_text()
    assert "safetensors" in text and "torch.save(model" not in text
