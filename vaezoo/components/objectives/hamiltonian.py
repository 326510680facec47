"""The Hamiltonian VAE objective (Caterini, Doucet and Sejdinovic, 2018, "Hamiltonian Variational Auto-Encoder").

z_0 is drawn from the posterior, a momentum rho_0 ~ N(0, I / beta_0), and K leapfrog steps of Hamiltonian dynamics
on the model's own log joint log p(x, z) = log p(x|z) + log p(z) move (z, rho), each followed by tempering:
rho <- sqrt(beta_{k-1} / beta_k) rho, with sqrt(1 / beta_k) = (1 - 1 / sqrt(beta_0)) k^2 / K^2 + 1 / sqrt(beta_0)
(the paper's quadratic schedule, beta_K = 1). Leapfrog is volume-preserving (log-det 0); the tempering steps
scale rho with log-det (D / 2) log(beta_0) in all. With gamma = sqrt(beta_0) rho_0 ~ N(0, I), the bound is

    ELBO = log p(x, z_K) - |rho_K|^2 / 2 - log q(z_0|x) + |gamma|^2 / 2,

the terms of log N(., 0, I) and of the tempering log-det cancelling. The step sizes (one per latent dimension)
and beta_0 are learned with the VAE, through the leapfrog steps (second-order gradients of log p(x, z)).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from vaezoo.components.layers import positive_int
from vaezoo.core import VAE, Objective, Prior, VAEOutput
from vaezoo.core.estimators import with_posterior_loss


def leapfrog(
    z: torch.Tensor, rho: torch.Tensor, grad_log_joint, step_size: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One leapfrog step for the Hamiltonian -log p(x, z) + |rho|^2 / 2 with a per-dimension step size."""
    rho = rho + 0.5 * step_size * grad_log_joint(z)
    z = z + step_size * rho
    return z, rho + 0.5 * step_size * grad_log_joint(z)


def tempering_schedule(beta_0: torch.Tensor, steps: int) -> list[torch.Tensor]:
    """sqrt(beta_k) for k = 0..K: the quadratic schedule from sqrt(beta_0) to 1."""
    inv_root = 1.0 / torch.sqrt(beta_0)
    return [1.0 / ((1.0 - inv_root) * (k / steps) ** 2 + inv_root) for k in range(steps + 1)]


class HamiltonianELBO(Objective):
    """The HVAE bound of K leapfrog steps (with tempering) from the posterior's draw; see the module's docstring.

    `steps` K, `step_size` the initial leapfrog step (learned per dimension), `initial_beta` the initial inverse
    temperature beta_0 in (0, 1] (learned; 1 with `tempered=False`, which leaves the momentum untempered). The
    posterior must give log q(z|x) of its draws (the feature "samples"), and the prior must be a density on R^d:
    the leapfrog steps move z through R^d along the gradient of log p(x, z).
    """

    def __init__(self, latent_dim: int, steps: int = 5, step_size: float = 0.05, initial_beta: float = 0.5,
                 tempered: bool = True) -> None:
        super().__init__()
        self.steps = positive_int("steps", steps)
        if not step_size > 0:
            raise ValueError(f"step_size must be positive, got {step_size}")
        if not 0 < initial_beta < 1 or not isinstance(tempered, bool):
            raise ValueError(f"initial_beta must be in (0, 1) and tempered true or false, got {initial_beta}, {tempered!r}")
        self.tempered = tempered
        self.log_step_size = nn.Parameter(torch.full((latent_dim,), math.log(step_size)))
        # sqrt(beta_0) = sigmoid(raw): beta_0 stays in (0, 1), as the schedule needs
        raw = math.log(math.sqrt(initial_beta) / (1.0 - math.sqrt(initial_beta)))
        self.raw_root_beta = nn.Parameter(torch.tensor(raw), requires_grad=tempered)

    def needs(self) -> frozenset[str]:
        return frozenset({"samples"})

    def prior_mismatch(self, prior: Prior) -> str | None:
        if "euclidean" in prior.support:
            return None
        return (f"its leapfrog steps move z through R^d along the gradient of log p(x, z), and the prior is on "
                f"{', '.join(sorted(prior.support))}")

    def beta_0(self) -> torch.Tensor:
        """The initial inverse temperature (1 when untempered)."""
        return torch.sigmoid(self.raw_root_beta) ** 2 if self.tempered else torch.ones_like(self.raw_root_beta)

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        q_params = vae.encode(x, y)
        latent = vae.posterior.draw(q_params, vae.prior, 1)  # one draw, with its log q(z_0|x)
        z, log_q0 = latent.z[0], latent.log_q[0]
        train = torch.is_grad_enabled()

        def log_joint(v: torch.Tensor) -> torch.Tensor:
            return vae.likelihood.log_prob(vae.decode_params(v, y), x) + vae.prior.log_prob(v)

        def grad_log_joint(v: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():
                v = v if v.requires_grad else v.detach().requires_grad_()
                (grad,) = torch.autograd.grad(log_joint(v).sum(), v, create_graph=train)
            return grad

        gamma = torch.randn_like(z)
        roots = tempering_schedule(self.beta_0().to(z), self.steps)
        rho, step_size = gamma / roots[0], self.log_step_size.exp().to(z)
        for k in range(1, self.steps + 1):
            z, rho = leapfrog(z, rho, grad_log_joint, step_size)
            rho = rho * (roots[k - 1] / roots[k])
        params = vae.decode_params(z, y)
        recon = vae.likelihood.log_prob(params, x)
        log_q = log_q0 - 0.5 * gamma.pow(2).sum(-1)  # log q_K(z_K, rho_K) + D/2 log 2 pi
        kl = log_q - vae.prior.log_prob(z) + 0.5 * rho.pow(2).sum(-1)
        return VAEOutput(-(recon - kl).mean(), recon, kl, z, q_params, params, with_posterior_loss({}, latent))
