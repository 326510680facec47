"""Tiled encoding and decoding with the ldm parts, for images larger than memory allows in one pass.

The image (or latent map) is cut into overlapping square tiles; each goes through the network alone, and the
outputs are blended linearly where tiles overlap: each tile's output is weighted by a ramp that rises over
`overlap` pixels from each edge, and the weighted sum is divided by the summed weights, so two overlapping tiles
cross-fade (as diffusers' tiled AutoencoderKL does). Peak memory then grows with the tile, not the image.
GroupNorm and the mid-block attention see one tile at a time, so the result is close to, not equal to, the
one-pass result; the overlap hides the seams.
"""
from __future__ import annotations

from typing import Callable

import torch

from vaezoo.components.ldm.networks import LDMDecoder, LDMEncoder, check_divisible
from vaezoo.components.posteriors.gaussian import GaussianPosterior
from vaezoo.core import VAE
from vaezoo.errors import BadOverrideError, NotAvailableError


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Where tiles of `tile` pixels start along `size` pixels, `overlap` apart at least; the last one ends at
    the edge (a size the tile covers gets one tile)."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


def ramp(length: int, overlap: int, like: torch.Tensor) -> torch.Tensor:
    """Weights over a tile's `length` pixels: rising linearly over `overlap` pixels from each edge, 1 between."""
    if overlap == 0:
        return torch.ones(length, dtype=like.dtype, device=like.device)
    i = torch.arange(length, dtype=like.dtype, device=like.device)
    return torch.clamp(torch.minimum(i + 0.5, length - i - 0.5) / overlap, max=1.0)


def blend_tiles(run: Callable[[torch.Tensor], tuple[torch.Tensor, ...]], x: torch.Tensor, tile: int, overlap: int,
                scale: float) -> tuple[torch.Tensor, ...]:
    """`run` on each tile of x [B, C, H, W]; its outputs ([B, C', t * scale, t * scale] each, for a t x t tile)
    blended into maps [B, C', H * scale, W * scale]."""
    height, width = x.shape[-2:]
    tile_h, tile_w = min(tile, height), min(tile, width)
    sums: list[torch.Tensor] | None = None
    weight = None
    for top in tile_starts(height, tile, overlap):
        for left in tile_starts(width, tile, overlap):
            outs = run(x[..., top:top + tile_h, left:left + tile_w])
            if sums is None:
                size = (round(height * scale), round(width * scale))
                sums = [o.new_zeros(*o.shape[:-2], *size) for o in outs]
                weight = outs[0].new_zeros(size)
            h, w = outs[0].shape[-2:]
            y, x0 = round(top * scale), round(left * scale)
            edge = round(overlap * scale)
            wy, wx = ramp(h, edge, outs[0]), ramp(w, edge, outs[0])
            tile_weight = wy[:, None] * wx[None, :]
            for total, out in zip(sums, outs):
                total[..., y:y + h, x0:x0 + w] += out * tile_weight
            weight[y:y + h, x0:x0 + w] += tile_weight
    return tuple(total / weight for total in sums)


def _check_tiling(tile: int, overlap: int | None, factor: int) -> int:
    """The overlap to use (default a quarter tile), after checking both against the downsampling factor."""
    overlap = (tile // 4) // factor * factor if overlap is None else overlap
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < factor or tile % factor:
        raise BadOverrideError(f"the tile must be a positive multiple of the downsampling factor {factor}, got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0 or overlap % factor or overlap >= tile:
        raise BadOverrideError(f"the overlap must be a multiple of {factor} in [0, tile), got {overlap!r}")
    return overlap


@torch.no_grad()
def tiled_encode(encoder: LDMEncoder, x: torch.Tensor, tile: int, overlap: int | None = None
                 ) -> tuple[torch.Tensor, ...]:
    """The posterior's parameters [B, C, H/f, W/f] for images x [B, C_in, H, W], encoded in tiles of `tile`
    pixels overlapping by `overlap` (default a quarter tile) and blended in latent space."""
    f = encoder.factor
    overlap = _check_tiling(tile, overlap, f)
    check_divisible(x.shape[-2], x.shape[-1], f, "this ldm encoder")
    return blend_tiles(encoder.spatial, x, tile, overlap, 1.0 / f)


@torch.no_grad()
def tiled_decode(decoder: LDMDecoder, z: torch.Tensor, tile: int, overlap: int | None = None) -> torch.Tensor:
    """The likelihood's parameters [B, C_out, h*f, w*f] for latents z [B, C, h, w], decoded in tiles of `tile`
    image pixels overlapping by `overlap` image pixels (default a quarter tile), blended in image space."""
    f = decoder.factor
    overlap = _check_tiling(tile, overlap, f)
    (out,) = blend_tiles(lambda t: (decoder.spatial(t),), z, tile // f, overlap // f, float(f))
    return out


@torch.no_grad()
def tiled_reconstruct(vae: VAE, x: torch.Tensor, tile: int, overlap: int | None = None) -> torch.Tensor:
    """What `vae.reconstruct(x)` shows, for images of any size the downsampling divides: the posterior mean,
    encoded and decoded in tiles. Needs ldm parts and the Gaussian posterior (whose mean is its first parameter)."""
    if not isinstance(vae.encoder, LDMEncoder) or not isinstance(vae.decoder, LDMDecoder):
        raise NotAvailableError(f"tiled reconstruction needs the ldm encoder and decoder; this model has "
                                f"{type(vae.encoder).__name__} and {type(vae.decoder).__name__}")
    if not isinstance(vae.posterior, GaussianPosterior):
        raise NotAvailableError(f"tiled reconstruction takes the Gaussian posterior's mean; this model's posterior "
                                f"is {type(vae.posterior).__name__}")
    mu = tiled_encode(vae.encoder, x, tile, overlap)[0]
    return vae.likelihood.mean(tiled_decode(vae.decoder, mu, tile, overlap))


