"""What the quality table measures of one finished run: the held-out bound and IW-NLL where the model defines
them, reconstruction error, sample sharpness, and optionally FID, KID and precision/recall."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import vaezoo
from vaezoo import metrics
from vaezoo.analysis.evaluate import summary
from vaezoo.analysis.learned import generate, sample_quality_scores
from vaezoo.data.datasets import Dataset, batches
from vaezoo.data.held_out import held_out_set
from vaezoo.runs.directory import read_metrics

SHARPNESS_SAMPLES = 1000


@torch.no_grad()
def reconstruction_mse(model: vaezoo.VAE, x: torch.Tensor, batch_size: int = 500) -> float:
    """Mean squared error per pixel between held-out images and the decoded posterior means of their codes."""
    device = next(model.parameters()).device
    model.eval()
    total = sum(F.mse_loss(model.reconstruct(xb.to(device)).float().cpu(), xb.float(), reduction="sum").item()
                for xb in batches(x, batch_size, shuffle=False))
    return total / x.numel()


def measure(run: Path, data: Dataset, *, nll_samples: int, sample_quality: bool, device: str = "cpu",
            nll_examples: int | None = None) -> dict[str, object]:
    """The quality row of one finished run, scored on its dataset's held-out split (the IW-NLL on its first
    `nll_examples` images when given: K decoder passes per image are what a conv model's row costs)."""
    model = vaezoo.load_model(run, device=device)
    held_out, labels = held_out_set(data, model)
    x, y = held_out.to(device), None if labels is None else labels.to(device)
    start = time.perf_counter()
    held_out_metrics = summary(model, x, y, nll_samples, nll_examples=nll_examples, optional=("nll",))
    row: dict[str, object] = {
        "elbo": held_out_metrics["elbo"], "iw_nll": held_out_metrics.get("nll"),
        "nll_samples": held_out_metrics.get("nll_samples"), "nll_examples": held_out_metrics.get("nll_examples"),
        "iw_nll_unavailable": held_out_metrics["unavailable"].get("nll"),
        "active_units": held_out_metrics["active_units"], "latent_dim": model.latent_dim,
        "reconstruction_mse": reconstruction_mse(model, held_out),
        "sample_sharpness": metrics.sharpness(generate(model, SHARPNESS_SAMPLES).numpy()),
        "data_sharpness": metrics.sharpness(data.test_x[:SHARPNESS_SAMPLES].numpy()),
    }
    if sample_quality:
        quality = sample_quality_scores(model, data, samples=len(data.test_x))
        row.update({k: quality[k] for k in ("fid", "kid", "precision", "recall")},
                   classifier_test_accuracy=quality["features"]["test_accuracy"])
    history = read_metrics(run)
    row.update(
        parameters=sum(p.numel() for p in model.parameters()),
        train_seconds=round(sum(m["seconds"] for m in history), 1),
        median_epoch_seconds=round(statistics.median(m["seconds"] for m in history), 2),
        threads=torch.get_num_threads(), measure_seconds=round(time.perf_counter() - start, 1),
    )
    return row
