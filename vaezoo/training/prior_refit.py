"""Refitting a prior to the codes the encoder gives the training set (VQ-VAE's prior over codes), which the
trainer does after each epoch's training, before that epoch is evaluated and saved."""
from __future__ import annotations

import torch

from vaezoo.core import VAE
from vaezoo.runtime.distributed import World


@torch.no_grad()
def refit_prior(
    model: VAE, x: torch.Tensor, y: torch.Tensor | None, *, binarize: bool, seed: int, batch_size: int, world: World
) -> None:
    """Sum the prior's `code_statistics` of the posterior means of x (binarized once, by `seed`, when training
    binarizes afresh; each rank its shard of every batch, summed over the ranks) and `refit` the prior with
    them. Nothing happens for a prior that does not refit."""
    prior = model.prior
    if not prior.refits:
        return
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    total = prior.code_statistics(torch.zeros(0, model.latent_dim, device=world.device))
    try:
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size]
            if binarize:
                xb = torch.bernoulli(xb, generator=generator)
            lo, hi = world.shard(len(xb))
            if lo < hi:
                yb = None if y is None else y[start + lo : start + hi].to(world.device)
                total += prior.code_statistics(model.posterior_mean(xb[lo:hi].to(world.device), yb))
    finally:
        model.train(was_training)
    prior.refit(world.sum(total))
