"""Inverse autoregressive flow on top of the Gaussian posterior (Kingma et al., 2016)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo import ops
from vaezoo.components.autoregressive import MADE
from vaezoo.components.layers import positive_int
from vaezoo.core import Latent, Posterior, Prior


class IAFPosterior(Posterior):
    """z_0 ~ N(mu, diag(exp(logvar))) by the fused operator, then `steps` IAF steps, each
    z <- sigma * z + (1 - sigma) * m with [m, s] = MADE(z, h), sigma = sigmoid(s + forget_bias), and the order
    of the dimensions reversed between steps (Kingma et al., 2016, eqs. 10-11).

    The encoder returns (mu, logvar, h) with h a context of `context` numbers that every step reads.
    log q(z_T|x) = log N(z_0) - sum_t sum_d log sigma_t,d (the Jacobian of each step is triangular with
    diagonal sigma); the KL is Monte Carlo, log q(z_T|x) - log p(z_T). Several draws are offered; the flow
    mixes the dimensions, so the KL does not split per dimension and q has no per-dimension density.
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

    def draw(self, params: tuple[torch.Tensor, ...], prior: Prior, samples: int | None = None) -> Latent:
        mu, logvar, h = params
        z0, _, log_q0 = ops.reparameterize(mu, logvar, samples=samples, log_q=True)
        z, log_det = self.flow(z0, h)
        log_q = log_q0 - log_det
        return Latent(z, log_q - prior.log_prob(z), log_q)

    def mean(self, params: tuple[torch.Tensor, ...], prior: Prior) -> torch.Tensor:
        """The flow applied to the Gaussian's mean."""
        return self.flow(params[0], params[2])[0]

    def why_not(self, feature: str, prior: Prior) -> str | None:
        if feature == "kl_parts":
            return "the flow's posterior has no discrete part"
        if feature == "kl_per_dim":
            return "the flow mixes the latent dimensions, so its Monte-Carlo KL does not split per dimension"
        if feature == "density":
            return "the flow mixes the latent dimensions, so q(z|x) has no per-dimension density"
        if feature == "moments":
            return "the flow's output has no closed-form mean and variance"
        return None
