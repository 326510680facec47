"""The evaluation recipe, in one place: which held-out set a model is scored on, binarized how."""
from __future__ import annotations

import torch

from vaezoo.core import VAE
from vaezoo.data.datasets import Dataset, fixed_binarization


def binarization(binarize: str, model: VAE) -> str:
    """dynamic, static or none: `auto` binarizes dynamically exactly when the likelihood is for {0, 1} data."""
    if binarize == "auto":
        return "dynamic" if model.likelihood.binary_data else "none"
    return binarize


def held_out_set(data: Dataset, model: VAE, binarize: str = "auto") -> tuple[torch.Tensor, torch.Tensor | None]:
    """The held-out images a model is evaluated on (one fixed binarization of the test split whenever training
    binarized, so every evaluation of a run sees the same {0, 1} images) and their labels for a conditional
    model (else None)."""
    x = data.test_x if binarization(binarize, model) == "none" else fixed_binarization(data.test_x)
    return x, data.test_y if model.conditional else None
