"""The plugin contract: the hooks through which built-in and third-party plugins contribute parts to the zoo.

Every hook receives a `register` callback and returns nothing.

Components (encoder, decoder, prior, likelihood, objective) are registered as
``register(name, factory, description=None, tags=())``, where `factory` is a callable (usually a class)
that builds the part; its keyword parameters are the options a user may override:

- encoder:    ``factory(input_shape, latent_dim, **options) -> nn.Module``; ``forward(x)`` returns
  ``(mu, logvar)``, each shaped ``[B, latent_dim]``.
- decoder:    ``factory(latent_dim, output_shape, **options) -> nn.Module``; ``forward(z)`` returns the
  likelihood's parameters shaped ``[B, *output_shape]``.
- prior:      ``factory(latent_dim, **options) -> vaezoo.Prior``.
- likelihood: ``factory(input_shape, **options) -> vaezoo.Likelihood``.
- objective:  ``factory(**options) -> vaezoo.Objective``.

Variants are registered as ``register(name, recipe, description=None, tags=())``, where `recipe` is a
``vaezoo.VariantSpec`` or a dict with its fields.
"""
from __future__ import annotations

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("vaezoo")
hookimpl = pluggy.HookimplMarker("vaezoo")

Register = Callable[..., Any]


@hookspec
def vaezoo_register_encoders(register: Register) -> None:
    """Register encoders: networks x -> (mu, logvar)."""


@hookspec
def vaezoo_register_decoders(register: Register) -> None:
    """Register decoders: networks z -> likelihood parameters."""


@hookspec
def vaezoo_register_priors(register: Register) -> None:
    """Register priors p(z): sample(n), log_prob(z) and, when closed-form, Gaussian parameters for the KL."""


@hookspec
def vaezoo_register_likelihoods(register: Register) -> None:
    """Register likelihoods p(x | decoder output)."""


@hookspec
def vaezoo_register_objectives(register: Register) -> None:
    """Register objectives: how a loss is made from the parts (ELBO, ...)."""


@hookspec
def vaezoo_register_variants(register: Register) -> None:
    """Register named variants: recipes of one part of each kind, with default options."""
