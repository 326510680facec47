"""A hierarchical (ladder) prior: p(z) = p(z_L) prod_l p(z_l | z_{l+1}) with top-down inference (Sønderby et
al., 2016). z is the concatenation [z_1 (bottom), ..., z_L (top)] and the decoder reads all of it."""
from __future__ import annotations

import torch
from torch import nn

from vaezoo.components.densities import LOG_2PI, diagonal_log_prob
from vaezoo.components.layers import activation, positive_int
from vaezoo.core import Prior


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
    one above. The `ladder` posterior walks these layers top-down; any other Euclidean posterior gets a
    Monte-Carlo KL against `log_prob`.
    """

    support = frozenset({"euclidean", "ladder"})

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

    def split(self, t: torch.Tensor) -> list[torch.Tensor]:
        """The layers of t [..., latent_dim], bottom first."""
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
        parts = self.split(z)
        total = -0.5 * (parts[-1] ** 2 + LOG_2PI).sum(-1)
        for l, conditional in enumerate(self.conditionals):
            total = total + diagonal_log_prob(parts[l], *conditional(parts[l + 1]))
        return total
