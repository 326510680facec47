"""The `vaezoo` command line."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Sequence

from vaezoo.analysis import operator_bench as bench
from vaezoo.cli.catalog_commands import cmd_list, cmd_plugins, cmd_show
from vaezoo.cli.eval_command import cmd_eval
from vaezoo.cli.export_command import add_export_arguments, cmd_export
from vaezoo.cli.picture_commands import (
    cmd_arithmetic,
    cmd_interpolate,
    cmd_reconstruct,
    cmd_sample,
    cmd_traverse,
)
from vaezoo.cli.sampler_commands import SAMPLER_HELP, add_fit_sampler_arguments, cmd_fit_sampler
from vaezoo.cli.train_command import add_train_arguments, cmd_train
from vaezoo.errors import SettingError, VaezooError
from vaezoo.registry.catalog import ALL_KINDS


def cmd_push(args: argparse.Namespace) -> int:
    from vaezoo.analysis.hub_push import push_run
    from vaezoo.runs.directory import locate_run
    from vaezoo.cli.recorded_command import recorded_command

    run = locate_run(args.run_dir)
    url = push_run(run, args.repo, command=recorded_command(run), private=args.private, message=args.message)
    print(f"pushed {args.run_dir} to {url}")
    print(f"load it with vaezoo.load_model(\"hf://{args.repo.removeprefix('hf://')}\")")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from vaezoo.training.config import TrainConfig
    from vaezoo.training.trainer import train

    out = args.out or str(Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S"))
    config = TrainConfig(variant="vae-mlp", dataset="digits", out=out, epochs=args.epochs, batch_size=64)
    print(f"vaezoo demo: training vae-mlp on the 8x8 digits for {config.epochs} epochs into {out}")
    run = train(config, progress=not args.quiet)
    print(f"run written to {run}")
    print(f"report: {run / 'report.html'}")
    return 0


RUN_HELP = "a run directory written by `vaezoo train`, or hf://ORG/NAME[@REVISION]: a run on the Hugging Face Hub"
TRUST_PICKLE_HELP = ("unpickle the run's model.pt (a model built by hand from parts that could not be recorded "
                     "without pickle); unpickling runs any code the file holds: only for runs you trust")
IMPORT_HELP = ("import MODULE to rebuild a hand-built model whose parts are its classes (importing runs the module's "
               "code: vaezoo imports only vaezoo's and torch's modules unasked); repeat for several")
DATA_DIR_HELP = ("where the run's data is (needed unless the run used a dataset's default location or data "
                 "inside RUN_DIR: vaezoo does not open paths that a run directory names)")


def _check_environment() -> None:
    """Settings from the environment that every command depends on."""
    from vaezoo.ops.backend import BACKENDS, ENV_VAR

    choice = os.environ.get(ENV_VAR)
    if choice and choice not in BACKENDS:
        raise VaezooError(f"${ENV_VAR} must be one of {', '.join(BACKENDS)}, got {choice!r}; fix or unset it")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaezoo", description="A plugin-based model zoo of Variational Autoencoders on PyTorch."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list variants (or the components or datasets of a kind)")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'vae-*' (default: all)")
    p.add_argument("--kind", default="variant", choices=ALL_KINDS, help="what to list (default: variant)")
    p.add_argument("--pretrained", action="store_true",
                   help="list the installed pretrained weights (pretrained:VARIANT/DATASET) with their metrics")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="describe a variant: its parts, their plugins and options")
    p.add_argument("name", help="variant name, or plugin:name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("plugins", help="list plugins: distribution, version, status and what each contributed")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("train", help="train a variant on a dataset into a run directory")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="train vae-mlp on the built-in 8x8 digits and write pictures (< 2 min on CPU)")
    p.add_argument("--out", help="run directory (default: runs/demo-DATE-TIME)")
    p.add_argument("--epochs", type=int, default=100, help="epochs (default 100)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("eval", help="held-out ELBO, importance-weighted NLL, active units, I(x;z), KL per dim")
    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_HELP)
    p.add_argument("--nll-samples", type=int,
                   help="importance samples K for the NLL (default 1000, or 100 where K=1000 on every held-out "
                   "example would cost over 3e13 FLOPs, e.g. 64x64 conv models)")
    p.add_argument("--nll-examples", type=int, metavar="N",
                   help="estimate the NLL on the first N held-out examples (default: all, or as many as 5e11 FLOPs "
                   "allow at K=100 where all at K=1000 would cost over 3e13; K decoder passes each)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE", help=IMPORT_HELP)
    p.add_argument("--disentanglement", action="store_true",
                   help="MIG, SAP, DCI, BetaVAE and FactorVAE scores (datasets with factors: dsprites, colour-shapes)")
    p.add_argument("--sample-quality", action="store_true",
                   help="FID, KID, precision/recall on features of a classifier vaezoo trains and caches per dataset")
    p.add_argument("--quality-samples", type=int, default=5000, help="generated and held-out images compared (default 5000)")
    p.add_argument("--reconstruction", action="store_true",
                   help="also rFID of the reconstructions (PSNR, SSIM, MS-SSIM and the KL per latent channel are "
                   "always shown for image models), written to evaluation.json and report.html with full-size "
                   "reconstructions")
    p.add_argument("--sampler", default="prior", help="--sample-quality of this sampler's draws: " + SAMPLER_HELP)
    p.set_defaults(func=cmd_eval)

    def picture_command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_HELP)
        p.add_argument("--out", required=True, help="PNG file to write")
        p.add_argument("--seed", type=int, help="random seed, for a picture that repeats")
        p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
        p.add_argument("--data-dir", help=DATA_DIR_HELP)
        p.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
        p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE", help=IMPORT_HELP)
        p.set_defaults(func=func)
        return p

    p = picture_command("sample", "decode draws of the prior into a grid", cmd_sample)
    p.add_argument("--n", type=int, default=64, help="how many (default 64)")
    p.add_argument("--temperature", type=float, default=1.0, help="scale the draws about the prior's centre")
    p.add_argument("--label", type=int, help="class to generate (conditional variants)")
    p.add_argument("--sampler", default="prior", help=SAMPLER_HELP)
    p = picture_command("reconstruct", "held-out inputs beside their reconstructions", cmd_reconstruct)
    p.add_argument("--n", type=int, default=32, help="how many inputs (default 32)")
    p.add_argument("--tile", type=int, metavar="SIZE",
                   help="encode and decode in overlapping SIZE x SIZE tiles, blended (ldm parts; less memory)")
    p.add_argument("--overlap", type=int, metavar="PIXELS", help="the tiles' overlap (default a quarter tile)")
    p = picture_command("interpolate", "walk the latent space between held-out inputs", cmd_interpolate)
    p.add_argument("--steps", type=int, default=10, help="images per walk (default 10)")
    p.add_argument("--pair", type=int, nargs=2, metavar=("I", "J"), help="held-out indices to walk between")
    p.add_argument("--slerp", action="store_true", help="spherical instead of linear interpolation")
    p = picture_command("arithmetic", "decode z_a - z_b + z_c, or move z_a by a class-mean attribute vector", cmd_arithmetic)
    p.add_argument("--a", type=int, required=True, help="held-out index of a")
    p.add_argument("--b", type=int, help="held-out index of b")
    p.add_argument("--c", type=int, help="held-out index of c")
    p.add_argument("--from-label", type=int, help="attribute vector: from the mean code of this class...")
    p.add_argument("--to-label", type=int, help="...to the mean code of this class")
    p = picture_command("traverse", "sweep each latent dimension over the prior's range", cmd_traverse)
    p.add_argument("--steps", type=int, default=9, help="images per dimension (default 9)")
    p.add_argument("--index", type=int, default=0, help="held-out input whose code is the starting point")
    p.add_argument("--dims", type=int, nargs="+", help="latent dimensions to sweep (default: all)")

    p = sub.add_parser("push", help="publish a run on the Hugging Face Hub, with a model card (hf://ORG/NAME loads it)")
    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_HELP)
    p.add_argument("repo", metavar="ORG/NAME", help="the Hub model repository to publish to (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repository private (an existing one keeps "
                                                          "its visibility)")
    p.add_argument("--message", help="the commit message (default: vaezoo push of RUN_DIR's name)")
    p.set_defaults(func=cmd_push)
    p = sub.add_parser("export", help="write a run's model in another library's format (diffusers' AutoencoderKL)")
    add_export_arguments(p, TRUST_PICKLE_HELP, IMPORT_HELP)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("fit-sampler", help="fit a sampler (gmm, two-stage, flow, pixelcnn) to a run's training codes")
    add_fit_sampler_arguments(p, DATA_DIR_HELP)
    p.set_defaults(func=cmd_fit_sampler)

    p = sub.add_parser("bench", help="time the fused reparameterize+KL operator against the reference path")
    bench.add_arguments(p)
    p.set_defaults(func=bench.run)
    for command in sub.choices.values():
        command.set_defaults(flags=_flags(command))
    return parser


def _flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """The flag of each setting a command takes (batch_size: --batch-size, overrides: --set): the library's
    errors name settings, the command's name its flags."""
    return {action.dest: action.option_strings[-1] for action in parser._actions
            if action.option_strings and action.dest != "help"}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program stands like Ctrl-C, so that the same clean-up runs (temporary files
    removed, the lock released) and the run resumes from its last checkpoint."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line for the user (e.g. weights that carry no checksum), not Python's source excerpt."""
    print(f"vaezoo: warning: {message}", file=file or sys.stderr)


