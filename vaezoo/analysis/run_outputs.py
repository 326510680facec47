"""What a finished run leaves for people to look at: pictures, curves and report.html."""
from __future__ import annotations

from pathlib import Path

import torch

from vaezoo.analysis import explore
from vaezoo.analysis import pictures as viz
from vaezoo.analysis.report import write_report
from vaezoo.analysis.run_held_out import run_held_out
from vaezoo.core import VAE
from vaezoo.data.held_out import HeldOut
from vaezoo.data.splits import Splits
from vaezoo.runs.directory import read_metrics


@torch.no_grad()
def reconstruction_rows(model: VAE, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, int]:
    """Up to 4 rows of up to 8 of the inputs `x` (at least one; labels `y` for a conditional model), each row
    above its reconstructions: the images to tile and the row length."""
    cols = min(8, len(x))  # a held-out set of any size >= 1: whole rows of up to 8
    shown = cols * min(4, len(x) // cols)
    x = x[:shown]
    recon = model.reconstruct(x, None if y is None else y[:shown]).to(x.dtype)
    rows = lambda t: t.reshape(-1, cols, *x.shape[1:])  # noqa: E731
    pairs = torch.stack([rows(x), rows(recon)], dim=1)  # each row of inputs above its reconstructions
    return pairs.reshape(-1, *x.shape[1:]), cols


@torch.no_grad()
def write_run_outputs(model: VAE, data: Splits, run: Path, n: int = 64) -> Path:
    """samples, reconstructions, interpolation, traversal and curves PNGs, then report.html; returns its path.
    Only the images shown are read: the first 32 of the run's held-out set (of the training split for a run
    without a held-out set), as stored."""
    device = next(model.parameters()).device
    model.eval()
    held_out = run_held_out(run, model, data)
    if not len(held_out):
        held_out = HeldOut(data.train, binarized=held_out.binarized, conditional=held_out.conditional)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        x, labels = held_out.first(32, device, stored=True)  # as stored: grey, not binarized
        viz.save_grid(model.sample(n), run / "samples.png")
        pairs, cols = reconstruction_rows(model, x, labels)
        viz.save_grid(pairs, run / "reconstructions.png", nrow=cols)
        x = x[: len(pairs) // 2]  # the inputs shown
        walks = min(8, len(x) // 2)
        if walks:  # a held-out set of one image has nothing to walk between
            a, b = slice(0, 2 * walks, 2), slice(1, 2 * walks, 2)
            path = explore.interpolate(
                model, x[a], x[b], 10, ya=None if labels is None else labels[a], yb=None if labels is None else labels[b]
            )
            viz.save_grid(path, run / "interpolation.png", nrow=10)
        dims = list(range(min(model.latent_dim, 16)))
        viz.save_grid(explore.traverse(model, x[:1], dims=dims, y=None if labels is None else labels[:1]),
                      run / "traversal.png", nrow=9)
    viz.save_curves(read_metrics(run), run / "curves.png")
    return write_report(run)
