"""Walking the latent space of a trained VAE: interpolations, arithmetic, attribute vectors, traversals.

Every function takes inputs (and, for a conditional VAE, their labels), encodes them to posterior means,
works on the codes and returns decoded images [N, C, H, W].
"""
from __future__ import annotations

import torch

from vaezoo.checks import whole_number
from vaezoo.core import VAE


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows a and b at fractions t (falls back to linear for parallel codes)."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    t = t.view(-1, *([1] * (a.dim())))
    spherical = (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b
    linear = (1 - t) * a + t * b
    return torch.where(so.abs() < 1e-6, linear, spherical)


@torch.no_grad()
def interpolate(
    model: VAE, xa: torch.Tensor, xb: torch.Tensor, steps: int = 10, *, spherical: bool = False,
    ya: torch.Tensor | None = None, yb: torch.Tensor | None = None,
) -> torch.Tensor:
    """Decode `steps` codes on the way from xa's code to xb's: [steps * P, C, H, W] for P pairs, row by row."""
    whole_number("steps", steps, least=2)
    za, zb = model.posterior_mean(xa, ya), model.posterior_mean(xb, yb)
    t = torch.linspace(0, 1, steps, device=za.device, dtype=za.dtype)
    path = slerp(za, zb, t) if spherical else za + t.view(-1, 1, 1) * (zb - za)  # [steps, P, D]
    codes = path.transpose(0, 1).reshape(-1, za.shape[-1])
    labels = None if ya is None else ya.repeat_interleave(steps)
    return model.decode(codes, labels)


@torch.no_grad()
def arithmetic(
    model: VAE, xa: torch.Tensor, xb: torch.Tensor, xc: torch.Tensor, y: torch.Tensor | None = None
) -> torch.Tensor:
    """Rows of [a, b, c, decode(z_a - z_b + z_c)] for each triple (labels y, for a conditional VAE, are c's)."""
    za, zb, zc = (model.posterior_mean(x, y) for x in (xa, xb, xc))
    result = model.decode(za - zb + zc, y)
    images = torch.stack([xa, xb, xc, result.to(xa.dtype)], dim=1)
    return images.reshape(-1, *xa.shape[1:])


@torch.no_grad()
def attribute_vector(model: VAE, x: torch.Tensor, labels: torch.Tensor, source: int, target: int) -> torch.Tensor:
    """Mean code of class `target` minus mean code of class `source`: add it to move a code between classes."""
    for cls in (source, target):
        if not (labels == cls).any():
            raise ValueError(f"no example has label {cls}")
    codes = model.posterior_mean(x, labels if model.conditional else None)
    return codes[labels == target].mean(0) - codes[labels == source].mean(0)


@torch.no_grad()
def traverse(
    model: VAE, x: torch.Tensor | None = None, *, steps: int = 9, dims: list[int] | None = None,
    span: float = 3.0, y: torch.Tensor | None = None,
) -> torch.Tensor:
    """One row per latent dimension: that dimension swept over the prior's range, the others held fixed.

    The range is the 0.1%..99.9% quantiles of the prior's marginal (+-3 sd for N(0, I)) scaled by span / 3;
    the fixed point is x's code when given, else the prior's median. Returns [len(dims) * steps, C, H, W].
    """
    draws = model.prior.sample(4096).to(next(model.parameters()))
    lo, hi = torch.quantile(draws, 0.001, dim=0), torch.quantile(draws, 0.999, dim=0)
    centre = draws.median(0).values
    half = (hi - lo) / 2 * (span / 3.0)
    base = model.posterior_mean(x[:1], y)[0] if x is not None else centre
    dims = list(range(model.latent_dim)) if dims is None else dims
    codes = []
    for d in dims:
        row = base.repeat(steps, 1)
        row[:, d] = torch.linspace(float(centre[d] - half[d]), float(centre[d] + half[d]), steps)
        codes.append(row)
    labels = None
    if model.conditional:
        labels = (y[:1] if y is not None else torch.zeros(1, dtype=torch.long)).repeat(len(dims) * steps)
    return model.decode(torch.cat(codes), labels)

