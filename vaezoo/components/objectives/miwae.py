"""The MIWAE family of Rainforth et al. (2018), "Tighter variational bounds are not necessarily better":
MIWAE, CIWAE and PIWAE, built on the importance weights of `estimators.iw_terms`.

With log weights log w_k = log p(x, z_k) - log q(z_k|x) of the same draws, Jensen's inequality orders
the estimates deterministically: the ELBO estimate mean_k log w_k <= MIWAE(M, K) <= IWAE(M K), and CIWAE(beta)
lies between the ELBO estimate and IWAE(K). In expectation MIWAE(M, K) = IWAE(K), so
ELBO <= MIWAE(M, K) <= IWAE(M K) <= log p(x).
"""
from __future__ import annotations

import abc
import math

import torch

from vaezoo.components.layers import positive_int
from vaezoo.core import VAE, Objective, VAEOutput
from vaezoo.core.estimators import iw_terms


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """log mean_k w_k over the first dimension of log_w [K, B]: the K-sample bound, [B]."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def miwae_bound(log_w: torch.Tensor, groups: int) -> torch.Tensor:
    """The mean over `groups` disjoint groups of the IWAE bound of each, for log_w [groups * K, B]: [B]."""
    return iwae_bound(log_w.unflatten(0, (groups, -1)).transpose(0, 1)).mean(0)


def ciwae_bound(log_w: torch.Tensor, beta: float) -> torch.Tensor:
    """beta * ELBO estimate + (1 - beta) * IWAE bound of the same K draws, [B]."""
    return beta * log_w.mean(0) + (1.0 - beta) * iwae_bound(log_w)


class _Weighted(Objective):
    """An objective on the log weights of `draws()` importance samples per input."""

    def needs(self) -> frozenset[str]:
        return frozenset({"samples"})

    @abc.abstractmethod
    def draws(self) -> int:
        """How many draws of z per input."""

    @abc.abstractmethod
    def bound(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None, out: VAEOutput) -> torch.Tensor:
        """The per-example bound whose negative mean is the loss, from the output of `iw_terms`."""

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        out = iw_terms(vae, x, self.draws(), y)
        bound = self.bound(vae, x, y, out)
        out.terms[f"{type(self).__name__.lower()}_bound"] = bound
        out.loss = -bound.mean()
        return out


class MIWAE(_Weighted):
    """The mean of `groups` (M) IWAE bounds of `samples` (K) draws each: M = 1 is IWAE, K = 1 the M-sample ELBO."""

    def __init__(self, samples: int = 4, groups: int = 4) -> None:
        super().__init__()
        self.samples, self.groups = positive_int("samples", samples), positive_int("groups", groups)

    def draws(self) -> int:
        return self.samples * self.groups

    def bound(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None, out: VAEOutput) -> torch.Tensor:
        return miwae_bound(out.terms["log_w"], self.groups)


class CIWAE(_Weighted):
    """beta ELBO + (1 - beta) IWAE(K) on the same `samples` draws: beta = 1 is the ELBO, 0 the IWAE."""

    def __init__(self, samples: int = 16, beta: float = 0.5) -> None:
        super().__init__()
        self.samples = positive_int("samples", samples)
        if not 0 <= beta <= 1:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        self.beta = float(beta)

    def draws(self) -> int:
        return self.samples

    def bound(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None, out: VAEOutput) -> torch.Tensor:
        return ciwae_bound(out.terms["log_w"], self.beta)


class PIWAE(MIWAE):
    """The generative network (decoder, likelihood and prior) follows the IWAE(M K) bound, the inference network
    (encoder and posterior) the MIWAE(M, K) bound, of the same M K draws.

    A second pass of the decoder on the draws with their gradient stopped gives log p(x, z) whose gradient
    reaches only the generative network; the loss adds IWAE - MIWAE of it, so the generative network's
    gradient is that of IWAE(M K) while the inference network's is that of MIWAE(M, K). Its value is
    -IWAE(M K), which is also terms["piwae_bound"].
    """

    def bound(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None, out: VAEOutput) -> torch.Tensor:
        log_w = out.terms["log_w"]
        z = out.z.detach()
        params = vae.decode_params(z, y)
        flat_x = x.expand(len(z), *x.shape).flatten(0, 1)
        joint = vae.likelihood.log_prob(params.flatten(0, 1), flat_x).view(len(z), -1) + vae.prior.log_prob(z)
        generative = log_w.detach() + joint - joint.detach()
        return miwae_bound(log_w, self.groups) + iwae_bound(generative) - miwae_bound(generative, self.groups)
