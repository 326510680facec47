"""How well a model reconstructs its run's held-out images: PSNR, SSIM and MS-SSIM per image (averaged), rFID
(reconstructions against the same held-out images on the dataset's domain features, as FID), the latent's KL
per channel for spatial latents, and a picture of held-out images beside their reconstructions at full size.

The images are read as stored (unbinarized, in [0, 1]), in batches, and each is encoded and decoded as the
pictures are (the posterior's point summary, decoded to the likelihood's mean, clipped to [0, 1])."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from vaezoo import metrics
from vaezoo.analysis import pictures as viz
from vaezoo.analysis.evaluate import evaluating, kl_per_dimension
from vaezoo.data.held_out import HeldOut
from vaezoo.data.splits import Splits
from vaezoo.errors import DataError, VaezooError
from vaezoo.metrics.image_quality import WINDOW, ms_ssim_scales

if TYPE_CHECKING:
    from vaezoo.core import VAE

FULL_SIZE = "reconstructions_full.png"
SHOWN = 8  # held-out images in the full-size picture


def images_reason(model: VAE) -> str | None:
    """Why the model's inputs are not images these metrics apply to (None when they are)."""
    if len(model.input_shape) != 3:
        return f"the model's inputs are not images [C, H, W] but {tuple(model.input_shape)}"
    return None


def ssim_window(height: int, width: int) -> int:
    """The 11-pixel SSIM window, or the largest odd one that fits smaller images."""
    side = min(height, width, WINDOW)
    return side if side % 2 else side - 1


def kl_per_channel(model: VAE, held_out: HeldOut, progress: bool = False) -> list[float] | str:
    """The mean KL per example of each latent channel, summed over the latent's positions (for an encoder with
    spatial latents, laid out position by position, channels last: `latent_grid` (C, h, w)); else why not."""
    grid = getattr(model.encoder, "latent_grid", None)
    if grid is None:
        return "the latent is not spatial (kl_per_dim is the KL of each of its dimensions)"
    reason = model.posterior.why_not("kl_per_dim", model.prior)
    if reason is not None:
        return reason
    per_dim = torch.tensor(kl_per_dimension(model, held_out, progress=progress))
    return per_dim.view(-1, grid[0]).sum(0).tolist()


def check_reconstruction(model: VAE) -> None:
    """VaezooError unless the model's inputs are images (checked before any work)."""
    reason = images_reason(model)
    if reason is not None:
        raise VaezooError(f"--reconstruction measures images: {reason}")


def reconstruction_scores(model: VAE, held_out: HeldOut, data: Splits | None = None, *, progress: bool = False,
                          batch_size: int | None = None) -> dict[str, Any]:
    """PSNR (dB), SSIM and MS-SSIM of the reconstructions of every held-out image, averaged; the KL per latent
    channel; and with `data` (whose class labels train the domain feature network) rFID. What cannot be
    measured is in `unavailable`, with the reason."""
    check_reconstruction(model)
    _, height, width = model.input_shape
    window = ssim_window(height, width)
    scales = ms_ssim_scales(height, width, window)
    batch_size = batch_size or held_out.batch_rows(256)
    extractor, unavailable = None, {}
    if data is not None:
        from vaezoo.analysis.eval_extras import feature_network

        try:  # the domain feature network needs class labels
            extractor = feature_network(data, progress=progress)
        except DataError as exc:
            unavailable["rfid"] = str(exc)
    totals = {"psnr": 0.0, "ssim": 0.0, "ms_ssim": 0.0}
    real, fake = [], []
    starts = tqdm(range(0, len(held_out), batch_size), desc="reconstructions", leave=False, delay=2.0,
                  disable=not progress)
    with evaluating(model, 0) as device:
        for start in starts:
            rows = np.arange(start, min(start + batch_size, len(held_out)), dtype=np.int64)
            x, y = held_out.read(rows, device, stored=True)
            recon = model.reconstruct(x, y).float().clamp(0, 1).cpu()
            x = x.float().cpu()
            a, b = recon.double().numpy(), x.double().numpy()
            totals["psnr"] += float(np.minimum(metrics.psnr(a, b), 100.0).sum())  # an exact copy counts as 100 dB
            totals["ssim"] += float(metrics.ssim(a, b, window=window).sum())
            totals["ms_ssim"] += float(metrics.ms_ssim(a, b, window=window, scales=scales).sum())
            if extractor is not None:
                real.append(extractor.net.features(x))
                fake.append(extractor.net.features(recon))
    result: dict[str, Any] = {"examples": len(held_out), **{k: v / len(held_out) for k, v in totals.items()},
                              "ssim_window": window, "ms_ssim_scales": scales}
    if extractor is not None:
        if len(held_out) < 2:
            unavailable["rfid"] = f"rFID needs at least 2 held-out images, the run has {len(held_out)}"
        else:
            result["rfid"] = metrics.fid(torch.cat(real).double().numpy(), torch.cat(fake).double().numpy())
            result["features"] = extractor.describe()
    per_channel = kl_per_channel(model, held_out, progress=progress)
    if isinstance(per_channel, str):
        unavailable["kl_per_channel"] = per_channel
    else:
        result["kl_per_channel"] = per_channel
    result["unavailable"] = unavailable
    return result


@torch.no_grad()
def save_full_size(model: VAE, held_out: HeldOut, path: Path, n: int = SHOWN) -> None:
    """The first n held-out images (top row) above their reconstructions, at full size (one image pixel per
    pixel), with a 2-pixel gap."""
    device = next(model.parameters()).device
    model.eval()
    x, y = held_out.first(n, device, stored=True)
    recon = model.reconstruct(x, y).float().clamp(0, 1)
    viz.save_grid(torch.cat([x.float(), recon]).cpu(), path, nrow=len(x), min_cell=1)
