"""`vaezoo sample`, `reconstruct`, `interpolate`, `arithmetic` and `traverse`: pictures of a trained run."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from vaezoo.analysis import explore
from vaezoo.analysis import pictures as viz
from vaezoo.errors import VaezooError
from vaezoo.runtime.devices import check_device


def _check_out_file(path: str) -> None:
    """--out of a picture command: a file to write, in a folder that exists."""
    out = Path(path)
    if out.is_dir():
        raise VaezooError(f"--out {out} is a directory; name a .png file to write")
    if not out.parent.is_dir():
        raise VaezooError(f"--out {out}: the folder {out.parent} does not exist; create it or choose another --out")


def _at_least(flag: str, value: int, least: int) -> None:
    if value < least:
        raise VaezooError(f"{flag} must be at least {least}, got {value}")


def _check_picture_args(args: argparse.Namespace) -> None:
    """Checks every command on a run shares: the device, and --out where it writes a picture."""
    check_device(args.device)
    if getattr(args, "out", None) is not None:
        _check_out_file(args.out)


def _picture_run(args: argparse.Namespace):
    """The trained model of RUN_DIR and its held-out set (nothing read yet: each command reads the rows it
    shows)."""
    from vaezoo.analysis.run_held_out import run_held_out
    from vaezoo.runs.directory import load_model, load_run_data

    _check_picture_args(args)
    data = load_run_data(args.run_dir, args.data_dir)  # first: a run whose data it cannot read is refused unloaded
    model = load_model(args.run_dir, device=args.device, trust_pickle=args.trust_pickle,
                       imports=args.imports)
    held_out = run_held_out(args.run_dir, model, data)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    return model, held_out


def _indices(name: str, values: Sequence[int], count: int) -> list[int]:
    for v in values:
        if not 0 <= v < count:
            raise VaezooError(f"{name} {v} is out of range: the held-out set has examples 0..{count - 1}")
    return list(values)


def _shown(held_out, rows: Sequence[int], device: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The held-out images of `rows` as stored (grey, not binarized: what a person looks at) on the device,
    with their labels for a conditional model (else None)."""
    return held_out.read(np.asarray(rows, dtype=np.int64), device, stored=True)


def _written(path: str) -> int:
    print(f"wrote {path}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from vaezoo.analysis.samplers import draw_images, load_sampler
    from vaezoo.runs.directory import load_model

    _check_picture_args(args)
    _at_least("--n", args.n, 1)
    model = load_model(args.run_dir, device=args.device, trust_pickle=args.trust_pickle,
                       imports=args.imports)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    if args.label is not None and not model.conditional:
        raise VaezooError(f"--label needs a conditional variant; {model.config['variant']} is not conditional")
    if args.label is not None and not 0 <= args.label < model.num_classes:
        raise VaezooError(f"--label must be in 0..{model.num_classes - 1}, got {args.label}")
    sampler = load_sampler(args.run_dir, args.sampler, model)
    try:
        images = draw_images(model, sampler, args.n, args.label, temperature=args.temperature)
    except ValueError as exc:
        raise VaezooError(str(exc)) from exc
    viz.save_grid(images, args.out)
    return _written(args.out)


def cmd_reconstruct(args: argparse.Namespace) -> int:
    _at_least("--n", args.n, 1)
    model, held_out = _picture_run(args)
    x, y = held_out.first(args.n, args.device, stored=True)
    recon = model.reconstruct(x, y)
    rows = torch.stack([x, recon.to(x.dtype)], dim=1).reshape(-1, *x.shape[1:])
    viz.save_grid(rows, args.out, nrow=2 * min(8, len(x)) if len(x) > 1 else 2)
    return _written(args.out)


def cmd_interpolate(args: argparse.Namespace) -> int:
    _at_least("--steps", args.steps, 2)
    model, held_out = _picture_run(args)
    if args.pair:
        first, second = _indices("--pair", args.pair, len(held_out))
        a, b = [first], [second]
    else:
        walks = min(8, len(held_out) // 2)
        if not walks:
            raise VaezooError(f"the held-out set of {args.run_dir} has {len(held_out)} image; interpolation needs two")
        a, b = list(range(0, 2 * walks, 2)), list(range(1, 2 * walks, 2))
    (xa, ya), (xb, yb) = _shown(held_out, a, args.device), _shown(held_out, b, args.device)
    images = explore.interpolate(model, xa, xb, args.steps, spherical=args.slerp, ya=ya, yb=yb)
    viz.save_grid(images, args.out, nrow=args.steps)
    return _written(args.out)


def cmd_arithmetic(args: argparse.Namespace) -> int:
    model, held_out = _picture_run(args)
    if args.from_label is not None or args.to_label is not None:
        if args.from_label is None or args.to_label is None:
            raise VaezooError("--from-label and --to-label go together")
        (a,) = _indices("--a", [args.a], len(held_out))
        labels = held_out.labels
        # only the images of the two classes are read: the attribute vector is the difference of their mean codes
        rows = np.flatnonzero(((labels == args.from_label) | (labels == args.to_label)).numpy())
        x, _ = _shown(held_out, rows, args.device)
        try:
            shift = explore.attribute_vector(model, x, labels[rows].to(args.device), args.from_label, args.to_label)
        except ValueError as exc:
            raise VaezooError(f"{exc} in the held-out set") from exc
        xa, ya = _shown(held_out, [a], args.device)
        code = model.posterior_mean(xa, ya)
        moved = model.decode(code + shift, None if ya is None else torch.full_like(ya, args.to_label))
        viz.save_grid(torch.cat([xa, moved.to(xa.dtype)]), args.out, nrow=2)
        return _written(args.out)
    if args.b is None or args.c is None:
        raise VaezooError("arithmetic needs --a, --b and --c (or --a with --from-label and --to-label)")
    a, b, c = _indices("--a/--b/--c", [args.a, args.b, args.c], len(held_out))
    (xa, _), (xb, _), (xc, yc) = (_shown(held_out, [i], args.device) for i in (a, b, c))
    images = explore.arithmetic(model, xa, xb, xc, yc)
    viz.save_grid(images, args.out, nrow=4)
    return _written(args.out)


def cmd_traverse(args: argparse.Namespace) -> int:
    _at_least("--steps", args.steps, 2)
    model, held_out = _picture_run(args)
    (i,) = _indices("--index", [args.index], len(held_out))
    dims = args.dims if args.dims else None
    if dims and any(not 0 <= d < model.latent_dim for d in dims):
        raise VaezooError(f"--dims must be in 0..{model.latent_dim - 1}, got {dims}")
    x, y = _shown(held_out, [i], args.device)
    images = explore.traverse(model, x, steps=args.steps, dims=dims, y=y)
    viz.save_grid(images, args.out, nrow=args.steps)
    return _written(args.out)
