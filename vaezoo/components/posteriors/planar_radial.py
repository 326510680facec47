"""Planar and radial flows on the Gaussian posterior (Rezende and Mohamed, 2015, "Variational Inference with
Normalizing Flows"), with the flow's parameters amortized as in the paper: the encoder returns them for each input,
beside the Gaussian's mean and log-variance.

Each layer's raw parameters are mapped onto the invertible ones (the paper's appendix A): a planar layer's u onto
u-hat with w^T u-hat >= -1, a radial layer's beta onto beta >= -alpha with alpha > 0, so any encoder output gives
an invertible flow with a positive Jacobian determinant.
"""
from __future__ import annotations

import abc

import torch
import torch.nn.functional as F

from vaezoo.components.layers import positive_int
from vaezoo.components.posteriors.gaussian_flow import GaussianFlowPosterior


def planar_u_hat(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """u moved along w so that w^T u-hat = -1 + softplus(w^T u) > -1: the planar layer is then invertible."""
    wu = (w * u).sum(-1, keepdim=True)
    w_norm2 = (w * w).sum(-1, keepdim=True).clamp(min=torch.finfo(w.dtype).tiny)
    return u + (F.softplus(wu) - 1.0 - wu) * w / w_norm2


def radial_alpha_beta(raw_alpha: torch.Tensor, raw_beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """alpha = softplus(raw) > 0 and beta = -alpha + softplus(raw) >= -alpha: the radial layer is then invertible."""
    alpha = F.softplus(raw_alpha)
    return alpha, F.softplus(raw_beta) - alpha


def planar_step(z: torch.Tensor, u: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(z) = z + u-hat tanh(w^T z + b) and log|det df/dz| = log(1 + (1 - tanh^2) w^T u-hat), for z, u, w [..., D]
    and b [..., 1]; u-hat = u + (m(w^T u) - w^T u) w / |w|^2 with m(a) = -1 + softplus(a) > -1."""
    u_hat = planar_u_hat(u, w)
    h = torch.tanh((w * z).sum(-1, keepdim=True) + b)
    log_det = torch.log1p((1.0 - h * h) * (w * u_hat).sum(-1, keepdim=True)).squeeze(-1)
    return z + u_hat * h, log_det


def radial_step(
    z: torch.Tensor, centre: torch.Tensor, raw_alpha: torch.Tensor, raw_beta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """f(z) = z + beta h(alpha, r) (z - z_0), h = 1 / (alpha + r), r = |z - z_0|, with alpha = softplus(raw) > 0
    and beta = -alpha + softplus(raw) >= -alpha; log|det df/dz| = (D - 1) log(1 + beta h) + log(1 + beta alpha h^2)."""
    alpha, beta = radial_alpha_beta(raw_alpha, raw_beta)
    diff = z - centre
    h = 1.0 / (alpha + diff.norm(dim=-1, keepdim=True))
    log_det = (z.shape[-1] - 1) * torch.log1p(beta * h) + torch.log1p(beta * alpha * h * h)
    return z + beta * h * diff, log_det.squeeze(-1)


class AmortizedFlowPosterior(GaussianFlowPosterior):
    """z_0 ~ N(mu, diag(exp(logvar))) by the fused operator, then `layers` flow layers whose parameters the encoder
    returns per input (its third tensor, `layer_params()` numbers per layer); log q(z_K|x) = log N(z_0) -
    sum_k log|det J_k|, the rest as GaussianFlowPosterior."""

    def __init__(self, latent_dim: int, layers: int = 10) -> None:
        super().__init__(latent_dim)
        self.layers = positive_int("layers", layers)

    @abc.abstractmethod
    def layer_params(self) -> int:
        """How many raw numbers one layer reads from the encoder."""

    @abc.abstractmethod
    def layer(self, z: torch.Tensor, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One layer on z [..., D] with its raw parameters [..., layer_params()]: f(z) and log|det df/dz|."""

    def param_dims(self) -> tuple[int, ...]:
        return (self.latent_dim, self.latent_dim, self.layers * self.layer_params())

    def flow(self, z: torch.Tensor, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z_K and the summed log|det J_k| for z_0 [..., D] and the encoder's raw flow parameters [B, ...]."""
        raw = raw.expand(*z.shape[:-1], raw.shape[-1]).unflatten(-1, (self.layers, self.layer_params()))
        log_det = z.new_zeros(z.shape[:-1])
        for k in range(self.layers):
            z, layer_log_det = self.layer(z, raw[..., k, :])
            log_det = log_det + layer_log_det
        return z, log_det


class PlanarPosterior(AmortizedFlowPosterior):
    """Planar flows z + u-hat tanh(w^T z + b); per layer the encoder gives u [D], w [D] and b [1]."""

    family = "planar"

    def layer_params(self) -> int:
        return 2 * self.latent_dim + 1

    def layer(self, z: torch.Tensor, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.latent_dim
        return planar_step(z, raw[..., :d], raw[..., d:2 * d], raw[..., 2 * d:])


class RadialPosterior(AmortizedFlowPosterior):
    """Radial flows z + beta (z - z_0) / (alpha + |z - z_0|); per layer the encoder gives z_0 [D] and raw alpha,
    beta [1 each]."""

    family = "radial"

    def layer_params(self) -> int:
        return self.latent_dim + 2

    def layer(self, z: torch.Tensor, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.latent_dim
        return radial_step(z, raw[..., :d], raw[..., d:d + 1], raw[..., d + 1:])
