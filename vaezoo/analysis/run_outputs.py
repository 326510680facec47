"""What a finished run leaves for people to look at: pictures, curves and report.html."""
from __future__ import annotations

from pathlib import Path

import torch

from vaezoo.analysis import explore
from vaezoo.analysis import pictures as viz
from vaezoo.analysis.report import write_report
from vaezoo.core import VAE
from vaezoo.data.datasets import Dataset
from vaezoo.runs.directory import read_metrics


@torch.no_grad()
def write_run_outputs(model: VAE, data: Dataset, run: Path, n: int = 64) -> Path:
    """samples, reconstructions, interpolation, traversal and curves PNGs, then report.html; returns its path."""
    device = next(model.parameters()).device
    model.eval()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        images, labels = (data.test_x, data.test_y) if len(data.test_x) else (data.train_x, data.train_y)
        cols = min(8, len(images))  # a held-out set of any size >= 1 (none: training images): rows of up to 8
        shown = cols * min(4, len(images) // cols)
        x, y = images[:shown].to(device), labels[:shown].to(device)
        labels = y if model.conditional else None
        viz.save_grid(model.sample(n), run / "samples.png")
        recon = model.reconstruct(x, labels).to(x.dtype)
        rows = lambda t: t.reshape(-1, cols, *x.shape[1:])  # noqa: E731
        pairs = torch.stack([rows(x), rows(recon)], dim=1)  # each row of inputs above its reconstructions
        viz.save_grid(pairs.reshape(-1, *x.shape[1:]), run / "reconstructions.png", nrow=cols)
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
