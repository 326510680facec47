"""Refitting a prior to the codes the encoder gives the training set (VQ-VAE's prior over codes), which the
trainer does after each epoch's training, before that epoch is evaluated and saved."""
from __future__ import annotations

from collections.abc import Iterable

import torch

from vaezoo.core import VAE
from vaezoo.runtime.distributed import World


@torch.no_grad()
def refit_prior(model: VAE, batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]], *, world: World) -> None:
    """Sum the prior's `code_statistics` of the posterior means of the training batches (x, y) streamed by
    `batches` (on every rank its shard of each batch, summed over the ranks) and `refit` the prior with them.
    Nothing happens for a prior that does not refit."""
    prior = model.prior
    if not prior.refits:
        return
    was_training = model.training
    model.eval()
    total = prior.code_statistics(torch.zeros(0, model.latent_dim, device=world.device))
    try:
        for x, y in batches:
            total += prior.code_statistics(model.posterior_mean(x, y))
    finally:
        model.train(was_training)
    prior.refit(world.sum(total))
