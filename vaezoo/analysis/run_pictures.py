"""The pictures of a trained model that `vaezoo sample`, `reconstruct`, `interpolate`, `arithmetic` and
`traverse` write, for the Python API too: each function returns a Grid (the images and how many a row holds).

Inputs come from a held-out set (see analysis.run_held_out) as stored, grey and not binarized: what a person
looks at. Only the rows a picture shows are read, on the model's device. Indices, counts and labels out of
range are a SettingError naming the argument (`n`, `steps`, `a`, `pair`, ...).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vaezoo.analysis import explore
from vaezoo.analysis.pictures import save_grid
from vaezoo.analysis.samplers import draw_images
from vaezoo.checks import whole_number
from vaezoo.components.ldm.tiling import tiled_reconstruct
from vaezoo.core import VAE, Sampler
from vaezoo.data.held_out import HeldOut
from vaezoo.errors import SettingError, VaezooError, literal

#: the most pairs an interpolation walks between by default (one row each)
DEFAULT_WALKS = 8
#: the most inputs a row of reconstructions holds (each beside its reconstruction)
RECONSTRUCTIONS_PER_ROW = 8


@dataclass
class Grid:
    """Images [N, C, H, W] laid out `nrow` to a row (None: a square-ish grid)."""

    images: torch.Tensor
    nrow: int | None = None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the grid to the PNG file `path` (atomically; refused when an image holds NaN or infinity)."""
        save_grid(self.images, path, nrow=self.nrow)


def check_picture_path(path: str | os.PathLike[str]) -> None:
    """SettingError (naming `out`) unless `path` is a file that can be written: not a directory, in a folder that
    exists. Checked before any work."""
    out = Path(path)
    if out.is_dir():
        raise SettingError(f"{{0}} {literal(out)} is a directory; name a .png file to write", "out")
    if not out.parent.is_dir():
        raise SettingError(f"{{0}} {literal(out)}: the folder {literal(out.parent)} does not exist; create it or "
                           "choose another {0}", "out")


def _device(model: VAE) -> torch.device:
    return next(model.parameters()).device


def held_out_index(setting: str, index: int, held_out: HeldOut) -> int:
    """`index` when the held-out set has that example; SettingError naming `setting` otherwise."""
    if not 0 <= index < len(held_out):
        raise SettingError(f"{{0}} {index} is out of range: the held-out set has examples 0..{len(held_out) - 1}",
                           setting)
    return index


