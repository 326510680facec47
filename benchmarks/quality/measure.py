"""What the quality table measures of one finished run: the held-out bound and IW-NLL where the model defines
them, reconstruction error, sample sharpness, and optionally FID, KID and precision/recall."""
from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import vaezoo
from vaezoo import metrics
from vaezoo.analysis.evaluate import summary
from vaezoo.analysis.eval_extras import generate, sample_quality_scores
from vaezoo.analysis.run_held_out import run_held_out
from vaezoo.data.held_out import HeldOut
from vaezoo.data.splits import Splits
from vaezoo.runs.directory import read_metrics

SHARPNESS_SAMPLES = 1000


@torch.no_grad()
def reconstruction_mse(model: vaezoo.VAE, held_out: HeldOut, batch_size: int = 500) -> float:
    """Mean squared error per pixel between held-out images and the decoded posterior means of their codes."""
    device = next(model.parameters()).device
    model.eval()
    total = sum(F.mse_loss(model.reconstruct(x, y).float(), x.float(), reduction="sum").item()
                for x, y, _ in held_out.batches(batch_size, device))
    return total / (len(held_out) * math.prod(held_out.shape))


def measure(run: Path, data: Splits, *, nll_samples: int, sample_quality: bool, device: str = "cpu",
            nll_examples: int | None = None) -> dict[str, object]:
    """The quality row of one finished run, scored on the run's held-out set (binarized as the run recorded,
    as `vaezoo eval` scores it; the IW-NLL on its first `nll_examples` images when given: K decoder passes per
    image are what a conv model's row costs)."""
    model = vaezoo.load_model(run, device=device)
    held_out = run_held_out(run, model, data)
    start = time.perf_counter()
    held_out_metrics = summary(model, held_out, nll_samples, nll_examples=nll_examples, optional=("nll",))
    shown = np.arange(min(SHARPNESS_SAMPLES, len(held_out)), dtype=np.int64)
    row: dict[str, object] = {
        "elbo": held_out_metrics["elbo"], "iw_nll": held_out_metrics.get("nll"),
        "nll_samples": held_out_metrics.get("nll_samples"), "nll_examples": held_out_metrics.get("nll_examples"),
        "iw_nll_unavailable": held_out_metrics["unavailable"].get("nll"),
        "active_units": held_out_metrics["active_units"], "latent_dim": model.latent_dim,
        "reconstruction_mse": reconstruction_mse(model, held_out),
        "sample_sharpness": metrics.sharpness(generate(model, SHARPNESS_SAMPLES).numpy()),
        "data_sharpness": metrics.sharpness(held_out.read(shown, stored=True)[0].numpy()),
    }
    if sample_quality:
        quality = sample_quality_scores(model, data, held_out, samples=len(held_out))
        row.update({k: quality[k] for k in ("fid", "kid", "precision", "recall")},
                   classifier_test_accuracy=quality["features"]["test_accuracy"],
                   feature_network=quality["features"]["source"],
                   feature_network_sha256=quality["features"]["weights_sha256"])
    history = read_metrics(run)
    row.update(
        parameters=sum(p.numel() for p in model.parameters()),
        train_seconds=round(sum(m["seconds"] for m in history), 1),
        median_epoch_seconds=round(statistics.median(m["seconds"] for m in history), 2),
        threads=torch.get_num_threads(), measure_seconds=round(time.perf_counter() - start, 1),
    )
    return row
