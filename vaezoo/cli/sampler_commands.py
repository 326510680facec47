"""`vaezoo fit-sampler`: fit a sampler to a trained run's training codes and store it in the run."""
from __future__ import annotations

import argparse

from vaezoo.runtime.devices import check_device
from vaezoo.training.config_file import parse_assignments

SAMPLER_HELP = ("draw codes from this sampler (see `vaezoo list --kind sampler`): prior (default), or one fitted "
                "to the run with `vaezoo fit-sampler`")


def add_fit_sampler_arguments(p: argparse.ArgumentParser, data_dir_help: str) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `vaezoo train`")
    p.add_argument("--sampler", required=True, help="which sampler (see `vaezoo list --kind sampler`)")
    p.add_argument("--epochs", type=int, help="passes over the training codes (EM iterations for gmm; default: the "
                   "sampler's)")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed fits the same sampler (default 0)")
    p.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="a sampler option, e.g. components=20 (values are JSON where they parse) (repeatable)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--data-dir", help=data_dir_help)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_fit_sampler(args: argparse.Namespace) -> int:
    from vaezoo.analysis.samplers import fit_sampler

    check_device(args.device)
    options = parse_assignments(args.options, "--set")
    path, record = fit_sampler(args.run_dir, args.sampler, epochs=args.epochs, seed=args.seed, options=options,
                               data_dir=args.data_dir, device=args.device, progress=not args.quiet)
    figures = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record["fit"].items())
    print(f"fitted {record['sampler']['name']} to the {record['training_codes']} training codes "
          f"({record['codes']}) in {record['epochs']} epochs, seed {record['seed']}: {figures}")
    print(f"wrote {path}")
    return 0
