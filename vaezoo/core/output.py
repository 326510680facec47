"""VAEOutput: what one pass of a VAE over a batch produced."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class VAEOutput:
    """recon, kl and elbo are per example, in nats; `loss` is the scalar the objective minimizes.

    `q_params` are the encoder's output (the posterior's parameters: (mu, logvar) for a Gaussian), `params` the
    decoder's (the likelihood's parameters). `terms` holds what a particular objective adds (the importance-
    weighted bound, TC or MMD terms, per-dimension KL).
    """

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    z: torch.Tensor
    q_params: tuple[torch.Tensor, ...]
    params: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def elbo(self) -> torch.Tensor:
        return self.recon - self.kl
