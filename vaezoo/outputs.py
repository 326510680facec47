"""What a finished run leaves for people to look at: pictures, curves and report.html."""
from __future__ import annotations

from pathlib import Path

import torch

from vaezoo import explore, viz
from vaezoo.data import Dataset
from vaezoo.core import VAE
from vaezoo.report import write_report
from vaezoo.rundir import read_metrics


@torch.no_grad()
def write_run_outputs(model: VAE, data: Dataset, run: Path, n: int = 64) -> Path:
    """samples, reconstructions, interpolation, traversal and curves PNGs, then report.html; returns its path."""
    device = next(model.parameters()).device
    model.eval()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        x, y = data.test_x[:32].to(device), data.test_y[:32].to(device)
        labels = y if model.conditional else None
        viz.save_grid(model.sample(n), run / "samples.png")
        recon = model.reconstruct(x, labels)
        pairs = torch.stack([x.view(4, 8, *x.shape[1:]), recon.to(x.dtype).view(4, 8, *x.shape[1:])], dim=1)
        viz.save_grid(pairs.reshape(-1, *x.shape[1:]), run / "reconstructions.png", nrow=8)
        a, b = slice(0, 16, 2), slice(1, 16, 2)
        path = explore.interpolate(
            model, x[a], x[b], 10, ya=None if labels is None else labels[a], yb=None if labels is None else labels[b]
        )
        viz.save_grid(path, run / "interpolation.png", nrow=10)
        dims = list(range(min(model.latent_dim, 16)))
        viz.save_grid(explore.traverse(model, x[:1], dims=dims, y=None if labels is None else labels[:1]),
                      run / "traversal.png", nrow=9)
    viz.save_curves(read_metrics(run), run / "curves.png")
    return write_report(run)
