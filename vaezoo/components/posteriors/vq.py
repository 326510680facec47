"""Vector quantization (VQ-VAE; van den Oord et al., 2017): each code_dim block of the encoder's output is
replaced by its nearest codebook vector, with the straight-through gradient."""
from __future__ import annotations

import torch

from vaezoo.core import Latent, Posterior, Prior


class VQPosterior(Posterior):
    """q(z|x) puts all its mass on the nearest codes: z = e_k with k_n = argmin_k |z_e,n - e_k| per position.

    The decoder's gradient reaches the encoder straight through (z = z_e + sg(e - z_e)). The posterior's own
    loss, in `Latent.aux` (so in terms["posterior_loss"], added to the objective's loss by VAE.forward), is per
    example commitment * |z_e - sg(e)|^2, plus |sg(z_e) - e|^2 when the codebook prior learns by loss (with
    update="ema" the codebook moves in `draw`, in training mode, instead). Sums run over the latent
    dimensions, as the likelihood's over pixels.

    The one-hot posterior's KL against the codebook prior is -sum_n log pi_n(k_n) (log codes per position for
    a uniform pi), and log q(z|x) = 0; several draws repeat the one code, so importance weighting gives the
    ELBO. Needs the codebook prior, whose codes it uses.
    """

    family = "vq"
    requires = frozenset({"codes"})

    def __init__(self, latent_dim: int, commitment: float = 0.25) -> None:
        super().__init__(latent_dim)
        if not commitment >= 0:
            raise ValueError(f"commitment must be non-negative, got {commitment}")
        self.commitment = float(commitment)

    def param_dims(self) -> tuple[int, ...]:
        return (self.latent_dim,)

    def draw(self, params: tuple[torch.Tensor, ...], prior: Prior, samples: int | None = None) -> Latent:
        z_e = params[0]
        blocks = z_e.unflatten(-1, (prior.positions, prior.code_dim))
        indices = prior.nearest(blocks.detach())
        if prior.update == "ema" and self.training and torch.is_grad_enabled():
            prior.ema_update(blocks.detach(), indices)
        z_q = prior.lookup(indices)
        aux = self.commitment * (z_e - z_q.detach()).pow(2).sum(-1)
        if prior.update == "loss":
            aux = aux + (z_e.detach() - z_q).pow(2).sum(-1)
        z = z_e + (z_q - z_e).detach()
        kl = -prior.code_log_prob(indices)
        log_q = torch.zeros_like(kl)
        if samples is not None:
            z, log_q = z.expand(samples, *z.shape), log_q.expand(samples, *log_q.shape)
        return Latent(z, kl, log_q, aux)

    def mean(self, params: tuple[torch.Tensor, ...], prior: Prior) -> torch.Tensor:
        """The quantized code."""
        blocks = params[0].unflatten(-1, (prior.positions, prior.code_dim))
        return prior.lookup(prior.nearest(blocks))

    def why_not(self, feature: str, prior: Prior) -> str | None:
        if feature == "kl_parts":
            return "a quantized posterior's KL has no continuous part"
        if feature == "kl_per_dim":
            return "the KL of a quantized code is one term per code vector of code_dim dimensions"
        if feature == "density":
            return "a quantized posterior is a point mass, with no density per dimension"
        if feature == "moments":
            return "a quantized posterior is a point mass on the nearest codes"
        return None
