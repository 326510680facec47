"""The building blocks of the latent-diffusion autoencoder (Rombach et al., 2022): ResNet blocks with GroupNorm
and an activation, a single-head self-attention over positions, stride-2 downsampling and nearest-neighbour
upsampling. Submodule names follow diffusers' AutoencoderKL, so its weights map one to one by key."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from vaezoo.components import layers

#: GroupNorm's epsilon in every block, as in the reference models.
EPS = 1e-6


def group_norm(groups: int, channels: int) -> nn.GroupNorm:
    """GroupNorm over `channels` in `groups` groups (refused with the sizes when they do not divide)."""
    if channels % groups:
        raise ValueError(f"norm_num_groups ({groups}) must divide every channel count; {channels} is not a multiple")
    return nn.GroupNorm(groups, channels, eps=EPS, affine=True)


class ResnetBlock(nn.Module):
    """x + conv(act(norm(conv(act(norm(x)))))); a 1x1 convolution on the skip path when the width changes."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, act: str) -> None:
        super().__init__()
        self.norm1 = group_norm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = group_norm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.nonlinearity = layers.activation(act)
        self.conv_shortcut = (
            nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.nonlinearity(self.norm1(x)))
        h = self.conv2(self.nonlinearity(self.norm2(h)))
        skip = x if self.conv_shortcut is None else self.conv_shortcut(x)
        return skip + h


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v. Where a graph is built, by torch's math kernel: the fused kernels have no
    double backward, which a gradient penalty through the decoder takes (the rae objective's "gp")."""
    if not torch.is_grad_enabled():
        return F.scaled_dot_product_attention(q, k, v)
    with sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(q, k, v)


class SelfAttention(nn.Module):
    """One attention head over the h*w positions of a feature map, after GroupNorm, added back to its input."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.group_norm = group_norm(groups, channels)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.group_norm(x).flatten(2).transpose(1, 2)  # [B, h*w, C]
        q, k, v = self.to_q(tokens), self.to_k(tokens), self.to_v(tokens)
        attended = attend(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)).squeeze(1)
        out = self.to_out[0](attended)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class MidBlock(nn.Module):
    """ResNet block, self-attention (optional), ResNet block, at the lowest resolution."""

    def __init__(self, channels: int, groups: int, act: str, attention: bool) -> None:
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(channels, channels, groups, act) for _ in range(2)])
        self.attentions = nn.ModuleList([SelfAttention(channels, groups)] if attention else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        for attention in self.attentions:
            x = attention(x)
        return self.resnets[1](x)


class Downsample(nn.Module):
    """Halve H and W: pad one zero row and column at the bottom and right, then a stride-2 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Double H and W: nearest-neighbour, then a 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Stage(nn.Module):
    """`count` ResNet blocks from `in_channels` to `out_channels`, then the resampler, if any, kept in the list
    `downsamplers` or `upsamplers` (`where`) as the diffusers key names it."""

    def __init__(self, in_channels: int, out_channels: int, count: int, groups: int, act: str,
                 resampler: nn.Module | None, where: str) -> None:
        super().__init__()
        widths = [in_channels] + [out_channels] * count
        self.resnets = nn.ModuleList(ResnetBlock(a, b, groups, act) for a, b in zip(widths[:-1], widths[1:]))
        self.where = where
        setattr(self, where, nn.ModuleList([resampler] if resampler is not None else []))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resnets:
            x = block(x)
        for resampler in getattr(self, self.where):
            x = resampler(x)
        return x