def _shown(held_out: HeldOut, rows: Sequence[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The held-out images of `rows` as stored, on `device`, with their labels for a conditional model."""
    return held_out.read(np.asarray(rows, dtype=np.int64), device, stored=True)


def samples(model: VAE, n: int = 64, label: int | None = None, temperature: float = 1.0, *,
            sampler: Sampler | None = None) -> Grid:
    """`n` decoded draws of the prior (of class `label`, for a conditional model), or of a `sampler` fitted to
    the run's codes (analysis.samplers.load_sampler), scaled by `temperature` about the centre."""
    whole_number("n", n)
    if label is not None and not model.conditional:
        raise SettingError(f"{{0}} needs a conditional variant; {model.config.get('variant')} is not conditional",
                           "label")
    if label is not None and not 0 <= label < model.num_classes:
        raise SettingError(f"{{0}} must be in 0..{model.num_classes - 1}, got {label}", "label")
    try:
        return Grid(draw_images(model, sampler, n, label, temperature=temperature))
    except SettingError:
        raise  # names its settings: the command line shows them as its flags
    except ValueError as exc:
        raise VaezooError(str(exc)) from exc


@torch.no_grad()
def reconstructions(model: VAE, held_out: HeldOut, n: int = 32, *, tile: int | None = None,
                    overlap: int | None = None) -> Grid:
    """The first `n` held-out inputs, each beside its reconstruction, up to RECONSTRUCTIONS_PER_ROW pairs a row.
    With `tile` (ldm parts only), images are encoded and decoded in overlapping tiles of that size (`overlap`
    pixels; a quarter tile by default), which bounds the memory by the tile instead of the image."""
    whole_number("n", n)
    x, y = held_out.first(n, _device(model), stored=True)
    recon = model.reconstruct(x, y) if tile is None else tiled_reconstruct(model, x, tile, overlap)
    pairs = torch.stack([x, recon.to(x.dtype)], dim=1).reshape(-1, *x.shape[1:])
    return Grid(pairs, 2 * min(RECONSTRUCTIONS_PER_ROW, len(x)) if len(x) > 1 else 2)


def walk_pairs(held_out: HeldOut) -> tuple[list[int], list[int]]:
    """The default pairs an interpolation walks between: held-out examples (0, 1), (2, 3), ..., at most
    DEFAULT_WALKS of them."""
    walks = min(DEFAULT_WALKS, len(held_out) // 2)
    if not walks:
        raise VaezooError(f"the held-out set has {len(held_out)} image; interpolation needs two")
    return list(range(0, 2 * walks, 2)), list(range(1, 2 * walks, 2))


def interpolations(model: VAE, held_out: HeldOut, steps: int = 10, pair: Sequence[int] | None = None, *,
                   spherical: bool = False) -> Grid:
    """Walks of `steps` images through the latent space, one a row: between the held-out examples `pair`, or
    between the walk_pairs."""
    whole_number("steps", steps, least=2)
    if pair is not None:
        a, b = ([held_out_index("pair", i, held_out)] for i in pair)
    else:
        a, b = walk_pairs(held_out)
    device = _device(model)
    (xa, ya), (xb, yb) = _shown(held_out, a, device), _shown(held_out, b, device)
    return Grid(explore.interpolate(model, xa, xb, steps, spherical=spherical, ya=ya, yb=yb), steps)


def latent_arithmetic(model: VAE, held_out: HeldOut, a: int, b: int, c: int) -> Grid:
    """One row: held-out examples a, b, c and the decoding of z_a - z_b + z_c."""
    rows = [held_out_index(name, i, held_out) for name, i in (("a", a), ("b", b), ("c", c))]
    device = _device(model)
    (xa, _), (xb, _), (xc, yc) = (_shown(held_out, [i], device) for i in rows)
    return Grid(explore.arithmetic(model, xa, xb, xc, yc), 4)


@torch.no_grad()
def attribute_shift(model: VAE, held_out: HeldOut, a: int, from_label: int, to_label: int) -> Grid:
    """One row: held-out example a, and its code moved by the attribute vector from class `from_label` to class
    `to_label` (the difference of the two classes' mean codes over the held-out set), decoded (as `to_label`,
    for a conditional model). Only the images of the two classes are read."""
    held_out_index("a", a, held_out)
    device = _device(model)
    labels = held_out.labels
    rows = np.flatnonzero(((labels == from_label) | (labels == to_label)).numpy())
    x, _ = _shown(held_out, rows, device)
    try:
        shift = explore.attribute_vector(model, x, labels[rows].to(device), from_label, to_label)
    except ValueError as exc:
        raise VaezooError(f"{exc} in the held-out set") from exc
    xa, ya = _shown(held_out, [a], device)
    code = model.posterior_mean(xa, ya)
    moved = model.decode(code + shift, None if ya is None else torch.full_like(ya, to_label))
    return Grid(torch.cat([xa, moved.to(xa.dtype)]), 2)


def traversal(model: VAE, held_out: HeldOut, index: int = 0, steps: int = 9, dims: Sequence[int] | None = None
              ) -> Grid:
    """One row per latent dimension in `dims` (default: all), swept over the prior's range in `steps` images
    from the code of held-out example `index`."""
    whole_number("steps", steps, least=2)
    held_out_index("index", index, held_out)
    dims = list(dims) if dims else None
    if dims and any(not 0 <= d < model.latent_dim for d in dims):
        raise SettingError(f"{{0}} must be in 0..{model.latent_dim - 1}, got {dims}", "dims")
    x, y = _shown(held_out, [index], _device(model))
    return Grid(explore.traverse(model, x, steps=steps, dims=dims, y=y), steps)
