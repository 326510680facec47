"""log I_v(kappa), the log of the modified Bessel function of the first kind, differentiable in kappa.

The von Mises-Fisher normalizer needs it for orders v = d/2 - 1 and concentrations from 0 to the thousands,
where I_v itself overflows. Below a switch-over point the power series is summed in log space (it converges
for every kappa; enough terms are taken to pass its peak at k ~ kappa/2); above it, Hankel's large-argument
expansion is used, whose terms then shrink fast. Both are torch expressions, so autograd gives d/dkappa.
"""
from __future__ import annotations

import math

import torch

#: Terms of Hankel's expansion: enough for 1e-12 relative accuracy above the switch-over point.
HANKEL_TERMS = 30


def switch_point(v: float) -> float:
    """The kappa above which the asymptotic expansion is used for order v (its j-th term ~ (v^2 / 2 kappa)^j / j!)."""
    return max(60.0, 2.0 * v * v)


def _log_series(v: float, kappa: torch.Tensor, terms: int) -> torch.Tensor:
    """log sum_k (kappa/2)^(2k+v) / (k! Gamma(k+v+1)), the first `terms` terms, in log space."""
    k = torch.arange(terms, dtype=kappa.dtype, device=kappa.device)
    log_half = torch.log(kappa / 2.0).unsqueeze(-1)
    log_terms = (2.0 * k + v) * log_half - torch.lgamma(k + 1.0) - torch.lgamma(k + v + 1.0)
    return torch.logsumexp(log_terms, dim=-1)


def _log_hankel(v: float, kappa: torch.Tensor) -> torch.Tensor:
    """log of e^kappa / sqrt(2 pi kappa) * sum_j (-1)^j a_j(v) / kappa^j (DLMF 10.40.1)."""
    mu = 4.0 * v * v
    total = torch.ones_like(kappa)
    term = torch.ones_like(kappa)
    for j in range(1, HANKEL_TERMS + 1):
        term = -term * (mu - (2 * j - 1) ** 2) / (8.0 * j * kappa)
        total = total + term
    return kappa - 0.5 * torch.log(2.0 * math.pi * kappa) + torch.log(total)


def log_bessel_iv(v: float, kappa: torch.Tensor) -> torch.Tensor:
    """log I_v(kappa) for an order v >= 0 and kappa > 0, elementwise, computed in float64 and returned in
    kappa's dtype."""
    if v < 0:
        raise ValueError(f"the order v must be non-negative, got {v}")
    dtype = kappa.dtype
    kappa = kappa.double()
    switch = switch_point(v)
    terms = int(switch / 2 + 10 * math.sqrt(switch) + 30)
    small = _log_series(v, kappa.clamp(max=switch), terms)
    large = _log_hankel(v, kappa.clamp(min=switch))
    return torch.where(kappa < switch, small, large).to(dtype)


def bessel_ratio(v: float, kappa: torch.Tensor) -> torch.Tensor:
    """I_{v+1}(kappa) / I_v(kappa), in (0, 1): the mean resultant length A_d(kappa) of a vMF with v = d/2 - 1."""
    return torch.exp(log_bessel_iv(v + 1.0, kappa) - log_bessel_iv(v, kappa))
