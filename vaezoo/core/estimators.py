"""Estimators over a VAE's parts: the one-sample ELBO, the importance-weighted bound, the KL per dimension.

Objectives and evaluation call these; each goes through the posterior (which draws z and the KL) and the
likelihood, so it holds for any combination of parts that offers what it needs.
"""
from __future__ import annotations

import math

import torch

from vaezoo.core.latent import Latent
from vaezoo.core.model import VAE
from vaezoo.core.output import VAEOutput


def with_posterior_loss(terms: dict[str, torch.Tensor], latent: Latent) -> dict[str, torch.Tensor]:
    """Put the posterior's own loss, if it has one, in terms["posterior_loss"] (VAE.forward adds it to the loss)."""
    if latent.aux is not None:
        terms["posterior_loss"] = latent.aux
    return terms


def elbo_terms(vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None, *, kl_per_dim: bool = False,
               kl_parts: bool = False) -> VAEOutput:
    """One-sample ELBO terms with beta = 1; loss is the negative mean ELBO.

    With `kl_per_dim`, terms["kl_per_dim"] holds the [B, latent_dim] KL terms that `kl` sums (the posterior
    must offer the feature "kl_per_dim" with this prior); with `kl_parts`, terms["kl_parts"] holds the [B, 2]
    continuous and discrete parts of `kl` (the feature "kl_parts").
    """
    q_params = vae.encode(x, y)
    if kl_per_dim:
        latent = vae.posterior.kl_per_dim(q_params, vae.prior)
        kl, terms = latent.kl.sum(-1), {"kl_per_dim": latent.kl}
    elif kl_parts:
        latent = vae.posterior.kl_parts(q_params, vae.prior)
        kl, terms = latent.kl.sum(-1), {"kl_parts": latent.kl}
    else:
        latent = vae.posterior.draw(q_params, vae.prior)
        kl, terms = latent.kl, {}
    with_posterior_loss(terms, latent)
    params = vae.decode_params(latent.z, y)
    recon = vae.likelihood.log_prob(params, x)
    return VAEOutput(-(recon - kl).mean(), recon, kl, latent.z, q_params, params, terms)


def iw_terms(vae: VAE, x: torch.Tensor, samples: int, y: torch.Tensor | None = None) -> VAEOutput:
    """The K-sample importance-weighted bound log mean_k p(x, z_k) / q(z_k|x), per example.

    terms["iw_bound"] is the bound [B] and terms["log_w"] the log weights [K, B]; loss is the negative mean
    bound; recon and kl are averaged over the K samples (their difference is the K-sample ELBO estimate);
    z is [K, B, latent_dim]. The posterior must offer the feature "samples".
    """
    vae.posterior.require("samples", vae.prior)
    q_params = vae.encode(x, y)
    latent = vae.posterior.draw(q_params, vae.prior, samples)
    params = vae.decode_params(latent.z, y)
    flat_x = x.expand(samples, *x.shape).flatten(0, 1)
    recon = vae.likelihood.log_prob(params.flatten(0, 1), flat_x).view(samples, -1)
    kl = latent.log_q - vae.prior.log_prob(latent.z)
    log_w = recon - kl
    bound = torch.logsumexp(log_w, dim=0) - math.log(samples)
    terms = with_posterior_loss({"iw_bound": bound, "log_w": log_w}, latent)
    return VAEOutput(-bound.mean(), recon.mean(0), kl.mean(0), latent.z, q_params, params, terms)
