"""The adversaries of the adversarial objectives: a discriminator on latent codes and one on images."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from vaezoo.components.layers import halved_sizes, mlp, positive_ints
from vaezoo.components.spectral import SpectralConv2d, SpectralLinear


class CodeDiscriminator(nn.Module):
    """An MLP from latent codes [B, latent_dim] to `outputs` logits (LeakyReLU, as in Kim & Mnih, 2018)."""

    def __init__(self, latent_dim: int, hidden_dims: Sequence[int], outputs: int) -> None:
        super().__init__()
        self.body, width = mlp(latent_dim, hidden_dims, "leaky_relu")
        self.head = nn.Linear(width, outputs)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(z))


class ImageDiscriminator(nn.Module):
    """Stride-2 convolutions and a dense layer from images [B, C, H, W] to features [B, hidden] and one logit;
    the features are the learned similarity of VAE-GAN (Larsen et al., 2016). Inputs of another rank are
    flattened into an MLP. Every layer is spectrally normalized (Miyato et al., 2018), which bounds how fast its
    features and logit can change with the image: unconstrained, they grew until their gradients drowned the
    decoder's pixel likelihood in a high-frequency texture."""

    def __init__(self, input_shape: Sequence[int], channels: Sequence[int], hidden: int) -> None:
        super().__init__()
        if len(input_shape) == 3:
            c, h, w = input_shape
            stack: list[nn.Module] = []
            for out in positive_ints("channels", channels):
                stack += [SpectralConv2d(c, out, kernel_size=3, stride=2, padding=1), nn.LeakyReLU(0.2)]
                c = out
            self.body = nn.Sequential(*stack, nn.Flatten())
            flat = c * halved_sizes(h, len(channels))[-1] * halved_sizes(w, len(channels))[-1]
        else:
            self.body, flat = nn.Flatten(), math.prod(input_shape)
        self.features = nn.Sequential(SpectralLinear(flat, hidden), nn.LeakyReLU(0.2))
        self.head = SpectralLinear(hidden, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features [B, hidden], logit [B]) of x."""
        features = self.features(self.body(x))
        return features, self.head(features).squeeze(-1)
