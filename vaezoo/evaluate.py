"""Measuring a trained VAE: held-out ELBO and its terms, in nats per example."""
from __future__ import annotations

import torch

from vaezoo.data import batches
from vaezoo.model import VAE


@torch.no_grad()
def elbo(model: VAE, x: torch.Tensor, batch_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """Mean one-sample ELBO, reconstruction term and KL over x, with z drawn from a fixed seed.

    The global RNG is left as it was, so evaluating does not change what training draws next.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    totals = {"elbo": 0.0, "recon": 0.0, "kl": 0.0}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for batch in batches(x, batch_size, shuffle=False):
            out = model.elbo_terms(batch.to(device))
            totals["elbo"] += out.elbo.sum().item()
            totals["recon"] += out.recon.sum().item()
            totals["kl"] += out.kl.sum().item()
    model.train(was_training)
    return {key: value / len(x) for key, value in totals.items()}
