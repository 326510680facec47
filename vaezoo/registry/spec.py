"""VariantSpec: a named recipe of one part of each kind, with default options."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

KINDS = ("encoder", "posterior", "decoder", "prior", "likelihood", "objective")


@dataclass(frozen=True)
class VariantSpec:
    """What a variant is made of. Options map a kind to the keyword arguments of that part's factory.

    `num_classes` > 0 makes a conditional VAE: its encoder and decoder take a one-hot label.
    """

    encoder: str
    decoder: str
    prior: str = "standard-normal"
    likelihood: str = "bernoulli"
    objective: str = "elbo"
    posterior: str = "gaussian"
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    latent_dim: int = 16
    input_shape: tuple[int, ...] = (1, 28, 28)
    num_classes: int = 0

    def __post_init__(self) -> None:
        for kind in KINDS:
            value = getattr(self, kind)
            if not isinstance(value, str) or not value:
                raise ValueError(f"VariantSpec.{kind} must be a component name, got {value!r}")
        unknown = set(self.options) - set(KINDS)
        if unknown:
            raise ValueError(f"VariantSpec.options has unknown kinds {sorted(unknown)}; expected some of {KINDS}")
        if not isinstance(self.latent_dim, int) or self.latent_dim < 1:
            raise ValueError(f"VariantSpec.latent_dim must be a positive int, got {self.latent_dim!r}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise ValueError(f"VariantSpec.num_classes must be a non-negative int, got {self.num_classes!r}")
        object.__setattr__(self, "input_shape", tuple(self.input_shape))

    @classmethod
    def coerce(cls, recipe: VariantSpec | dict[str, Any]) -> VariantSpec:
        """Accept a VariantSpec or a dict of its fields (what a plugin's `register` may pass)."""
        if isinstance(recipe, cls):
            return recipe
        if not isinstance(recipe, dict):
            raise TypeError(f"a variant recipe must be a VariantSpec or a dict, got {type(recipe).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(recipe) - names
        if unknown:
            raise ValueError(f"variant recipe has unknown fields {sorted(unknown)}; accepted: {sorted(names)}")
        return cls(**recipe)

    def component(self, kind: str) -> str:
        """The name of the part of `kind`."""
        return getattr(self, kind)
