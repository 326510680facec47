"""MMD objectives: InfoVAE (Zhao et al., 2019) and WAE-MMD (Tolstikhin et al., 2018), with IMQ or RBF kernels."""
from __future__ import annotations

import torch

from vaezoo.core import VAE, Objective, VAEOutput
from vaezoo.core.estimators import elbo_terms


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a_i - b_j||^2 for every pair, [len(a), len(b)]."""
    return (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1)


def imq_kernel(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """Inverse multiquadratic C / (C + ||a - b||^2) with C = 2 D scale^2, as in the WAE paper."""
    c = 2.0 * a.shape[-1] * scale**2
    return c / (c + squared_distances(a, b))


def rbf_kernel(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """Gaussian exp(-||a - b||^2 / (2 D scale^2))."""
    return torch.exp(-squared_distances(a, b) / (2.0 * a.shape[-1] * scale**2))


KERNELS = {"imq": imq_kernel, "rbf": rbf_kernel}


def mmd(a: torch.Tensor, b: torch.Tensor, kernel: str = "imq", scale: float = 1.0) -> torch.Tensor:
    """Squared MMD between two samples: the (biased, never negative) V-statistic; exactly 0 for equal samples."""
    k = KERNELS[kernel]
    return k(a, a, scale).mean() + k(b, b, scale).mean() - 2.0 * k(a, b, scale).mean()


class MMDObjective(Objective):
    """E[log p(x|z)] - kl_weight KL(q(z|x) || p(z)) - mmd_weight MMD(q(z), p(z)).

    InfoVAE with (alpha, lambda) is kl_weight = 1 - alpha, mmd_weight = alpha + lambda - 1; WAE-MMD is
    kl_weight = 0, mmd_weight = lambda. The aggregate posterior is the batch's z, against as many prior draws.
    """

    def __init__(
        self, kl_weight: float = 1.0, mmd_weight: float = 100.0, kernel: str = "imq", scale: float = 1.0
    ) -> None:
        super().__init__()
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
        for name, value in (("kl_weight", kl_weight), ("mmd_weight", mmd_weight)):
            if not value >= 0:
                raise ValueError(f"{name} must be non-negative, got {value}")
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.kl_weight, self.mmd_weight = float(kl_weight), float(mmd_weight)
        self.kernel, self.scale = kernel, float(scale)

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        out = elbo_terms(vae, x, y)
        divergence = mmd(out.z, vae.prior.sample(len(x)).to(out.z), self.kernel, self.scale)
        out.loss = -(out.recon.mean() - self.kl_weight * out.kl.mean() - self.mmd_weight * divergence)
        out.terms["mmd"] = divergence
        return out
