"""Regularized autoencoders (RAE; Ghosh et al., 2020): a deterministic autoencoder whose codes are kept near the
origin by beta/2 |z|^2 and whose decoder is kept smooth by an L2 penalty on its weights or a gradient penalty,
sampled afterwards through a density fitted to its codes (the gmm sampler)."""
from __future__ import annotations

import torch

from vaezoo.core import VAE, Objective, VAEOutput
from vaezoo.core.estimators import elbo_terms

REGULARIZERS = ("l2", "gp")


class RAE(Objective):
    """-E[log p(x|z)] + latent_weight * |z|^2 / 2 + decoder_weight * R, with R per `regularizer`:
    - "l2": the sum of squares of the decoder's weights (RAE-L2);
    - "gp": |d D(z) / dz|_F^2, the squared Frobenius norm of the decoder's Jacobian at the batch's codes,
      estimated without bias by |J^T v|^2 with one v ~ N(0, I) per example (RAE-GP).
    The posterior's KL (0 for the deterministic posterior) is not part of the loss; it is reported as `kl`."""

    def __init__(self, latent_weight: float = 1.0, decoder_weight: float = 1e-3, regularizer: str = "l2") -> None:
        super().__init__()
        if regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {', '.join(REGULARIZERS)}, got {regularizer!r}")
        if not latent_weight >= 0 or not decoder_weight >= 0:
            raise ValueError(f"the weights must be non-negative, got {latent_weight} and {decoder_weight}")
        self.latent_weight, self.decoder_weight, self.regularizer = float(latent_weight), float(decoder_weight), regularizer

    def decoder_penalty(self, vae: VAE, out: VAEOutput) -> torch.Tensor:
        """R: a scalar for "l2", one value per example for "gp"."""
        if self.regularizer == "l2":
            return sum(p.pow(2).sum() for p in vae.decoder.parameters())
        v = torch.randn_like(out.params)
        (grad,) = torch.autograd.grad((out.params * v).sum(), out.z, create_graph=True)
        return grad.pow(2).sum(-1)

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        out = elbo_terms(vae, x, y)
        latent = 0.5 * out.z.pow(2).sum(-1)
        # the gradient penalty differentiates the decoder's output: only where a graph is built (training)
        wanted = self.decoder_weight > 0 and (self.regularizer == "l2" or out.z.requires_grad)
        decoder = self.decoder_penalty(vae, out) if wanted else latent.new_zeros(())
        out.terms.update(latent_penalty=latent, decoder_penalty=decoder.expand_as(latent) if decoder.dim() == 0 else decoder)
        out.loss = (-out.recon + self.latent_weight * latent).mean() + self.decoder_weight * decoder.mean()
        return out
