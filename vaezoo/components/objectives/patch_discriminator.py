"""The patch discriminator of pix2pix, VQGAN and latent diffusion's autoencoders (Isola et al., 2017; Esser et al.,
2021): a fully convolutional network that gives one real/fake logit per overlapping image patch, trained with the
hinge loss."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.components.layers import image_shape, positive_int


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm (up to 8 groups): unlike the BatchNorm of the original it keeps no running statistics, so the
    generator's forward passes through the discriminator change nothing in it and a resumed run is exact."""
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


def fitting_layers(height: int, width: int, most: int = 3) -> int:
    """The layers of a patch discriminator for images of height x width: `most` (pix2pix's 3), or fewer for images
    under 3 * 2**most pixels a side (at least 1)."""
    layers = most
    while layers > 1 and min(height, width) < 3 * 2**layers:
        layers -= 1
    return layers


class PatchDiscriminator(nn.Module):
    """A 4x4 stride-2 convolution of `channels` features, `layers` - 1 more stride-2 stages doubling them (up to
    8x), one stride-1 stage, and a 4x4 convolution to one logit per patch: [B, C, H, W] -> [B, 1, h, w]. Each
    logit sees a receptive field of 70x70 pixels at layers = 3, as in pix2pix; layers=None takes 3, or as many
    as the image size allows (see fitting_layers)."""

    def __init__(self, input_shape: Sequence[int], channels: int = 64, layers: int | None = None) -> None:
        super().__init__()
        c, h, w = image_shape("patch discriminator", input_shape)
        channels = positive_int("channels", channels)
        layers = fitting_layers(h, w) if layers is None else positive_int("layers", layers)
        if min(h, w) < 3 * 2**layers:  # halved `layers` times, then two 4x4 stride-1 convolutions take 1 each
            raise ValueError(f"a patch discriminator of {layers} layers needs images of at least {3 * 2**layers} "
                             f"pixels a side, got {h}x{w}: lower discriminator_layers")
        stack: list[nn.Module] = [nn.Conv2d(c, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        width = channels
        for n in range(1, layers + 1):
            out = channels * min(2**n, 8)
            stride = 2 if n < layers else 1
            stack += [nn.Conv2d(width, out, 4, stride=stride, padding=1, bias=False), _norm(out), nn.LeakyReLU(0.2)]
            width = out
        stack.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*stack)
        for module in self.modules():  # the initialization of pix2pix: N(0, 0.02) weights, N(1, 0.02) norm scales
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
            elif isinstance(module, nn.GroupNorm):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch logits [B, 1, h, w]."""
        return self.net(x)


def hinge_discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """(mean relu(1 - real) + mean relu(1 + fake)) / 2: zero once real patches score above 1 and fake below -1."""
    return 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())


def hinge_generator_loss(fake: torch.Tensor) -> torch.Tensor:
    """Per example, minus the mean patch logit of the generated image [B]."""
    return -fake.flatten(1).mean(1)
