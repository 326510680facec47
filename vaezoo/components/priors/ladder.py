"""A hierarchical (ladder) prior: p(z) = p(z_L) prod_l p(z_l | z_{l+1}) with top-down inference (Sønderby et
al., 2016). z is the concatenation [z_1 (bottom), ..., z_L (top)] and the decoder reads all of it."""
from __future__ import annotations

import torch
from torch import nn

from vaezoo import ops
from vaezoo.components.densities import LOG_2PI, diagonal_log_prob
from vaezoo.components.layers import activation, positive_int
from vaezoo.parts import Latent, Prior


def precision_weighted(
    mu_a: torch.Tensor, logvar_a: torch.Tensor, mu_b: torch.Tensor, logvar_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of the normalized product of two diagonal Gaussians."""
    logvar = -torch.logaddexp(-logvar_a, -logvar_b)
    mu = mu_a * torch.exp(logvar - logvar_a) + mu_b * torch.exp(logvar - logvar_b)
    return mu, logvar


class GaussianConditional(nn.Module):
    """p(z_l | z_{l+1}): a small MLP to the mean and log-variance of a diagonal Gaussian."""

    def __init__(self, in_features: int, out_features: int, hidden: int, act: str) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), activation(act), nn.Linear(hidden, 2 * out_features)
        )

    def forward(self, z_above: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(z_above).chunk(2, dim=-1)
        return mu, logvar


class LadderPrior(Prior):
    """`layers` stochastic layers of (nearly) equal size, top layer N(0, I), each lower one Gaussian given the
    one above.

    The encoder's Gaussian is read per layer as the bottom-up message; the posterior of each lower layer is its
    precision-weighted product with the top-down p(z_l | z_{l+1}). Every KL term is between diagonal Gaussians
    and goes through the fused operator: N(0, I) at the top, full-shape prior tensors below.
    """

    def __init__(self, latent_dim: int, layers: int = 2, hidden: int = 256, activation: str = "relu") -> None:
        super().__init__(latent_dim)
        count = positive_int("layers", layers)
        if count > latent_dim:
            raise ValueError(f"{count} layers need latent_dim >= {count}, got {latent_dim}")
        base, extra = divmod(latent_dim, count)
        self.sizes = [base + (1 if i < extra else 0) for i in range(count)]
        hidden = positive_int("hidden", hidden)
        # conditionals[l] maps z_{l+1} to p(z_l | z_{l+1}), for l = 0 .. L-2
        self.conditionals = nn.ModuleList(
            GaussianConditional(self.sizes[i + 1], self.sizes[i], hidden, activation) for i in range(count - 1)
        )

    def _split(self, t: torch.Tensor) -> list[torch.Tensor]:
        return list(t.split(self.sizes, dim=-1))

    def sample(self, n: int) -> torch.Tensor:
        anchor = next(self.parameters(), None)
        kwargs = {} if anchor is None else {"device": anchor.device, "dtype": anchor.dtype}
        z = [torch.randn(n, self.sizes[-1], **kwargs)]
        for conditional in reversed(self.conditionals):
            mu, logvar = conditional(z[0])
            z.insert(0, mu + torch.exp(0.5 * logvar) * torch.randn_like(mu))
        return torch.cat(z, dim=-1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        parts = self._split(z)
        total = -0.5 * (parts[-1] ** 2 + LOG_2PI).sum(-1)
        for l, conditional in enumerate(self.conditionals):
            total = total + diagonal_log_prob(parts[l], *conditional(parts[l + 1]))
        return total

    def draw(
        self,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        *,
        samples: int | None = None,
        kl_per_dim: bool = False,
    ) -> Latent:
        """Top-down: z_L from the encoder's top Gaussian, then each z_l from its merge with p(z_l | z_{l+1}).

        The KL is analytic at each layer given the layer above, so its mean over draws is the full KL.
        """
        if kl_per_dim:
            raise ValueError("the ladder prior's KL is conditional on the layers above: it does not split per dim")
        mus, logvars = self._split(mu), self._split(logvar)
        z_above, kl, lq = ops.reparameterize(mus[-1], logvars[-1], samples=samples, log_q=True)
        zs = [z_above]
        for l in reversed(range(len(self.conditionals))):
            p_mu, p_logvar = self.conditionals[l](z_above)
            lead = p_mu.shape[:-1]
            q_mu, q_logvar = precision_weighted(mus[l].expand_as(p_mu), logvars[l].expand_as(p_mu), p_mu, p_logvar)
            flat = [t.reshape(-1, self.sizes[l]) for t in (q_mu, q_logvar, p_mu, p_logvar)]
            z_l, kl_l, lq_l = ops.reparameterize(*flat, log_q=True)
            z_above = z_l.view(*lead, self.sizes[l])
            kl, lq = kl + kl_l.view(lead), lq + lq_l.view(lead)
            zs.insert(0, z_above)
        return Latent(torch.cat(zs, dim=-1), kl, lq)

    def posterior_mean(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Top-down with each layer at its mean: exact at the top, the mean given the means above below."""
        mus, logvars = self._split(mu), self._split(logvar)
        means = [mus[-1]]
        for l in reversed(range(len(self.conditionals))):
            means.insert(0, precision_weighted(mus[l], logvars[l], *self.conditionals[l](means[0]))[0])
        return torch.cat(means, dim=-1)
