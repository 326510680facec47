"""The discretized logistic likelihood for 8-bit images (Salimans et al., 2017, one component)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from vaezoo.core import Likelihood

BINS = 256


class DiscretizedLogistic(Likelihood):
    """Each pixel's 256 levels get the mass of a logistic over its bin; the edge bins take the tails.

    The decoder gives a mean and a log-scale per pixel, stacked along the first (channel) axis, so its output
    has twice the channels. Pixels in [0, 1] are read on the 8-bit grid k/255 (rounded to it).
    """

    discrete = True

    def __init__(self, input_shape: Sequence[int], min_log_scale: float = -7.0) -> None:
        super().__init__(input_shape)
        self.min_log_scale = float(min_log_scale)

    def param_shape(self) -> tuple[int, ...]:
        return (2 * self.input_shape[0], *self.input_shape[1:])

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_scale = params.chunk(2, dim=1)
        return mean, log_scale.clamp(min=self.min_log_scale)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mean, log_scale = self._split(params)
        level = torch.round(x.clamp(0, 1) * (BINS - 1))
        centred = level / (BINS - 1) - mean
        inv_scale = torch.exp(-log_scale)
        half_bin = 0.5 / (BINS - 1)
        upper = inv_scale * (centred + half_bin)
        lower = inv_scale * (centred - half_bin)
        # log(sigmoid(u) - sigmoid(l)) without cancellation:
        # sigmoid(u) - sigmoid(l) = sigmoid(u) sigmoid(-l) (1 - e^(l - u))
        inner = F.logsigmoid(upper) + F.logsigmoid(-lower) + torch.log(-torch.expm1(lower - upper))
        first = F.logsigmoid(upper)  # level 0: everything below the upper edge
        last = F.logsigmoid(-lower)  # level 255: everything above the lower edge
        log_p = torch.where(level == 0, first, torch.where(level == BINS - 1, last, inner))
        return log_p.flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return self._split(params)[0].clamp(0, 1)
