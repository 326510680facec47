"""Built-in objectives."""
from __future__ import annotations

import torch

from vaezoo.hookspecs import hookimpl
from vaezoo.model import VAE, VAEOutput
from vaezoo.parts import Objective


class ELBO(Objective):
    """The evidence lower bound E[log p(x|z)] - beta * KL(q(z|x) || p(z)); beta = 1 is the plain VAE."""

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        if not beta >= 0:
            raise ValueError(f"beta must be non-negative, got {beta}")
        self.beta = float(beta)

    def forward(self, vae: VAE, x: torch.Tensor) -> VAEOutput:
        out = vae.elbo_terms(x)
        out.loss = -(out.recon - self.beta * out.kl).mean()
        return out


@hookimpl
def vaezoo_register_objectives(register) -> None:
    register("elbo", ELBO)
