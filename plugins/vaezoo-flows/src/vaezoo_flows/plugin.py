"""The hooks through which vaezoo discovers this package (entry point `flows` in group `vaezoo`)."""
from __future__ import annotations

from vaezoo import Register, VariantSpec, hookimpl
from vaezoo_flows.realnvp import RealNVPPrior


@hookimpl
def vaezoo_register_priors(register: Register) -> None:
    register("realnvp", RealNVPPrior, tags=("flow",))


@hookimpl
def vaezoo_register_variants(register: Register) -> None:
    register(
        "flow-vae-mlp",
        VariantSpec(
            encoder="vaezoo:mlp",
            decoder="vaezoo:mlp",
            prior="realnvp",
            likelihood="vaezoo:bernoulli",
            objective="vaezoo:elbo",
            latent_dim=20,
        ),
        description="vae-mlp with a learned RealNVP flow prior (8 affine couplings); KL by Monte Carlo",
        tags=("density", "flow"),
    )
