"""An autoregressive prior over VQ-VAE code indices (the second stage of van den Oord et al., 2017): a
PixelCNN-style stack of gated causal convolutions predicts each position's code from the codes before it.

The built-in VQ posterior's code map is the sequence of `positions` code vectors the encoder returns (a flat
vector, not an image), so the masked convolutions are one-dimensional: position n sees positions < n only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.components.layers import positive_int
from vaezoo.components.samplers.minibatch import fit_by_gradient
from vaezoo.core import Prior, Sampler
from vaezoo.core.sampler import Progress


class GatedCausalBlock(nn.Module):
    """h + W * (tanh(conv_f(h)) * sigmoid(conv_g(h))), the convolutions padded on the left only (causal)."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.pad = kernel - 1
        self.conv = nn.Conv1d(channels, 2 * channels, kernel)
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        f, g = self.conv(F.pad(h, (self.pad, 0))).chunk(2, dim=1)
        return h + self.out(torch.tanh(f) * torch.sigmoid(g))


class PixelCNNSampler(Sampler):
    """p(k_1..k_N) = prod_n p(k_n | k_<n) over the codebook prior's N positions of `codes` indices: the input is
    the code sequence shifted right by one (a start token first), embedded with a learned per-position vector,
    through `blocks` gated causal blocks, to logits over the codes. Fitted by cross-entropy on the training set's
    codes (the indices of its quantized posterior means); sampled one position at a time, logits / temperature."""

    fits = frozenset({"vq"})
    default_epochs = 10

    def __init__(self, latent_dim: int, prior: Prior, channels: int = 128, blocks: int = 4, kernel: int = 3,
                 batch_size: int = 256, lr: float = 1e-3) -> None:
        super().__init__(latent_dim)
        object.__setattr__(self, "prior", prior)  # the model's codebook, not a copy: kept out of this module's state
        self.positions = getattr(prior, "positions", 1)
        self.codebook_size = getattr(prior, "codes", 1)
        channels = positive_int("channels", channels)
        self.batch_size, self.lr = positive_int("batch_size", batch_size), float(lr)
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.embed = nn.Embedding(self.codebook_size + 1, channels)  # the last index is the start token
        self.position = nn.Parameter(torch.zeros(self.positions, channels))
        self.blocks = nn.Sequential(*(GatedCausalBlock(channels, positive_int("kernel", kernel))
                                      for _ in range(positive_int("blocks", blocks))))
        self.head = nn.Conv1d(channels, self.codebook_size, 1)

    def logits(self, indices: torch.Tensor) -> torch.Tensor:
        """Logits [B, positions, codes] of each position's code given the codes before it in `indices` [B, N]."""
        start = torch.full_like(indices[:, :1], self.codebook_size)
        h = self.embed(torch.cat([start, indices[:, :-1]], dim=1)) + self.position
        return self.head(self.blocks(h.transpose(1, 2))).transpose(1, 2)

    def indices_of(self, codes: torch.Tensor) -> torch.Tensor:
        """The code indices [N, positions] of quantized codes [N, latent_dim]."""
        return self.prior.nearest(codes.unflatten(-1, (self.positions, self.prior.code_dim)))

    def fit(self, codes: torch.Tensor, epochs: int, progress: Progress | None = None) -> dict[str, float]:
        with torch.no_grad():
            indices = self.indices_of(codes.to(self.prior.embedding))

        def loss_of(batch: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(self.logits(batch).flatten(0, 1), batch.flatten())

        figures = fit_by_gradient(self, loss_of, indices, epochs, self.batch_size, self.lr, progress)
        return {"nats_per_code": figures["loss"], "nats_per_image": figures["loss"] * self.positions}

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> torch.Tensor:
        indices = torch.zeros(n, self.positions, dtype=torch.long, device=self.position.device)
        for position in range(self.positions):
            logits = self.logits(indices)[:, position] / temperature
            indices[:, position] = torch.distributions.Categorical(logits=logits).sample()
        return self.prior.lookup(indices)
