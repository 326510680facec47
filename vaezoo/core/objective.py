"""Objective: how a loss is made from the parts, and which features of them it needs."""
from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # the VAE holds an objective; an objective is handed the VAE
    from vaezoo.core.model import VAE
    from vaezoo.core.output import VAEOutput
    from vaezoo.core.prior import Prior


class Objective(nn.Module, abc.ABC):
    """Turns a VAE and a batch into a loss (and the terms it is made of).

    An adversarial objective also owns an adversary (a discriminator, a submodule saved with the model) that
    the training loop updates with an optimizer of its own, `adversary_steps` times after each VAE step.
    """

    #: The optimizer step about to be taken; the training loop sets it before each step, for schedules.
    step: int = 0
    #: Adversary updates per VAE update (only for objectives whose `adversary()` is not None).
    adversary_steps: int = 1

    def needs(self) -> frozenset[str]:
        """The posterior features (keys of `vaezoo.core.FEATURES`) this objective uses, with its options."""
        return frozenset()

    def prior_mismatch(self, prior: Prior) -> str | None:
        """None when this objective can use `prior`, else why not (create_model refuses with the reason)."""
        return None

    def adversary(self) -> nn.Module | None:
        """The network trained against the VAE by its own optimizer, kept out of the VAE's; None if there is none."""
        return None

    def adversary_loss(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None, out: VAEOutput) -> torch.Tensor:
        """The adversary's loss on the batch of the VAE step whose output is `out` (treat `out` as fixed)."""
        raise NotImplementedError(f"{type(self).__name__} has no adversary")

    def feature_network_steps(self) -> int | None:
        """None, unless the objective runs on the feature network that vaezoo trains on the dataset's labels (as
        for FID): then the steps to train it for, and the training loop hands it to `use_feature_network`
        before the first step."""
        return None

    #: The setting that turns the feature network off, named when the data has no labels to train it on.
    feature_network_off: str = "objective.perceptual=none"

    def use_feature_network(self, net: nn.Module, record: dict[str, Any]) -> None:
        """Take the dataset's trained feature network and what it is (see `feature_network_steps`)."""
        raise NotImplementedError(f"{type(self).__name__} uses no feature network")

    def describe(self) -> dict[str, Any]:
        """What a run's config.json records of choices the objective made beyond its options (such as which
        network a perceptual distance runs on); nothing by default."""
        return {}

    @abc.abstractmethod
    def forward(self, vae: VAE, x: torch.Tensor, y: torch.Tensor | None = None) -> VAEOutput:
        """Return the output of one training step on x (and labels y for a conditional VAE), with `loss` set."""
