"""The plugin contract: the hooks through which built-in and third-party plugins contribute parts to the zoo.

Every hook receives a `register` callback and returns nothing.

Components (encoder, posterior, decoder, prior, likelihood, objective) are registered as
``register(name, factory, description=None, tags=())``, where `factory` is a callable (usually a class)
that builds the part; its keyword parameters are the options a user may override. `vaezoo.create_model` is
the one place where parts are built and wired; it passes each factory its context by keyword, and a factory
whose signature does not name its context (CONTEXT below) is refused when it is registered:

- encoder:    ``factory(input_shape=..., latent_dim=..., **options) -> nn.Module``; ``forward(x)`` returns the
  posterior's parameters, one ``[B, d]`` tensor per ``d`` in ``posterior.param_dims()`` (for the Gaussian
  posterior ``(mu, logvar)``, each ``[B, latent_dim]``). An encoder that names ``output_dims`` is told those
  sizes; one that does not can only serve posteriors that read ``(mu, logvar)``. An encoder (or decoder)
  factory with spatial latents may define ``latent_dim_for(input_shape, options) -> int`` (create_model then
  builds with that latent_dim) and ``posterior_mismatch(param_dims, latent_dim) -> str | None`` (a posterior
  it cannot serve is refused at build); an encoder module with ``latent_grid = (C, h, w)`` lays codes out
  position by position, and a prior with a ``code_dim`` other than C is refused with it.
- posterior:  ``factory(latent_dim=..., **options) -> vaezoo.Posterior``: draws z from the encoder's output,
  with log q(z|x) and the KL against the prior.
- decoder:    ``factory(latent_dim=..., output_shape=..., **options) -> nn.Module``; ``forward(z)`` returns the
  likelihood's parameters shaped ``[B, *output_shape]`` (``output_shape`` is the likelihood's
  ``param_shape()``).
- prior:      ``factory(latent_dim=..., **options) -> vaezoo.Prior``. A prior that names ``input_shape``,
  ``encoder`` or ``num_classes`` in its signature also gets the input shape, the VAE's own encoder (shared,
  not copied: the VampPrior encodes its pseudo-inputs with it; keep it out of your submodules, e.g. with
  ``object.__setattr__``, so the state dict holds its weights once) and the number of classes.
- likelihood: ``factory(input_shape=..., **options) -> vaezoo.Likelihood``.
- objective:  ``factory(**options) -> vaezoo.Objective`` (one that names ``input_shape`` or ``latent_dim``
  gets them, for an adversary's networks); ``forward(vae, x)`` returns a ``vaezoo.VAEOutput`` with ``loss``
  set. Its ``step`` attribute is the training step, set by the training loop before each step, for schedules
  such as a KL warm-up. An objective whose ``adversary()`` is a module gets ``adversary_loss`` minimized by
  the training loop, ``adversary_steps`` times after each VAE step, on the adversary's parameters alone.

A conditional variant (``VariantSpec.num_classes`` > 0, or ``create_model(..., num_classes=K)``) builds its
encoder and decoder with the keyword ``num_classes=K`` as well; they must name it in their signature, and
then take the one-hot label as a second argument: ``encoder(x, y)``, ``decoder(z, y)``. Its objective is
called as ``forward(vae, x, y)`` with integer labels.

Samplers are registered like components: ``factory(latent_dim=..., **options) -> vaezoo.Sampler``; one that
names ``prior`` gets the trained model's prior (shared, not copied: the ``prior`` sampler draws from it, ``pixelcnn``
looks its codes up in the VQ codebook; keep it out of your submodules). A sampler is fitted after training to a
run's training codes and stored in the run directory (``vaezoo fit-sampler``).

Variants are registered as ``register(name, recipe, description=None, tags=())``, where `recipe` is a
``vaezoo.VariantSpec`` or a dict with its fields.

Datasets are registered as ``register(name, loader, description=None, tags=())``; ``loader(**options)``
returns a ``vaezoo.Dataset``. A loader that names ``data_dir`` gets the ``--data-dir`` path (a ``Path``, or
None); one that names ``limit`` gets ``--limit`` when it is set and returns only that many training examples
(otherwise vaezoo keeps the first ``limit`` of a fixed shuffle). Its other keyword parameters are options
(``image_size``, ``channels``).

Weights are registered as ``register("VARIANT/DATASET", weights, description=None, tags=())``, where
`weights` is a ``vaezoo.PretrainedWeights`` or a dict with its fields: ``files`` (the run directory shipped
inside the distribution: config.json and model.safetensors, nothing pickled), ``sha256`` (of its
model.safetensors), ``command`` (the ``vaezoo train`` line that made it), ``metrics`` (the figures measured
with it) and optionally ``reference`` and ``protocol`` (the same estimators on a small fixed protocol, which a
test can recompute). They load with ``pretrained:VARIANT/DATASET`` wherever a run directory is taken.
"""
from __future__ import annotations

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("vaezoo")
hookimpl = pluggy.HookimplMarker("vaezoo")

Register = Callable[..., Any]

#: The context every factory of a kind is called with, by keyword; its signature must name each of these.
CONTEXT = {
    "encoder": ("input_shape", "latent_dim"),
    "posterior": ("latent_dim",),
    "decoder": ("latent_dim", "output_shape"),
    "prior": ("latent_dim",),
    "likelihood": ("input_shape",),
    "objective": (),
    "dataset": (),
    "sampler": ("latent_dim",),
}
#: Context passed by keyword only to factories whose signature names it (so it is never a user option).
OPTIONAL_CONTEXT = {
    "encoder": ("num_classes", "output_dims"),
    "posterior": (),
    "decoder": ("num_classes",),
    "prior": ("input_shape", "encoder", "num_classes"),
    "likelihood": (),
    "objective": ("input_shape", "latent_dim"),
    "dataset": ("data_dir", "limit"),
    "sampler": ("prior",),
}


@hookspec
def vaezoo_register_encoders(register: Register) -> None:
    """Register encoders: networks x -> the posterior's parameters."""


@hookspec
def vaezoo_register_posteriors(register: Register) -> None:
    """Register posteriors q(z|x): how z, log q(z|x) and the KL are drawn from the encoder's output."""


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


@hookspec
def vaezoo_register_datasets(register: Register) -> None:
    """Register datasets: loaders that return a vaezoo.Dataset, trained on with --dataset NAME."""


@hookspec
def vaezoo_register_samplers(register: Register) -> None:
    """Register samplers: distributions over a trained model's codes, fitted after training (gmm, flow, ...)."""


@hookspec
def vaezoo_register_weights(register: Register) -> None:
    """Register pretrained weights: run directories shipped in the distribution, named VARIANT/DATASET."""
