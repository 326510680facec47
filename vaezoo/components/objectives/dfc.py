"""The deep feature consistent VAE (DFC-VAE; Hou et al., 2017): the reconstruction is judged in the hidden
features of a network trained for classification, not pixel by pixel. vaezoo's network is the FeatureNet it
trains on the dataset's class labels (as for FID and the ldm objective's domain perceptual distance), handed over
by the training loop; its weights are saved with the model."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from vaezoo.components.layers import image_shape, positive_int
from vaezoo.components.objectives.perceptual import PerceptualDistance
from vaezoo.core import VAE, Objective, VAEOutput
from vaezoo.core.estimators import elbo_terms


class FeatureConsistentVAE(Objective):
    """Per example: feature_weight x pixels x sum_l |phi_l(x^) - phi_l(x)|^2 / (2 C_l H_l W_l) + kl_weight x KL
    - pixel_weight x log p(x|z); the loss is the batch mean. phi_l are the three ReLU layers of the dataset's
    FeatureNet (the paper's relu1_1, relu2_1, relu3_1 of VGG19: VAE-123), x^ the likelihood's mean. Hou et al.
    take kl_weight 1, feature_weight 0.5 and no pixel term; pixels (the number of values in an image) puts the
    feature term on the scale of a likelihood summed over pixels. The network trains for `feature_steps` steps
    (cached per dataset); with feature_weight 0 none is needed."""

    feature_network_off = "objective.feature_weight=0"

    def __init__(self, input_shape: Sequence[int], feature_weight: float = 0.5, kl_weight: float = 1.0,
                 pixel_weight: float = 0.0, feature_steps: int = 1000) -> None:
        super().__init__()
        for name, value in (("feature_weight", feature_weight), ("kl_weight", kl_weight),
                            ("pixel_weight", pixel_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        self.feature_weight, self.kl_weight = float(feature_weight), float(kl_weight)
        self.pixel_weight, self.feature_steps = float(pixel_weight), positive_int("feature_steps", feature_steps)
        if feature_weight > 0:
            image_shape("dfc objective's feature network", input_shape)
        self.features = PerceptualDistance(input_shape, "domain" if feature_weight > 0 else "none")

    def feature_network_steps(self) -> int | None:
        return self.feature_steps if self.features.wants_feature_network() else None

    def use_feature_network(self, net: nn.Module, record: dict[str, Any]) -> None:
        self.features.use_feature_network(net, record)

    def describe(self) -> dict[str, Any]:
        return self.features.describe()

    def feature_distance(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """sum_l |phi_l(x^) - phi_l(x)|^2 / (2 C_l H_l W_l) per example [B]."""
        total = x.new_zeros(len(x))
        for a, b in zip(self.features.activations(x_hat), self.features.activations(x)):
            total = total + 0.5 * (a - b).pow(2).flatten(1).mean(1)
        return total

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        if x.dim() != 4:
            raise ValueError(f"the dfc objective compares images [B, C, H, W], got a batch of shape {tuple(x.shape)}")
        out = elbo_terms(vae, x, y)
        feature = (self.feature_distance(vae.likelihood.mean(out.params), x) if self.feature_weight > 0
                   else x.new_zeros(len(x)))
        per_example = (self.feature_weight * x[0].numel() * feature + self.kl_weight * out.kl
                       - self.pixel_weight * out.recon)
        out.loss = per_example.mean()
        out.terms["feature_distance"] = feature
        return out
