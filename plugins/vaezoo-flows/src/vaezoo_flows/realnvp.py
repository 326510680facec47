"""A RealNVP normalizing-flow prior: p(z) = N(f(z); 0, I) |det df/dz| with f a stack of affine couplings."""
from __future__ import annotations

import math

import torch
from torch import nn

from vaezoo import Prior

LOG_2PI = math.log(2.0 * math.pi)


class AffineCoupling(nn.Module):
    """One invertible layer: the coordinates where `mask` is 0 are scaled and shifted by functions of the rest.

    Starts as the identity (zero last layer), so the prior starts as N(0, I) and learns away from it.
    """

    def __init__(self, mask: torch.Tensor, hidden_dim: int) -> None:
        super().__init__()
        dim = mask.numel()
        self.register_buffer("mask", mask)
        out = nn.Linear(hidden_dim, 2 * dim)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim), nn.SiLU(), out
        )
        self.scale = nn.Parameter(torch.ones(dim))  # bounds log-scales to (-scale, scale) through tanh

    def _log_scale_shift(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-scale, shift), both zero on the masked coordinates, which pass through unchanged."""
        raw_s, t = self.net(z * self.mask).chunk(2, dim=-1)
        free = 1.0 - self.mask
        return self.scale * torch.tanh(raw_s) * free, t * free

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z -> (u, log|det du/dz|) per vector."""
        s, t = self._log_scale_shift(z)
        return z * torch.exp(s) + t, s.sum(-1)

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        """u -> z; exact, because the masked coordinates of u and z are the same."""
        s, t = self._log_scale_shift(u)
        return (u - t) * torch.exp(-s)


def alternating_mask(dim: int, parity: int) -> torch.Tensor:
    """1 on every other coordinate, starting at `parity`: each half is non-empty for any dim >= 2."""
    return ((torch.arange(dim) + parity) % 2 == 0).to(torch.get_default_dtype())


class RealNVPPrior(Prior):
    """RealNVP flow prior: affine couplings with alternating masks over a standard-normal base."""

    def __init__(self, latent_dim: int, coupling_layers: int = 8, hidden_dim: int = 128) -> None:
        super().__init__(latent_dim)
        if latent_dim < 2:
            raise ValueError(f"realnvp needs latent_dim >= 2 to split coordinates, got {latent_dim}")
        for name, value in (("coupling_layers", coupling_layers), ("hidden_dim", hidden_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.layers = nn.ModuleList(
            AffineCoupling(alternating_mask(latent_dim, k % 2), hidden_dim) for k in range(coupling_layers)
        )

    def to_base(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f(z) and log|det df/dz|, for z of shape [..., latent_dim]."""
        logdet = z.new_zeros(z.shape[:-1])
        for layer in self.layers:
            z, layer_logdet = layer(z)
            logdet = logdet + layer_logdet
        return z, logdet

    def from_base(self, u: torch.Tensor) -> torch.Tensor:
        """f^-1(u): the inverse of `to_base`."""
        for layer in reversed(self.layers):
            u = layer.inverse(u)
        return u

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        u, logdet = self.to_base(z)
        return -0.5 * (u * u + LOG_2PI).sum(-1) + logdet

    def sample(self, n: int) -> torch.Tensor:
        mask = self.layers[0].mask
        return self.from_base(torch.randn(n, self.latent_dim, device=mask.device, dtype=mask.dtype))