#: The exit status when the reader of the output went away (`vaezoo list | head -2`): 128 + SIGPIPE, what the
#: shell reports for coreutils cut off the same way, so that `set -o pipefail` scripts see vaezoo as they see them
#: (not 0: the output was not all written).
CLOSED_OUTPUT = 128 + 13


def _stdout_closed() -> bool:
    """Whether the reader of standard output has gone away (a pipe whose other end is closed), told apart from a
    broken pipe of anything else, which stays an error. Where poll is missing (Windows), assumed."""
    import select

    if not hasattr(select, "poll"):
        return True
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), 0)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (OSError, ValueError):  # stdout replaced by an object without a file descriptor
        return False


def _end_quietly() -> int:
    """End a command whose output's reader closed it: nothing more is written to it (not even Python's flush at
    exit, which would print a traceback), and the status says the output was cut short."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return CLOSED_OUTPUT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handles = threading.current_thread() is threading.main_thread()  # signal handlers live in the main thread
    previous = signal.signal(signal.SIGTERM, _terminate) if handles else None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            _check_environment()
            code = args.func(args)
            sys.stdout.flush()  # here, where a reader that went away is caught, not at exit
            return code
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        return _end_quietly()
    except SettingError as exc:
        flags = getattr(args, "flags", {})
        print(f"vaezoo: error: {exc.named(lambda setting: flags.get(setting, setting))}", file=sys.stderr)
        return 2
    except VaezooError as exc:
        print(f"vaezoo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"vaezoo: {'terminated (SIGTERM)' if isinstance(exc, Terminated) else 'interrupted'}", file=sys.stderr)
        return 130
    finally:
        if handles:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":
    sys.exit(main())
