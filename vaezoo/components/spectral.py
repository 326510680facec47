"""Spectral normalization (Miyato et al., 2018): layers whose weight, flattened to [out, in * kernel], is divided
by its largest singular value (a dense layer becomes 1-Lipschitz). The singular value is estimated by power
iteration, one step per training forward."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class SpectralNorm(nn.Module):
    """Mixin, before a layer class with a `weight` [out, ...]: keeps the power iteration's left singular vector
    in the buffer `u` (saved with the weights, so a resumed run goes on exactly) and gives the normalized weight."""

    weight: torch.Tensor

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # the layer's own constructor
        self.register_buffer("u", F.normalize(torch.randn(self.weight.shape[0]), dim=0))

    def normalized_weight(self) -> torch.Tensor:
        """weight / sigma, sigma = u^T W v from the current estimate of the top singular vectors (u, v), whose
        gradient flows through W alone."""
        with torch.autocast(self.weight.device.type, enabled=False):  # in the weight's precision under bf16
            w = self.weight.flatten(1)
            with torch.no_grad():
                if self.training:
                    self.u.copy_(F.normalize(w @ F.normalize(w.T @ self.u, dim=0), dim=0))
                u = self.u.clone()  # the backward keeps u: later forwards update the buffer in place
                v = F.normalize(w.T @ u, dim=0)
            return self.weight / torch.dot(u, w @ v)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # weights saved before this layer was normalized have no `u`: start its power iteration afresh
        state_dict.setdefault(prefix + "u", self.u)
        super()._load_from_state_dict(state_dict, prefix, *args)


class SpectralConv2d(SpectralNorm, nn.Conv2d):
    """nn.Conv2d with a spectrally normalized kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.normalized_weight(), self.bias)


class SpectralLinear(SpectralNorm, nn.Linear):
    """nn.Linear with a spectrally normalized weight."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.normalized_weight(), self.bias)
