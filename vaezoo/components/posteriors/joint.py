"""Joint continuous and discrete latents (JointVAE; Dupont, 2018): a diagonal Gaussian over the first
`continuous` dimensions, Gumbel-softmax categorical variables over the rest."""
from __future__ import annotations

import torch

from vaezoo import ops
from vaezoo.components.layers import positive_int
from vaezoo.components.posteriors.gumbel import GumbelSoftmaxPosterior
from vaezoo.core import Latent, Prior


class JointPosterior(GumbelSoftmaxPosterior):
    """The encoder returns (mu, logvar) of the Gaussian part [continuous each] and logits [latent_dim - continuous].

    The Gaussian part goes through the fused operator with its analytic KL against the joint prior's N(0, I);
    the categorical part is drawn as in `GumbelSoftmaxPosterior` (same temperature options). The KL is the sum.
    The joint prior must split the latent dimensions the same way.
    """

    family = "joint"
    requires = frozenset({"euclidean-simplex"})

    def __init__(
        self, latent_dim: int, continuous: int = 10, categories: int = 10, temperature: float = 1.0,
        min_temperature: float = 0.5, anneal_rate: float = 3e-5, hard: bool = False,
    ) -> None:
        self.continuous = positive_int("continuous", continuous)
        if continuous >= latent_dim:
            raise ValueError(f"continuous ({continuous}) must leave dimensions for the categories of latent_dim {latent_dim}")
        super().__init__(latent_dim, categories, temperature, min_temperature, anneal_rate, hard)

    def discrete_dim(self) -> int:
        return self.latent_dim - self.continuous

    def param_dims(self) -> tuple[int, ...]:
        return (self.continuous, self.continuous, self.discrete_dim())

    def prior_mismatch(self, prior: Prior) -> str | None:
        mismatch = super().prior_mismatch(prior)
        if mismatch is None and (prior.continuous, prior.categorical.categories) != (self.continuous, self.categories):
            return (f"the posterior has {self.continuous} continuous dimensions and {self.categories} categories, the "
                    f"prior {prior.continuous} and {prior.categorical.categories}")
        return mismatch

    def draw(self, params: tuple[torch.Tensor, ...], prior: Prior, samples: int | None = None) -> Latent:
        latent = self._draw_parts(params, prior, samples)
        return Latent(latent.z, latent.kl.sum(-1), latent.log_q)

    def kl_parts(self, params: tuple[torch.Tensor, ...], prior: Prior) -> Latent:
        """One draw whose kl is [B, 2]: the Gaussian part's KL, then the categorical part's (JointVAE's two
        capacities are set on them)."""
        return self._draw_parts(params, prior, None)

    def _draw_parts(self, params: tuple[torch.Tensor, ...], prior: Prior, samples: int | None) -> Latent:
        mu, logvar, logits = params
        z_c, kl_c, log_q_c = ops.reparameterize(mu, logvar, samples=samples, log_q=True)
        d = self.discrete(logits, prior.categorical.log_probs(), samples)
        kl_c, kl_d = torch.broadcast_tensors(kl_c, d.kl)
        return Latent(torch.cat([z_c, d.z.to(z_c.dtype)], dim=-1), torch.stack([kl_c, kl_d], -1), log_q_c + d.log_q)

    def discrete_kl_bound(self, prior: Prior) -> float:
        """The largest KL of the categorical part: per variable max_k -log p_k (log(categories) for the uniform
        prior), reached when q puts all its mass on the least probable value."""
        return float(-prior.categorical.log_probs().detach().min(-1).values.sum())

    def why_not(self, feature: str, prior: Prior) -> str | None:
        return None if feature == "kl_parts" else super().why_not(feature, prior)

    def mean(self, params: tuple[torch.Tensor, ...], prior: Prior) -> torch.Tensor:
        """The Gaussian mean, then the most probable value of each categorical variable."""
        return torch.cat([params[0], super().mean(params[2:], prior)], dim=-1)
