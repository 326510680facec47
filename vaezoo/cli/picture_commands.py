"""`vaezoo sample`, `reconstruct`, `interpolate`, `arithmetic` and `traverse`: pictures of a trained run (drawn by
analysis.run_pictures)."""
from __future__ import annotations

import argparse

from vaezoo.analysis import run_pictures
from vaezoo.analysis.run_held_out import open_run
from vaezoo.errors import VaezooError


def _open(args: argparse.Namespace, held_out: bool = True, run=None):
    """The run's model and held-out set, after checking where the picture goes; `run` is args.run_dir already
    opened (a SavedRun) when the command needs it for more than the model."""
    run_pictures.check_picture_path(args.out)
    return open_run(args.run_dir if run is None else run, args.device, data_dir=args.data_dir,
                    trust_pickle=args.trust_pickle, imports=args.imports, seed=args.seed, held_out=held_out)


def _write(grid: run_pictures.Grid, path: str) -> int:
    grid.save(path)
    print(f"wrote {path}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from vaezoo.analysis.samplers import load_sampler
    from vaezoo.runs.directory import open_saved_run

    run = open_saved_run(args.run_dir)  # once, for the model and the sampler: shipped weights are hashed once
    model, _ = _open(args, held_out=False, run=run)
    sampler = load_sampler(run, args.sampler, model)
    return _write(run_pictures.samples(model, args.n, args.label, args.temperature, sampler=sampler), args.out)


def cmd_reconstruct(args: argparse.Namespace) -> int:
    if args.overlap is not None and args.tile is None:
        raise VaezooError("--overlap is the overlap of the tiles of --tile SIZE; give --tile too")
    model, held_out = _open(args)
    return _write(run_pictures.reconstructions(model, held_out, args.n, tile=args.tile, overlap=args.overlap),
                  args.out)


def cmd_interpolate(args: argparse.Namespace) -> int:
    model, held_out = _open(args)
    return _write(run_pictures.interpolations(model, held_out, args.steps, args.pair, spherical=args.slerp),
                  args.out)


def cmd_arithmetic(args: argparse.Namespace) -> int:
    shift = args.from_label is not None or args.to_label is not None
    if shift and (args.from_label is None or args.to_label is None):
        raise VaezooError("--from-label and --to-label go together")
    if not shift and (args.b is None or args.c is None):
        raise VaezooError("arithmetic needs --a, --b and --c (or --a with --from-label and --to-label)")
    model, held_out = _open(args)
    if shift:
        return _write(run_pictures.attribute_shift(model, held_out, args.a, args.from_label, args.to_label), args.out)
    return _write(run_pictures.latent_arithmetic(model, held_out, args.a, args.b, args.c), args.out)


def cmd_traverse(args: argparse.Namespace) -> int:
    model, held_out = _open(args)
    return _write(run_pictures.traversal(model, held_out, args.index, args.steps, args.dims), args.out)
