"""Sampler: a distribution over a trained model's codes, fitted after training to the codes of its training set
(a post-hoc Gaussian mixture, a second-stage VAE, a flow, an autoregressive prior over VQ codes), so that decoding
its draws gives better samples than decoding the prior's, without retraining the model."""
from __future__ import annotations

import abc
from typing import Callable

import torch
from torch import nn

#: Which codes of the training set a sampler is fitted to.
CODES = {"means": "the posterior means E[z|x]", "samples": "one draw z ~ q(z|x) per training image"}

#: Called by `fit` once per epoch with (epoch, loss) when the caller shows progress.
Progress = Callable[[int, float], None]


class Sampler(nn.Module, abc.ABC):
    """p(z) over `latent_dim` numbers, fitted to codes [N, latent_dim]; its tensors are saved with the run.

    `fits` names the posterior families (`Posterior.family`) whose codes it can model, or is None for any;
    `codes` says whether it is fitted to posterior means or to draws. A sampler that `needs_fit` is fitted once
    (`vaezoo fit-sampler`) and stored in the run directory; one that does not (the model's own prior) is used as is.
    """

    fits: frozenset[str] | None = frozenset({"gaussian", "deterministic", "iaf", "ladder", "planar", "radial"})
    codes: str = "means"
    needs_fit: bool = True
    #: Epochs (or EM iterations) of fitting when the user gives none.
    default_epochs: int = 10

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
        self.latent_dim = latent_dim

    def why_not(self, family: str, conditional: bool) -> str | None:
        """None when this sampler can model the codes of a posterior of `family`, else why not."""
        if self.fits is not None and family not in self.fits:
            return (f"it models the codes of posteriors of the {', '.join(sorted(self.fits))} "
                    f"famil{'y' if len(self.fits) == 1 else 'ies'}; this one is of the {family} family")
        if conditional and self.needs_fit:
            return "it draws codes without labels, and this conditional model's decoder needs one per code"
        return None

    @abc.abstractmethod
    def fit(self, codes: torch.Tensor, epochs: int, progress: Progress | None = None) -> dict[str, float]:
        """Fit to codes [N, latent_dim] (the global RNG seeded by the caller); returns figures of the fit."""

    @abc.abstractmethod
    def sample(self, n: int, temperature: float = 1.0) -> torch.Tensor:
        """n codes [n, latent_dim]; temperature < 1 narrows the sampler's noise, > 1 widens it."""
