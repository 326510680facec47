"""The wrapped normal posterior on the Poincaré ball (Mathieu et al., 2019), drawn by the fused operator."""
from __future__ import annotations

import torch

from vaezoo import ops
from vaezoo.components.poincare import curvature as valid_curvature, exp0, log0, mobius_add, wrapped_normal_log_density
from vaezoo.core import Latent, Posterior, Prior


class WrappedNormalPosterior(Posterior):
    """q(z|x) a wrapped normal on the ball of curvature -`curvature`, centred at mu = exp_0(m) for the encoder's
    (m, logvar): v ~ N(0, diag(exp(logvar))) by the fused operator, z = mu (+) exp_0(v / 2).

    The code that the decoder, the prior and the samplers see is log_0(z): the point's coordinates in the tangent
    space at the origin (so the decoder reads z through the logarithmic map, as in the paper's decoder). log q is
    with respect to the ball's Riemannian volume, as the `poincare` prior's log p; the KL is Monte Carlo. Several
    draws are offered; the density does not split per dimension and the moments have no closed form.
    """

    family = "poincare"
    requires = frozenset({"poincare"})

    def __init__(self, latent_dim: int, curvature: float = 1.0) -> None:
        super().__init__(latent_dim)
        self.c = valid_curvature(curvature)

    def prior_mismatch(self, prior: Prior) -> str | None:
        mismatch = super().prior_mismatch(prior)
        if mismatch is None and prior.c != self.c:
            return f"the posterior's ball has curvature -{self.c}, the prior's -{prior.c}; give both the same curvature"
        return mismatch

    def draw(self, params: tuple[torch.Tensor, ...], prior: Prior, samples: int | None = None) -> Latent:
        m, logvar = params
        v, _, log_normal = ops.reparameterize(torch.zeros_like(m), logvar, samples=samples, log_q=True)
        z = log0(mobius_add(exp0(m, self.c), exp0(v / 2, self.c), self.c), self.c)
        log_q = wrapped_normal_log_density(v, log_normal, self.c)
        return Latent(z, log_q - prior.log_prob(z), log_q)

    def mean(self, params: tuple[torch.Tensor, ...], prior: Prior) -> torch.Tensor:
        """The centre mu, as log_0(mu) = m (read back through the ball, so as far from the origin as codes get)."""
        return log0(exp0(params[0], self.c), self.c)

    def why_not(self, feature: str, prior: Prior) -> str | None:
        if feature == "kl_parts":
            return "the wrapped normal has no discrete part"
        if feature == "kl_per_dim":
            return "the KL of a wrapped normal on the Poincaré ball does not split per dimension"
        if feature == "density":
            return "a wrapped normal on the Poincaré ball has no per-dimension density (its volume term ties them)"
        if feature == "moments":
            return "the moments of a wrapped normal on the Poincaré ball have no closed form"
        return None
