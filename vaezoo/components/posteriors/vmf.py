"""The von Mises-Fisher posterior on the hypersphere (Davidson et al., 2018, "Hyperspherical VAEs").

q(z|x) = C_d(kappa) exp(kappa mu^T z) on S^{d-1}, d = latent_dim, with C_d(kappa) = kappa^(d/2-1) /
((2 pi)^(d/2) I_{d/2-1}(kappa)). Draws use Wood's (1994) rejection sampler for w = mu^T z and a Householder
reflection of e_1 onto mu; the KL against the uniform prior is in closed form.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vaezoo.components.bessel import bessel_ratio, log_bessel_iv
from vaezoo.components.priors.sphere import UniformSphere, log_sphere_area
from vaezoo.core import Latent, Posterior, Prior

#: Rounds of the rejection loop before giving up (each accepts more than half of the draws).
MAX_ROUNDS = 100


def wood_w(kappa: torch.Tensor, d: int) -> torch.Tensor:
    """w = mu^T z of a vMF draw, one per entry of kappa (Wood, 1994).

    Reparameterized as in Davidson et al.: the accepted Beta((d-1)/2, (d-1)/2) draw eps is noise and
    w = (1 - (1+b) eps) / (1 - (1-b) eps) is differentiable in kappa through b; the rejection-correction
    term of the gradient is left out, as in the authors' implementation. Computed in float64.
    """
    k = kappa.double()
    m1 = d - 1.0
    root = torch.sqrt(4.0 * k * k + m1 * m1)
    b = m1 / (2.0 * k + root)  # = (-2 kappa + root) / (d - 1), without cancellation
    a = (m1 + 2.0 * k + root) / 4.0
    c = 4.0 * a * b / (1.0 + b) - m1 * math.log(m1)
    beta = torch.distributions.Beta(torch.tensor(m1 / 2, dtype=k.dtype, device=k.device),
                                    torch.tensor(m1 / 2, dtype=k.dtype, device=k.device))
    eps = torch.zeros_like(k)
    todo = torch.ones_like(k, dtype=torch.bool)
    for _ in range(MAX_ROUNDS):
        e = beta.sample(k.shape)
        t = 2.0 * a.detach() * b.detach() / (1.0 - (1.0 - b.detach()) * e)
        u = torch.rand_like(k)
        accept = todo & (m1 * torch.log(t) - t + c.detach() >= torch.log(u))
        eps = torch.where(accept, e, eps)
        todo = todo & ~accept
        if not todo.any():
            break
    else:
        raise RuntimeError(f"the vMF rejection sampler did not accept within {MAX_ROUNDS} rounds")
    w = (1.0 - (1.0 + b) * eps) / (1.0 - (1.0 - b) * eps)
    return w.to(kappa.dtype)


def householder(mu: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The reflection that maps e_1 to the unit vector mu, applied to x (mu broadcasts against x)."""
    e1 = torch.zeros_like(mu)
    e1[..., 0] = 1.0
    u = e1 - mu
    u = u / u.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    return x - 2.0 * (x * u).sum(-1, keepdim=True) * u


def vmf_log_normalizer(kappa: torch.Tensor, d: int) -> torch.Tensor:
    """log C_d(kappa) = (d/2-1) log kappa - (d/2) log 2 pi - log I_{d/2-1}(kappa)."""
    v = 0.5 * d - 1.0
    return v * torch.log(kappa) - 0.5 * d * math.log(2.0 * math.pi) - log_bessel_iv(v, kappa)


def vmf_kl_uniform(kappa: torch.Tensor, d: int) -> torch.Tensor:
    """KL(vMF(mu, kappa) || uniform on S^{d-1}) = kappa A_d(kappa) + log C_d(kappa) + log |S^{d-1}|."""
    v = 0.5 * d - 1.0
    return kappa * bessel_ratio(v, kappa) + vmf_log_normalizer(kappa, d) + log_sphere_area(d)


class VonMisesFisherPosterior(Posterior):
    """vMF(mu, kappa) on S^{d-1}: the encoder returns an unnormalized direction [d] and a raw concentration [1];
    mu = direction / |direction|, kappa = softplus(raw) + min_kappa.

    Needs a prior on the sphere; the KL is analytic against the uniform prior and log q(z|x) - log p(z) of
    the draw otherwise. Offers several draws with log q (importance weighting); the KL does not split per
    dimension and q has no per-dimension density.
    """

    family = "vmf"
    requires = frozenset({"sphere"})

    def __init__(self, latent_dim: int, min_kappa: float = 1.0) -> None:
        super().__init__(latent_dim)
        if latent_dim < 2:
            raise ValueError(f"the vMF posterior needs latent_dim >= 2 (S^(d-1) in R^d), got {latent_dim}")
        if not min_kappa >= 0:
            raise ValueError(f"min_kappa must be non-negative, got {min_kappa}")
        self.min_kappa = float(min_kappa)

    def param_dims(self) -> tuple[int, ...]:
        return (self.latent_dim, 1)

    def direction_and_concentration(self, params: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """mu [B, d] on the sphere and kappa [B] > 0 from the encoder's output."""
        direction, raw = params
        return F.normalize(direction, dim=-1), F.softplus(raw.squeeze(-1)) + self.min_kappa + 1e-6

    def draw(self, params: tuple[torch.Tensor, ...], prior: Prior, samples: int | None = None) -> Latent:
        mu, kappa = self.direction_and_concentration(params)
        lead = (samples,) if samples is not None else ()
        w = wood_w(kappa.expand(*lead, *kappa.shape), self.latent_dim).unsqueeze(-1)
        v = F.normalize(torch.randn(*lead, *mu.shape[:-1], self.latent_dim - 1, device=mu.device, dtype=mu.dtype), dim=-1)
        z = householder(mu, torch.cat([w, torch.sqrt((1.0 - w * w).clamp(min=0.0)) * v], dim=-1))
        log_q = self.log_prob(z, mu, kappa)
        kl = vmf_kl_uniform(kappa, self.latent_dim) if isinstance(prior, UniformSphere) else log_q - prior.log_prob(z)
        return Latent(z, kl, log_q)

    def log_prob(self, z: torch.Tensor, mu: torch.Tensor, kappa: torch.Tensor) -> torch.Tensor:
        """log q(z|x) with respect to the surface measure, [...]."""
        return vmf_log_normalizer(kappa, self.latent_dim) + kappa * (mu * z).sum(-1)

    def mean(self, params: tuple[torch.Tensor, ...], prior: Prior) -> torch.Tensor:
        """The mode mu (on the sphere, where the decoder was trained)."""
        return self.direction_and_concentration(params)[0]

    def why_not(self, feature: str, prior: Prior) -> str | None:
        if feature == "kl_parts":
            return "a von Mises-Fisher posterior has no discrete part"
        if feature == "kl_per_dim":
            return "the KL of a von Mises-Fisher distribution on the sphere does not split per dimension"
        if feature == "density":
            return "a von Mises-Fisher distribution has no per-dimension density (its dimensions are tied to the sphere)"
        if feature == "moments":
            return "the moments of a von Mises-Fisher draw are not implemented (and z lies on the sphere, not around N(0, I))"
        return None

