"""The VampPrior (Tomczak & Welling, 2018): p(z) = mean_k q(z | u_k) over learned pseudo-inputs u_k."""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.components.layers import positive_int
from vaezoo.components.priors.mixture import mixture_log_prob, mixture_sample
from vaezoo.core import Prior


class VampPrior(Prior):
    """A uniform mixture of the posteriors of K learned pseudo-inputs, through the VAE's own encoder.

    create_model hands the factory the shared encoder; it is kept by reference, not as a submodule, so the
    model's state dict holds the encoder's weights once. Pseudo-inputs live in [0, 1] (a hard tanh of free
    parameters, started near 0.05 as in the paper). KL by Monte Carlo. In a conditional VAE (`num_classes` > 0)
    pseudo-input k is encoded with label k mod num_classes, so p(z) stays one mixture over every class.
    """

    encodes_with = "gaussian"

    def __init__(
        self,
        latent_dim: int,
        input_shape: Sequence[int],
        encoder: nn.Module,
        components: int = 500,
        init_mean: float = 0.05,
        init_std: float = 0.01,
        *,
        num_classes: int = 0,
    ) -> None:
        super().__init__(latent_dim)
        components = positive_int("components", components)
        self.pseudo = nn.Parameter(init_mean + init_std * torch.randn(components, *input_shape))
        object.__setattr__(self, "encoder", encoder)  # shared with the VAE: not a second registered copy
        onehot = F.one_hot(torch.arange(components) % num_classes, num_classes).float() if num_classes else None
        self.register_buffer("labels", onehot, persistent=False)

    def pseudo_inputs(self) -> torch.Tensor:
        """The K pseudo-inputs, [K, *input_shape], clipped to [0, 1]."""
        return F.hardtanh(self.pseudo, 0.0, 1.0)

    def components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(means, logvars), each [K, latent_dim]: the encoder's Gaussians for the pseudo-inputs."""
        labels = [] if self.labels is None else [self.labels.to(self.pseudo.dtype)]
        return self.encoder(self.pseudo_inputs(), *labels)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        means, logvars = self.components()
        uniform = torch.full((len(means),), -math.log(len(means)), device=z.device, dtype=z.dtype)
        return mixture_log_prob(z, means, logvars, uniform)

    def sample(self, n: int) -> torch.Tensor:
        means, logvars = self.components()
        return mixture_sample(n, means, logvars, torch.zeros(len(means), device=means.device))
