"""The prior sampler: the model's own p(z), so that `--sampler prior` is what sampling always did."""
from __future__ import annotations

import torch

from vaezoo.core import Prior, Sampler


class PriorSampler(Sampler):
    """Draws of the trained model's prior (tempered about its centre as `VAE.sample` does); nothing to fit."""

    fits = None
    needs_fit = False

    def __init__(self, latent_dim: int, prior: Prior) -> None:
        super().__init__(latent_dim)
        object.__setattr__(self, "prior", prior)  # the model's, not a copy: kept out of this module's state

    def fit(self, codes: torch.Tensor, epochs: int, progress=None) -> dict[str, float]:
        raise NotImplementedError("the prior sampler is the model's prior and is not fitted")

    def sample(self, n: int, temperature: float = 1.0) -> torch.Tensor:
        return self.prior.tempered_sample(n, temperature)
