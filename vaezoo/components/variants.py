"""Built-in variants: named recipes of parts."""
from __future__ import annotations

from vaezoo.hookspecs import hookimpl
from vaezoo.spec import VariantSpec


@hookimpl
def vaezoo_register_variants(register) -> None:
    register(
        "vae-mlp",
        VariantSpec(encoder="mlp", decoder="mlp", latent_dim=20),
        description="VAE with 400-400 MLP encoder and decoder, Bernoulli pixels (Kingma & Welling, 2014)",
        tags=("density",),
    )
    register(
        "vae-conv",
        VariantSpec(encoder="conv", decoder="conv", latent_dim=16),
        description="VAE with a stride-2 convolutional encoder and decoder, Bernoulli pixels",
        tags=("density",),
    )
