"""What one model of the zoo is: :class:`ModelSpec` (the registry holds one per model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..config import FAMILIES

MODALITIES = ("image", "text")
KINDS = ("features", "classifier")


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the model zoo.

    Attributes:
        name: Registry name (also the store's model name).
        modality: ``image`` or ``text``.
        family: One of :data:`FAMILIES`.
        dim: Feature dimension (None for end-to-end classifiers or data-dependent sizes).
        source: Where the weights come from, for people.
        offline: True when the weights ship with an installed package (default set).
        kind: ``features`` (features + logistic regression) or ``classifier`` (end-to-end).
        factory: ``factory(spec, **options)`` returns the model object.
        check: ``check(spec) -> (bool, reason)``; no network.
        options: Fixed constructor options (backbone name, image size, ...).
        thesis: True for the thesis's own models (Tables 3.2-3.4).
    """

    name: str
    modality: str
    family: str
    dim: int | None
    source: str
    offline: bool
    kind: str
    factory: Callable[..., Any] = field(repr=False, compare=False)
    check: Callable[["ModelSpec"], tuple[bool, str]] = field(repr=False, compare=False)
    options: dict = field(default_factory=dict, compare=False)
    thesis: bool = False

    def __post_init__(self) -> None:
        assert self.modality in MODALITIES, self.modality
        assert self.family in FAMILIES, self.family
        assert self.kind in KINDS, self.kind

    def available(self) -> tuple[bool, str]:
        """Return (usable now, reason) without any network access."""
        try:
            return self.check(self)
        except Exception as exc:  # a broken package must not break listing
            return False, f"check failed: {exc}"

    def create(self, **options: Any) -> Any:
        """Build the model object: a :class:`~.base.FeatureModel` (kind ``features``) or a
        :class:`~.base.Classifier` (kind ``classifier``)."""
        merged = {**self.options, **options}
        return self.factory(self, **merged)
