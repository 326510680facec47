"""An objective's own held-out loss and terms: what a model is trained on, measured on held-out batches.

vaezoo's held-out ELBO says little of a model whose objective is not an ELBO (a WAE trains no KL head, a
VAE-GAN adds adversarial terms); the trainer records these beside it, per epoch, as `val_loss` and
`val_<term>`."""
from __future__ import annotations

from collections.abc import Iterable

import torch

from vaezoo.analysis.evaluate import evaluating
from vaezoo.core import VAE


def held_out_objective(
    model: VAE, batches: Iterable[tuple[torch.Tensor, torch.Tensor | None]], seed: int = 0
) -> dict[str, float]:
    """The mean over the held-out examples of the objective's loss and of each of its terms, as
    {"loss": ..., term: ...}.

    `batches` yields (x, y) as the objective sees them in training (after the per-batch conversion; y None
    for an unconditional model). The loss is `model(x, y).loss` (with the posterior's own loss, at the
    objective's current `step`, for schedules such as the KL warm-up), a batch mean weighted by the batch's
    rows. A term that is one number per batch is weighted alike; one with a number per example ([B]) is
    averaged over the examples; other terms (per dimension, per sample, images) are left out. Random draws
    come from `seed`, so two calls on the same model and batches agree."""
    totals: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}  # the examples each name was measured on
    with evaluating(model, seed) as device:
        for x, y in batches:
            x = x.to(device)
            out = model(x) if y is None else model(x, y.to(device))
            n = len(x)
            sums = {"loss": out.loss.detach().double() * n}
            for name, value in out.terms.items():
                if name == "loss" or not isinstance(value, torch.Tensor) or not value.is_floating_point():
                    continue
                if value.dim() == 0:
                    sums[name] = value.detach().double() * n
                elif value.shape == (n,):
                    sums[name] = value.detach().double().sum()
            for name, value in sums.items():
                totals[name] = totals.get(name, 0) + value
                counts[name] = counts.get(name, 0) + n
    if not counts.get("loss"):
        raise ValueError("held_out_objective: the held-out batches hold no examples")
    return {name: float(total / counts[name]) for name, total in totals.items()}
