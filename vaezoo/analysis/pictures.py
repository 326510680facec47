"""Pictures: image grids written as PNG."""
from __future__ import annotations

import io
import math
import os

import numpy as np
import torch
from PIL import Image

from vaezoo.atomic import atomic_write
from vaezoo.errors import NonFiniteError


def grid_array(images: torch.Tensor, nrow: int | None = None, pad: int = 2, min_cell: int = 32) -> np.ndarray:
    """Tile [N, C, H, W] images in [0, 1] into one uint8 HxWx3 (or HxW) array, upscaling tiny images."""
    if images.dim() != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
    n, c, h, w = images.shape
    scale = max(1, min_cell // max(h, w))
    imgs = images.detach().float().cpu().clamp(0, 1)
    if scale > 1:
        imgs = imgs.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
        h, w = h * scale, w * scale
    if c not in (1, 3):
        imgs = imgs[:, :1]
        c = 1
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    canvas = torch.ones(c, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        canvas[:, top : top + h, left : left + w] = imgs[i]
    array = (canvas * 255).round().to(torch.uint8).numpy()
    return array[0] if c == 1 else array.transpose(1, 2, 0)


def save_grid(images: torch.Tensor, path: str | os.PathLike[str], nrow: int | None = None, min_cell: int = 32) -> None:
    """Write a grid of images to a PNG file atomically (images under `min_cell` pixels enlarged; min_cell=1: at
    full size); refused when they hold NaN or infinity (a picture of those would be noise that looks like a
    result)."""
    if not torch.isfinite(images).all():
        raise NonFiniteError(f"refusing to write {path}: the images hold NaN or infinity (the model's outputs "
                             "overflow: a diverged or changed run)")
    buffer = io.BytesIO()
    Image.fromarray(grid_array(images, nrow, min_cell=min_cell)).save(buffer, format="PNG")
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def save_curves(metrics: list[dict[str, float]], path: str | os.PathLike[str]) -> None:
    """Plot the training loss and the held-out negative ELBO per epoch to a PNG file atomically."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [m["epoch"] for m in metrics]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(epochs, [m["train_loss"] for m in metrics], marker="o", label="train loss")
    if all("val_elbo" in m for m in metrics):  # a run without a held-out set has no held-out ELBO
        ax.plot(epochs, [-m["val_elbo"] for m in metrics], marker="s", label="held-out -ELBO")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per example")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def save_labelled_rows(images: torch.Tensor, labels: list[str], path: str | os.PathLike[str], nrow: int) -> None:
    """Write a grid of `len(labels)` rows of `nrow` images with each row's label printed to its left (PNG)."""
    from PIL import ImageDraw

    grid = grid_array(images, nrow)
    rows = len(labels)
    cell = (grid.shape[0] - 2) / rows
    picture = Image.fromarray(grid).convert("RGB")
    margin = 8 + 6 * max(len(label) for label in labels)
    canvas = Image.new("RGB", (picture.width + margin, picture.height), "white")
    canvas.paste(picture, (margin, 0))
    draw = ImageDraw.Draw(canvas)
    for i, label in enumerate(labels):
        draw.text((4, int(2 + i * cell + cell / 2 - 5)), label, fill="black")
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
