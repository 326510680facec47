"""The hand-written baseline of the trainer benchmark: a 784-400-400-20 Bernoulli VAE and its training loop in
plain PyTorch, the way a user would write them (no vaezoo imports, so pythae's environment can run it too)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class HandVAE(nn.Module):
    """Encoder 784-400-400-(2x20), decoder 20-400-400-784, ReLU; Bernoulli logits; N(0, I) prior."""

    def __init__(self, pixels: int = 784, hidden: int = 400, latent: int = 20) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(pixels, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, pixels))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The negative ELBO, mean over the batch."""
        mu, logvar = self.encoder(x.flatten(1)).chunk(2, dim=-1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = F.binary_cross_entropy_with_logits(self.decoder(z), x.flatten(1), reduction="none").sum(-1)
        kl = 0.5 * (torch.exp(logvar) + mu * mu - 1.0 - logvar).sum(-1)
        return (recon + kl).mean()


def hand_epoch(model: nn.Module, loss_of, optimizer: torch.optim.Optimizer, train_x: torch.Tensor,
               batch_size: int, generator: torch.Generator) -> tuple[float, float]:
    """One epoch of a plain loop (shuffle, binarize each batch, step, log the loss): (seconds, mean loss)."""
    import time

    start = time.perf_counter()
    order = torch.randperm(len(train_x), generator=generator)
    total = 0.0
    for i in range(math.ceil(len(train_x) / batch_size)):
        x = torch.bernoulli(train_x[order[i * batch_size:(i + 1) * batch_size]], generator=generator)
        loss = loss_of(model, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(x)
    return time.perf_counter() - start, total / len(train_x)
