"""The objective latent diffusion's autoencoders and VQGAN are trained with (Esser et al., 2021; Rombach et al.,
2022): pixel reconstruction + a perceptual distance + a hinge patch-GAN loss whose weight adapts to the ratio of
gradient norms at the decoder's last layer, + a small KL weight (the VQ posterior adds its own codebook and
commitment losses to every objective's loss)."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from vaezoo.components.layers import positive_int
from vaezoo.components.objectives.patch_discriminator import (
    PatchDiscriminator, hinge_discriminator_loss, hinge_generator_loss,
)
from vaezoo.components.objectives.perceptual import PerceptualDistance
from vaezoo.core import VAE, Objective, VAEOutput
from vaezoo.core.estimators import elbo_terms

PIXEL_SCALE = 2.0  # images in [0, 1] span 2 on the papers' [-1, 1] scale
MAX_ADAPTIVE_WEIGHT = 1e4  # the clamp of taming-transformers: a vanishing GAN gradient must not blow the weight up


def last_layer(module: nn.Module) -> torch.Tensor:
    """The weight of a decoder's last layer: its last parameter of two or more dimensions."""
    weights = [p for p in module.parameters() if p.dim() >= 2 and p.requires_grad]
    if not weights:
        raise ValueError(f"the decoder {type(module).__name__} has no weight matrix to balance the GAN loss at")
    return weights[-1]


def adaptive_weight(reconstruction: torch.Tensor, generator: torch.Tensor, layer: torch.Tensor) -> torch.Tensor:
    """|grad_layer reconstruction| / (|grad_layer generator| + 1e-4), clamped to [0, 1e4] and detached (Esser et
    al., 2021, eq. 7): the GAN loss is scaled to pull on the decoder's last layer as hard as reconstruction does."""
    (g_rec,) = torch.autograd.grad(reconstruction, layer, retain_graph=True)
    (g_gan,) = torch.autograd.grad(generator, layer, retain_graph=True)
    return (g_rec.norm() / (g_gan.norm() + 1e-4)).clamp(0.0, MAX_ADAPTIVE_WEIGHT).detach()


