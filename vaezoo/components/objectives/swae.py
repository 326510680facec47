"""The sliced-Wasserstein autoencoder (SWAE; Kolouri et al., 2019): reconstruction plus the sliced Wasserstein
distance between the batch's codes and as many draws of the prior."""
from __future__ import annotations

import torch

from vaezoo.components.layers import positive_int
from vaezoo.core import VAE, Objective, VAEOutput
from vaezoo.core.estimators import elbo_terms


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int, power: float = 2.0) -> torch.Tensor:
    """SW_p^p between two samples of as many points [N, D]: the mean over `projections` directions drawn uniformly
    on the unit sphere of W_p^p between the 1-D projections, which for equal sample sizes is the mean of
    |sorted(a theta) - sorted(b theta)|^p."""
    theta = torch.randn(a.shape[-1], projections, device=a.device, dtype=a.dtype)
    theta = theta / theta.norm(dim=0, keepdim=True)
    pa, _ = torch.sort(a @ theta, dim=0)
    pb, _ = torch.sort(b @ theta, dim=0)
    return (pa - pb).abs().pow(power).mean()


class SlicedWassersteinAE(Objective):
    """-E[log p(x|z)] + weight SW_p^p(q(z), p(z)) + kl_weight KL: the batch's codes against as many prior draws,
    on `projections` random directions (the paper: deterministic encoder, p = 2, L = 50 projections). The
    posterior's KL (0 for the deterministic posterior) is reported as `kl`, in the loss only with kl_weight > 0."""

    def __init__(self, weight: float = 10.0, projections: int = 50, power: float = 2.0, kl_weight: float = 0.0) -> None:
        super().__init__()
        for name, value in (("weight", weight), ("kl_weight", kl_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        if isinstance(power, bool) or not isinstance(power, (int, float)) or not power >= 1:
            raise ValueError(f"power must be a number of at least 1 (the p of W_p), got {power!r}")
        self.weight, self.kl_weight, self.power = float(weight), float(kl_weight), float(power)
        self.projections = positive_int("projections", projections)

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        out = elbo_terms(vae, x, y)
        z = out.z.flatten(1)
        prior = vae.prior.sample(len(x)).to(z).flatten(1)
        distance = sliced_wasserstein(z, prior, self.projections, self.power)
        out.loss = (-out.recon + self.kl_weight * out.kl).mean() + self.weight * distance
        out.terms["sliced_wasserstein"] = distance
        return out
