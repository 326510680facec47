"""Inverse autoregressive flow on top of the Gaussian posterior (Kingma et al., 2016)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.components.autoregressive import MADE
from vaezoo.components.layers import positive_int
from vaezoo.components.posteriors.gaussian_flow import GaussianFlowPosterior


class IAFPosterior(GaussianFlowPosterior):
    """z_0 ~ N(mu, diag(exp(logvar))) by the fused operator, then `steps` IAF steps, each
    z <- sigma * z + (1 - sigma) * m with [m, s] = MADE(z, h), sigma = sigmoid(s + forget_bias), and the order
    of the dimensions reversed between steps (Kingma et al., 2016, eqs. 10-11).

    The encoder returns (mu, logvar, h) with h a context of `context` numbers that every step reads.
    log q(z_T|x) = log N(z_0) - sum_t sum_d log sigma_t,d (the Jacobian of each step is triangular with
    diagonal sigma); the rest (Monte-Carlo KL, the features offered) is GaussianFlowPosterior's.
    """

    family = "iaf"

    def __init__(
        self, latent_dim: int, steps: int = 2, hidden_dims: Sequence[int] = (320, 320), context: int = 32,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__(latent_dim)
        self.context_dim = positive_int("context", context)
        self.forget_bias = float(forget_bias)
        self.steps = nn.ModuleList(
            MADE(latent_dim, self.context_dim, hidden_dims, outputs=2) for _ in range(positive_int("steps", steps))
        )

    def param_dims(self) -> tuple[int, ...]:
        return (self.latent_dim, self.latent_dim, self.context_dim)

    def flow(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z_T and sum_t sum_d log sigma_t,d (the flow's log|det Jacobian|) for z_0 [..., D] and context h."""
        log_det = torch.zeros(z.shape[:-1], device=z.device, dtype=z.dtype)
        h = h.expand(*z.shape[:-1], h.shape[-1])
        for step in self.steps:
            m, s = step(z, h)
            s = s + self.forget_bias
            z = torch.sigmoid(s) * z + torch.sigmoid(-s) * m
            log_det = log_det + F.logsigmoid(s).sum(-1)
            z = z.flip(-1)
        return z, log_det
