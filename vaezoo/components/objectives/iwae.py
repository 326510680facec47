"""The importance-weighted autoencoder objective (Burda et al., 2016)."""
from __future__ import annotations

import torch

from vaezoo.components.layers import positive_int
from vaezoo.core import VAE, Objective, VAEOutput
from vaezoo.core.estimators import iw_terms


class IWAE(Objective):
    """The K-sample bound log mean_k p(x, z_k) / q(z_k|x): tighter than the ELBO as K grows, equal at K = 1."""

    def __init__(self, samples: int = 5) -> None:
        super().__init__()
        self.samples = positive_int("samples", samples)

    def needs(self) -> frozenset[str]:
        return frozenset({"samples"})

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        return iw_terms(vae, x, self.samples, y)