class LatentDiffusionLoss(Objective):
    """Per example: |x - x^|_1 (or squared: reconstruction="l2") summed over pixels on the papers' [-1, 1]
    scale (see `distance`), + perceptual_weight x pixels x d(x, x^), + kl_weight x KL, and from step
    `discriminator_start` on, + adversarial_weight x lambda x the hinge generator loss, lambda the adaptive weight
    (1 with adaptive=False); the loss is the batch mean. x^ is the likelihood's mean of the decoded z. The patch
    discriminator is the objective's adversary, trained with the hinge loss `steps` times after each VAE step
    from `discriminator_start` on; its `discriminator_layers` are 3, or fewer for images under 24 pixels a side,
    unless given.

    The perceptual distance d runs on LPIPS or on vaezoo's feature network of the dataset (see
    `perceptual`; its `perceptual_steps` are that network's training steps); `describe` says which, for the
    run's config. Outside autograd (held-out evaluation) lambda is the last one computed in training."""

    def __init__(
        self, input_shape: Sequence[int], reconstruction: str = "l1", perceptual: str = "auto",
        perceptual_weight: float = 1.0, perceptual_steps: int = 1000, kl_weight: float = 1e-6,
        adversarial_weight: float = 0.5, adaptive: bool = True, discriminator_start: int = 0,
        discriminator_channels: int = 64, discriminator_layers: int | None = None, steps: int = 1,
    ) -> None:
        super().__init__()
        if reconstruction not in ("l1", "l2"):
            raise ValueError(f"reconstruction must be 'l1' or 'l2', got {reconstruction!r}")
        for name, value in (("perceptual_weight", perceptual_weight), ("kl_weight", kl_weight),
                            ("adversarial_weight", adversarial_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        if isinstance(discriminator_start, bool) or not isinstance(discriminator_start, int) or discriminator_start < 0:
            raise ValueError(f"discriminator_start must be a non-negative int (a step), got {discriminator_start!r}")
        if not isinstance(adaptive, bool):
            raise ValueError(f"adaptive must be true or false, got {adaptive!r}")
        self.reconstruction, self.adaptive = reconstruction, adaptive
        self.perceptual_weight, self.kl_weight = float(perceptual_weight), float(kl_weight)
        self.adversarial_weight = float(adversarial_weight)
        self.perceptual_steps = positive_int("perceptual_steps", perceptual_steps)
        self.discriminator_start, self.steps = discriminator_start, positive_int("steps", steps)
        self.perceptual = PerceptualDistance(input_shape, perceptual if perceptual_weight > 0 else "none")
        layers = None if discriminator_layers is None else positive_int("discriminator_layers", discriminator_layers)
        self.discriminator = PatchDiscriminator(input_shape, positive_int("discriminator_channels", discriminator_channels),
                                                layers)
        # the last adaptive weight, for forward passes without autograd; not saved: training recomputes it
        self.register_buffer("last_weight", torch.ones(()), persistent=False)

    @property
    def adversary_steps(self) -> int:  # type: ignore[override]
        """The discriminator's updates after this step's VAE update: none before `discriminator_start`."""
        return self.steps if self.gan_on() else 0

    def gan_on(self) -> bool:
        return self.adversarial_weight > 0 and self.step >= self.discriminator_start

    def adversary(self) -> nn.Module:
        return self.discriminator

    def feature_network_steps(self) -> int | None:
        return self.perceptual_steps if self.perceptual.wants_feature_network() else None

    def use_feature_network(self, net: nn.Module, record: dict[str, Any]) -> None:
        self.perceptual.use_feature_network(net, record)

    def describe(self) -> dict[str, Any]:
        return self.perceptual.describe()

    def distance(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The pixel distance summed over each example [B], on the [-1, 1] scale the ldm networks and the papers'
        losses work on (2|x - x^| or 4(x - x^)^2 for images in [0, 1]): on the [0, 1] scale the perceptual, KL
        and (through the adaptive weight's 1e4 clamp) GAN weights would count twice (L2: four times) as much
        against it as the papers set them."""
        diff = PIXEL_SCALE * (x_hat - x)
        return (diff.abs() if self.reconstruction == "l1" else diff.pow(2)).flatten(1).sum(1)

    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        if x.dim() != 4:
            raise ValueError(f"the ldm objective compares images [B, C, H, W], got a batch of shape {tuple(x.shape)}")
        out = elbo_terms(vae, x, y)
        x_hat = vae.likelihood.mean(out.params)
        pixels = x[0].numel()
        pixel = self.distance(x_hat, x)
        perceptual = self.perceptual(x_hat, x) if self.perceptual_weight > 0 else x_hat.new_zeros(len(x))
        nll = pixel + self.perceptual_weight * pixels * perceptual
        loss = nll.mean() + self.kl_weight * out.kl.mean()
        generator = x_hat.new_zeros(len(x))
        if self.gan_on():
            generator = hinge_generator_loss(self.discriminator(x_hat))
            if self.adaptive and torch.is_grad_enabled() and x_hat.requires_grad:
                self.last_weight = adaptive_weight(nll.mean(), generator.mean(), last_layer(vae.decoder))
            weight = self.last_weight if self.adaptive else torch.ones_like(self.last_weight)
            loss = loss + self.adversarial_weight * weight * generator.mean()
        out.loss = loss
        out.terms.update(pixel_distance=pixel, perceptual=perceptual, generator=generator,
                         adaptive_weight=self.last_weight.detach().clone(), reconstruction=x_hat)
        return out

    def adversary_loss(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None, out: VAEOutput) -> torch.Tensor:
        return hinge_discriminator_loss(self.discriminator(x), self.discriminator(out.terms["reconstruction"].detach()))
