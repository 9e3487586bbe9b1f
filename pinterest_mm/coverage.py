"""Unknown words: how much of a dataset's text a text model's vocabulary knows.

A word-vector model averages the vectors of the words it knows; a pin with no known word gets
the zero vector, so every such pin is predicted alike (the classifier's prior). A transformer
maps words its tokenizer cannot split to ``[UNK]``. For every built word-embedding and
transformer model, :func:`text_coverage` counts, over all pins of the dataset:

- pins with text, and of those the pins with no known word (word vectors) or only unknown
  tokens (transformers);
- words (tokens), and of those the unknown ones.

:func:`unknown_warning` flags a model when at least :data:`PINS_WARN` of the pins with text have
no known word or at least :data:`TOKENS_WARN` of the tokens are unknown. Why these levels: an
all-unknown pin is predicted from the zero vector alone, one class for all of them, so 10 % of
such pins cap the accuracy near 0.9 + 0.1 / C and show that the vocabulary does not fit the
language (on the English demo GloVe misses under 1 % of pins); a quarter of the words dropped
removes enough of a short description that its average vector stands for another text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

PINS_WARN = 0.10
TOKENS_WARN = 0.25


@dataclass(frozen=True)
class Coverage:
    """One text model's unknown words over a dataset's pins.

    Attributes:
        model: Model name.
        unit: ``word`` (word vectors) or ``token`` (a transformer's tokenizer).
        pins: Pins of the dataset.
        pins_with_text: Pins whose cleaned text has at least one word / token.
        pins_all_unknown: Pins with text whose every word / token is unknown.
        tokens: Words / tokens of all pins.
        tokens_unknown: Unknown words / ``[UNK]`` tokens.
    """

    model: str
    unit: str
    pins: int
    pins_with_text: int
    pins_all_unknown: int
    tokens: int
    tokens_unknown: int

    @property
    def share_pins(self) -> float:
        """Share of the pins with text that have no known word (0 when no pin has text)."""
        return self.pins_all_unknown / self.pins_with_text if self.pins_with_text else 0.0

    @property
    def share_tokens(self) -> float:
        """Share of unknown words / tokens (0 when there are none)."""
        return self.tokens_unknown / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict:
        """JSON-ready, with both shares and the warning (or None)."""
        return {**asdict(self), "share_pins": self.share_pins, "share_tokens": self.share_tokens,
                "warning": unknown_warning(self)}


def unknown_warning(c: Coverage) -> str | None:
    """The warning of a model whose vocabulary misses much of the text, else None."""
    if c.share_pins < PINS_WARN and c.share_tokens < TOKENS_WARN:
        return None
    return (f"{c.model} knows no {c.unit} of {c.pins_all_unknown:,} of the {c.pins_with_text:,} pins with text "
            f"({100 * c.share_pins:.1f} %) and misses {100 * c.share_tokens:.1f} % of all {c.unit}s: those pins "
            f"get {'the zero vector' if c.unit == 'word' else 'only [UNK] tokens'} and are predicted alike. Its "
            f"vocabulary does not fit this text's language; prefer a model trained on it (word2vec-train, "
            f"fasttext-train, tfidf-lr) or a multilingual one (e5-small). Warned at >= {100 * PINS_WARN:.0f} % of "
            f"pins or >= {100 * TOKENS_WARN:.0f} % of {c.unit}s.")


def count_words(model: str, texts: list[str], known) -> Coverage:
    """Coverage of whitespace-split cleaned texts under a ``known(word) -> bool`` lookup."""
    with_text = all_unknown = tokens = unknown = 0
    for t in texts:
        words = str(t or "").split()
        if not words:
            continue
        miss = sum(1 for w in words if not known(w.lower()))
        with_text += 1
        all_unknown += miss == len(words)
        tokens += len(words)
        unknown += miss
    return Coverage(model, "word", len(texts), with_text, all_unknown, tokens, unknown)


def count_tokens(model: str, ids: list[list[int]], unk_id: int | None, special: set[int]) -> Coverage:
    """Coverage of tokenized texts (ids without padding): ``[UNK]`` among the non-special tokens."""
    with_text = all_unknown = tokens = unknown = 0
    for seq in ids:
        body = [i for i in seq if i not in special]
        if not body:
            continue
        miss = sum(1 for i in body if unk_id is not None and i == unk_id)
        with_text += 1
        all_unknown += miss == len(body)
        tokens += len(body)
        unknown += miss
    return Coverage(model, "token", len(ids), with_text, all_unknown, tokens, unknown)


def _word_vectors(store, dataset: str, name: str, options: dict):
    from .models.registry import get_model

    model = get_model(name).create(**options)
    if model.trained:
        model.load_state(store.checkpoints_dir(dataset, name))
        return model.vectors
    return model._load_pretrained()


def _tokenizer(name: str, options: dict):
    from transformers import AutoTokenizer

    from .models.registry import get_model

    src, kw = get_model(name).create(**options).source()
    return AutoTokenizer.from_pretrained(src, **kw)


def text_coverage(store, dataset: str, models: list[dict]) -> dict[str, Coverage]:
    """Unknown words of every built word-embedding and transformer model of ``dataset``.

    Args:
        store: The store.
        dataset: The dataset.
        models: Built models as dicts with ``name``, ``family`` and ``params`` (``options``).

    Returns:
        Model -> :class:`Coverage`; models whose vocabulary cannot be loaded here (weights gone)
        are left out.
    """
    from .models.weights import WeightsUnavailable

    pins = store.pins(dataset).sort_values("row")
    out: dict[str, Coverage] = {}
    for rec in models:
        name, fam, options = rec["name"], rec["family"], (rec.get("params") or {}).get("options") or {}
        try:
            if fam == "word_embedding":
                vec = _word_vectors(store, dataset, name, options)
                out[name] = count_words(name, pins["text_words"].tolist(), lambda w: vec.vector(w) is not None)
            elif fam == "transformer":
                tok = _tokenizer(name, options)
                texts = [str(t or "") for t in pins["text_transformer"]]
                ids = tok(texts, add_special_tokens=False, truncation=False)["input_ids"]
                out[name] = count_tokens(name, ids, tok.unk_token_id, set(tok.all_special_ids) - {tok.unk_token_id})
        except (WeightsUnavailable, OSError, ValueError, ImportError):  # weights gone here: the build says why
            continue
    return out


def dataset_coverage(store, dataset: str) -> dict[str, dict]:
    """Model -> :meth:`Coverage.to_dict` of every built word-embedding and transformer model of
    ``dataset`` (what the Models and Compare pages warn from)."""
    recs = [{"name": r["model"], "family": r["family"], "params": r["params"]}
            for r in store.models(dataset).to_dict("records")]
    return {m: c.to_dict() for m, c in text_coverage(store, dataset, recs).items()}


def coverage_warnings(store, dataset: str, models: list[str]) -> list[str]:
    """The unknown-words warnings of those of ``models`` (built word-embedding or transformer
    models of ``dataset``) whose vocabulary misses much of the text (what ``build`` prints)."""
    wanted = set(models)
    recs = [{"name": r["model"], "family": r["family"], "params": r["params"]}
            for r in store.models(dataset).to_dict("records") if r["model"] in wanted]
    return [w for c in text_coverage(store, dataset, recs).values() if (w := unknown_warning(c))]
