"""The importance-weighted autoencoder objective (Burda et al., 2016)."""
from __future__ import annotations

import torch

from vaezoo.components.layers import positive_int
from vaezoo.model import VAE, VAEOutput
from vaezoo.parts import Objective


class IWAE(Objective):
    """The K-sample bound log mean_k p(x, z_k) / q(z_k|x): tighter than the ELBO as K grows, equal at K = 1."""

    def __init__(self, samples: int = 5) -> None:
        super().__init__()
        self.samples = positive_int("samples", samples)

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        return vae.iw_terms(x, self.samples, y)
