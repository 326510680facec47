"""A structural reconstruction term: alpha (1 - MS-SSIM) + (1 - alpha) L1 (Zhao et al., 2017, "Loss functions for
image restoration with neural networks"), on vaezoo's MS-SSIM metric made differentiable. It is not a normalized
likelihood: its "log-probability" is a negative distance, so a model's "ELBO" on it is not a bound on log p(x)."""
from __future__ import annotations

from typing import Sequence

import torch

from vaezoo.components.layers import image_shape
from vaezoo.core import Likelihood
from vaezoo.metrics.image_quality import WINDOW, ms_ssim_scales, ms_ssim_tensor


class MSSSIMDistance(Likelihood):
    """log "p"(x | logits) = -weight x (alpha (1 - MS-SSIM(x^, x)) + (1 - alpha) mean |x^ - x|) per image, x^ the
    sigmoid of the decoder's output (images in [0, 1]). Zhao et al. take alpha = 0.84 (and weigh the L1 term by
    a Gaussian window; here it is the plain mean). `weight` defaults to the number of values in an image, so the
    L1 part is the summed L1 distance and the term is on the scale of a per-pixel likelihood. MS-SSIM uses the
    11-pixel window (the largest odd window that fits smaller images) and as many scales as fit."""

    def __init__(self, input_shape: Sequence[int], alpha: float = 0.84, weight: float | None = None) -> None:
        super().__init__(input_shape)
        _, height, width = image_shape("ms-ssim likelihood", self.input_shape)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be a number in [0, 1] (the weight of 1 - MS-SSIM), got {alpha!r}")
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0):
            raise ValueError(f"weight must be a positive number, got {weight!r}")
        self.alpha = float(alpha)
        self.weight = float(weight) if weight is not None else float(torch.Size(self.input_shape).numel())
        self.window = min(WINDOW, min(height, width) - (1 - min(height, width) % 2))
        self.scales = ms_ssim_scales(height, width, self.window)

    def distance(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """alpha (1 - MS-SSIM) + (1 - alpha) mean |x^ - x|, per image [B]."""
        structural = 1 - ms_ssim_tensor(x_hat, x, window=self.window, scales=self.scales)
        return self.alpha * structural + (1 - self.alpha) * (x_hat - x).abs().flatten(1).mean(1)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -self.weight * self.distance(self.mean(params), x)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)
