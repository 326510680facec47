"""The perceptual distance of the latent-diffusion autoencoder objective, on one of two feature networks:

- LPIPS (Zhang et al., 2018), when the `lpips` package, torchvision, LPIPS's own linear weights and the
  backbone's ImageNet weights are all on this machine (nothing is ever downloaded: the backbone's weights must
  already be in torch hub's checkpoint folder);
- otherwise the convolutional layers of the FeatureNet that vaezoo trains on the dataset's class labels for its
  sample-quality metrics (vaezoo.metrics.classifier), handed over by the training loop before the first step.
  Its weights are saved with the model, so a resumed run and a loaded model use the very same network.

Both distances compare unit-normalized activations layer by layer, as LPIPS does; which one a run used is
recorded in its config.json and shown in its report.
"""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from vaezoo.metrics.classifier import FeatureNet

CHOICES = ("auto", "lpips", "domain", "none")
#: the torchvision checkpoint file of each LPIPS backbone, as torch hub names it
LPIPS_BACKBONES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth", "squeeze": "squeezenet1_1-b8a52dc0.pth"}


def lpips_missing(backbone: str = "alex") -> str | None:
    """Why LPIPS with `backbone` cannot run here without a download (None when it can)."""
    for package in ("lpips", "torchvision"):
        if importlib.util.find_spec(package) is None:
            return f"the {package!r} package is not installed"
    spec = importlib.util.find_spec("lpips")
    if spec is None or spec.origin is None:
        return "the 'lpips' package has no files here"
    linear = Path(spec.origin).parent / "weights" / "v0.1" / f"{backbone}.pth"
    if not linear.is_file():
        return f"LPIPS's linear weights {linear} are missing"
    backbone_file = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONES[backbone]
    if not backbone_file.is_file():
        return f"the {backbone} backbone's ImageNet weights are not in {backbone_file.parent}"
    return None


def normalized_distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the spatial mean of |a/|a| - b/|b||^2, each activation [B, C, h, w] normalized over its
    channels (LPIPS without its learned channel weights): one distance per example [B]."""
    total = 0.0
    for fa, fb in zip(a, b):
        na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        total = total + (na - nb).pow(2).sum(1).flatten(1).mean(1)
    return total  # type: ignore[return-value]


class DomainFeatures(nn.Module):
    """The three convolutions (with their ReLUs) of vaezoo's per-dataset FeatureNet, frozen; they hold random
    weights until `load` is given the trained network."""

    def __init__(self, input_shape: Sequence[int]) -> None:
        super().__init__()
        self.convs = nn.Sequential(*list(FeatureNet(tuple(input_shape), 2).body)[:6])
        self.requires_grad_(False)

    def load(self, net: nn.Module) -> None:
        """Take the convolutions of a trained FeatureNet."""
        self.convs.load_state_dict(nn.Sequential(*list(net.body)[:6]).state_dict())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each ReLU."""
        out = []
        for layer in self.convs:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                out.append(x)
        return out


class PerceptualDistance(nn.Module):
    """d(x, x') per example [B] on the feature network that `choice` names: "lpips", "domain", "auto" (LPIPS when
    it can run here, else domain), or "none" (always 0). A choice that cannot run here is refused at build."""

    def __init__(self, input_shape: Sequence[int], choice: str = "auto", backbone: str = "alex") -> None:
        super().__init__()
        if choice not in CHOICES:
            raise ValueError(f"perceptual must be one of {', '.join(CHOICES)}, got {choice!r}")
        if backbone not in LPIPS_BACKBONES:
            raise ValueError(f"lpips_backbone must be one of {', '.join(LPIPS_BACKBONES)}, got {backbone!r}")
        missing = lpips_missing(backbone) if choice in ("auto", "lpips") else "not asked for"
        if choice == "lpips" and missing:
            raise ValueError(f"perceptual='lpips' cannot run here: {missing}; use perceptual='domain' (vaezoo's "
                             "feature network trained on the dataset) or 'auto'")
        self.source = "lpips" if choice in ("auto", "lpips") and not missing else (
            "none" if choice == "none" else "domain")
        self.backbone = backbone
        self.why_not_lpips = missing
        self.record: dict[str, Any] = {}
        self.domain = DomainFeatures(input_shape) if self.source == "domain" else None
        # LPIPS is kept out of the module tree: its frozen ImageNet weights are not the model's to save
        self._lpips: list[nn.Module] = []
        if self.source == "lpips":
            lpips = importlib.import_module("lpips")
            self._lpips.append(lpips.LPIPS(net=backbone, verbose=False).eval().requires_grad_(False))

    def wants_feature_network(self) -> bool:
        return self.source == "domain"

    def use_feature_network(self, net: nn.Module, record: dict[str, Any]) -> None:
        """Take the trained FeatureNet of the dataset, and what it is (recorded in the run's config)."""
        assert self.domain is not None
        self.domain.load(net)
        self.record = dict(record)

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The domain feature network's activations of images [B, C, H, W], one per ReLU (source "domain")."""
        if self.domain is None:
            raise ValueError(f"the {self.source!r} perceptual distance has no domain feature network")
        return self.domain(x)

    def describe(self) -> dict[str, Any]:
        """Which feature network the distance runs on, in words and figures."""
        if self.source == "lpips":
            return {"perceptual": f"LPIPS v0.1 ({self.backbone} backbone, ImageNet weights found locally)"}
        if self.source == "none":
            return {"perceptual": "none (perceptual weight applies to nothing)"}
        said = ("vaezoo FeatureNet trained on this dataset's class labels (domain features, as for FID): LPIPS was "
                f"not used because {self.why_not_lpips}" if self.why_not_lpips != "not asked for" else
                "vaezoo FeatureNet trained on this dataset's class labels (domain features, as for FID)")
        return {"perceptual": said, "perceptual_network": self.record}

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The distance [B] between images x and target, both [B, C, H, W] in [0, 1]."""
        if self.source == "none":
            return x.new_zeros(len(x))
        if self.source == "domain":
            return normalized_distance(self.domain(x), self.domain(target))  # type: ignore[misc]
        net = self._lpips[0].to(x.device)
        if x.shape[1] == 1:
            x, target = x.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        return net(x * 2 - 1, target * 2 - 1).flatten(1).mean(1)
