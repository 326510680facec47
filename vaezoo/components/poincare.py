"""The Poincaré ball of curvature -c: Möbius addition, the exponential and logarithmic maps at the origin, and the
wrapped normal's log density (Mathieu et al., 2019, "Continuous Hierarchical Representations with Poincaré
Variational Auto-Encoders"), shared by the wrapped-normal posterior and the ball's prior.

A wrapped normal draws v ~ N(0, Sigma) in the tangent space at the origin (v measured in the Riemannian metric
there, lambda_0 = 2), carries it to mu by parallel transport and the exponential map: z = mu (+) exp_0(v / 2),
at distance |v| from mu. Its density with respect to the ball's Riemannian volume is
N(v; 0, Sigma) (sqrt(c) r / sinh(sqrt(c) r))^(d-1) with r = |v|.
"""
from __future__ import annotations

import math

import torch

#: How close to the boundary (as a fraction of the radius 1 / sqrt(c)) points are kept: artanh(1 - BOUNDARY) is
#: about 6.1, so tangent vectors up to that length over sqrt(c) map one to one.
BOUNDARY = 1e-5


def _norm(x: torch.Tensor) -> torch.Tensor:
    return x.norm(dim=-1, keepdim=True).clamp(min=torch.finfo(x.dtype).tiny ** 0.5)


def mobius_add(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    """x (+)_c y, the ball's gyrovector addition (points of the ball, [..., d])."""
    xy, x2, y2 = (x * y).sum(-1, keepdim=True), (x * x).sum(-1, keepdim=True), (y * y).sum(-1, keepdim=True)
    numerator = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    return numerator / (1 + 2 * c * xy + c * c * x2 * y2).clamp(min=torch.finfo(x.dtype).tiny)


def exp0(u: torch.Tensor, c: float) -> torch.Tensor:
    """exp_0(u) = tanh(sqrt(c) |u|) u / (sqrt(c) |u|): a tangent vector at the origin onto the ball (at most
    1 - BOUNDARY of the radius from the origin, where tanh would round to the boundary itself)."""
    root, n = math.sqrt(c), _norm(u)
    return torch.tanh(root * n).clamp(max=1 - BOUNDARY) * u / (root * n)


def log0(y: torch.Tensor, c: float) -> torch.Tensor:
    """log_0(y) = artanh(sqrt(c) |y|) y / (sqrt(c) |y|), the inverse of exp0 (read at most 1 - BOUNDARY of the
    radius from the origin, so rounding at the boundary stays finite)."""
    root, n = math.sqrt(c), _norm(y)
    return torch.atanh((root * n).clamp(max=1 - BOUNDARY)) * y / (root * n)


def log_sinhc(x: torch.Tensor) -> torch.Tensor:
    """log(sinh(x) / x) for x >= 0, stable at 0 (x^2 / 6) and for large x."""
    small = x < 1e-3
    safe = torch.where(small, torch.ones_like(x), x)
    large = safe + torch.log1p(-torch.exp(-2 * safe)) - math.log(2.0) - torch.log(safe)
    return torch.where(small, x * x / 6, large)


def wrapped_normal_log_density(v: torch.Tensor, log_normal: torch.Tensor, c: float) -> torch.Tensor:
    """log density, with respect to the Riemannian volume, of the point v reaches: log N(v; 0, Sigma) (given as
    `log_normal`, [...]) minus (d - 1) log(sinh(sqrt(c) |v|) / (sqrt(c) |v|)), for v [..., d]."""
    return log_normal - (v.shape[-1] - 1) * log_sinhc(math.sqrt(c) * v.norm(dim=-1))


def curvature(value: float) -> float:
    """Validate the curvature magnitude c > 0 (the ball has radius 1 / sqrt(c))."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise ValueError(f"curvature must be a positive number (the ball's curvature is -curvature), got {value!r}")
    return float(value)
