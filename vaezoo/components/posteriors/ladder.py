"""Top-down inference for the ladder prior (Sønderby et al., 2016): each layer's posterior is the encoder's
bottom-up Gaussian merged with the prior's top-down p(z_l | z_{l+1})."""
from __future__ import annotations

import torch

from vaezoo import ops
from vaezoo.core import Latent, Posterior, Prior


def precision_weighted(
    mu_a: torch.Tensor, logvar_a: torch.Tensor, mu_b: torch.Tensor, logvar_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of the normalized product of two diagonal Gaussians."""
    logvar = -torch.logaddexp(-logvar_a, -logvar_b)
    mu = mu_a * torch.exp(logvar - logvar_a) + mu_b * torch.exp(logvar - logvar_b)
    return mu, logvar


def _draw_layer(q_mu, q_logvar, p_mu, p_logvar) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One layer's (z, kl, log q) given the layer above, shaped [B, size] or [K, B, size] (one set per draw
    above): one operator call on [B*K, size] rows, each example's K draws consecutive, with the noise shard
    split alike (ops.rows_split), so a shard of the batch draws its rows of the whole batch's draw."""
    samples = q_mu.shape[0] if q_mu.dim() == 3 else None
    tensors = (q_mu, q_logvar, p_mu, p_logvar)
    if samples is not None:  # example-major, so the batch's rows stay one contiguous block per example
        tensors = tuple(t.transpose(0, 1) for t in tensors)
    rows = [t.reshape(-1, t.shape[-1]) for t in tensors]
    with ops.rows_split(samples or 1):
        z, kl, lq = ops.reparameterize(*rows, log_q=True)
    if samples is None:
        return z, kl, lq
    batch = q_mu.shape[1]
    return (z.view(batch, samples, -1).transpose(0, 1), kl.view(batch, samples).T, lq.view(batch, samples).T)


class LadderPosterior(Posterior):
    """The encoder's (mu, logvar) read per layer as bottom-up messages; z_L from the top message, then each
    z_l from its precision-weighted merge with the ladder prior's p(z_l | z_{l+1}).

    Every KL term is between diagonal Gaussians and goes through the fused operator: N(0, I) at the top,
    full-shape prior tensors below; the KL is analytic at each layer given the layer above, so its mean over
    draws is the full KL. Needs the `ladder` prior, whose layers it walks.
    """

    family = "ladder"
    requires = frozenset({"euclidean", "ladder"})

    def draw(self, params: tuple[torch.Tensor, ...], prior: Prior, samples: int | None = None) -> Latent:
        mus, logvars = prior.split(params[0]), prior.split(params[1])
        z_above, kl, lq = ops.reparameterize(mus[-1], logvars[-1], samples=samples, log_q=True)
        zs = [z_above]
        for l in reversed(range(len(prior.conditionals))):
            p_mu, p_logvar = prior.conditionals[l](z_above)
            q_mu, q_logvar = precision_weighted(mus[l].expand_as(p_mu), logvars[l].expand_as(p_mu), p_mu, p_logvar)
            z_above, kl_l, lq_l = _draw_layer(q_mu, q_logvar, p_mu, p_logvar)
            kl, lq = kl + kl_l, lq + lq_l
            zs.insert(0, z_above)
        return Latent(torch.cat(zs, dim=-1), kl, lq)

    def mean(self, params: tuple[torch.Tensor, ...], prior: Prior) -> torch.Tensor:
        """Top-down with each layer at its mean: exact at the top, the mean given the means above below."""
        mus, logvars = prior.split(params[0]), prior.split(params[1])
        means = [mus[-1]]
        for l in reversed(range(len(prior.conditionals))):
            means.insert(0, precision_weighted(mus[l], logvars[l], *prior.conditionals[l](means[0]))[0])
        return torch.cat(means, dim=-1)

    def why_not(self, feature: str, prior: Prior) -> str | None:
        if feature == "kl_parts":
            return "the ladder's layers have no discrete part"
        if feature == "kl_per_dim":
            return "the ladder's KL of each layer is conditional on the layers above, so it does not split per dimension"
        if feature == "density":
            return "each layer's posterior depends on the layers drawn above it, so q(z|x) has no per-dimension density"
        if feature == "moments":
            return "each layer's posterior depends on the layers drawn above it, so its moments have no closed form"
        return None
