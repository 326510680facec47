"""The `vaezoo` command line."""
from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from vaezoo.analysis import explore
from vaezoo.analysis import operator_bench as bench
from vaezoo.analysis import pictures as viz
from vaezoo.cli.train_command import add_train_arguments, cmd_train
from vaezoo.errors import VaezooError
from vaezoo.registry.catalog import ALL_KINDS
from vaezoo.registry.discovery import get_registry
from vaezoo.registry.factory import component_options, get_model_spec
from vaezoo.registry.spec import KINDS
from vaezoo.runtime.devices import check_device


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def cmd_list(args: argparse.Namespace) -> int:
    registry = get_registry()
    kind = args.kind
    rows = []
    for name in registry.names(kind, args.pattern):
        entry = registry.get(kind, name)
        rows.append({"name": name, "kind": kind, "plugin": entry.plugin, "description": entry.description})
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print(f"no {kind} matches {args.pattern!r}")
        return 0
    width = max(len(r["name"]) for r in rows)
    pwidth = max(len(r["plugin"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['plugin']:<{pwidth}}  {r['description']}")
    return 0


def describe_variant(name: str) -> dict[str, Any]:
    """A variant's recipe with, per part, its provider, description and the options it takes."""
    spec = get_model_spec(name)
    registry = get_registry()
    parts = {}
    for kind in KINDS:
        entry = registry.get(kind, spec.recipe.component(kind))
        accepted = component_options(kind, entry.obj)
        defaults = {k: (None if v is inspect.Parameter.empty else v) for k, v in (accepted or {}).items()}
        parts[kind] = {
            "name": entry.name,
            "plugin": entry.plugin,
            "description": entry.description,
            "options": {**defaults, **spec.recipe.options.get(kind, {})},
        }
    return {
        "name": spec.name,
        "plugin": spec.plugin,
        "description": spec.description,
        "tags": list(spec.tags),
        "latent_dim": spec.recipe.latent_dim,
        "input_shape": list(spec.recipe.input_shape),
        "parts": parts,
    }


def cmd_show(args: argparse.Namespace) -> int:
    info = describe_variant(args.name)
    if args.json:
        _print_json(info)
        return 0
    print(f"{info['name']}  (from plugin {info['plugin']})")
    if info["description"]:
        print(f"  {info['description']}")
    print(f"  latent_dim {info['latent_dim']}, default input_shape {tuple(info['input_shape'])}")
    for kind, part in info["parts"].items():
        options = ", ".join(f"{k}={v!r}" for k, v in part["options"].items()) or "no options"
        print(f"  {kind:<10} {part['name']:<16} [{part['plugin']}] {part['description']}")
        print(f"  {'':<10} options: {options}")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    records = [record.as_dict() for record in get_registry().plugins.values()]
    if args.json:
        _print_json(records)
        return 0
    for r in records:
        origin = "built-in" if r["builtin"] else f"{r['distribution']} {r['version']}"
        print(f"{r['name']}  ({origin})  {r['status']}")
        for kind, names in r["contributed"].items():
            print(f"    {kind + 's':<12} {', '.join(names)}")
        if r["status"] == "active" and not r["contributed"]:
            print("    registered nothing: are its hook functions decorated with @vaezoo.hookimpl?")
        if r["error"]:
            print(f"    error: {r['error']}")
    return 0


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
    """The trained model of RUN_DIR, its held-out images and labels, and the device to use."""
    from vaezoo.runs.directory import load_model, load_run_data

    _check_picture_args(args)
    model = load_model(args.run_dir, device=args.device)
    data = load_run_data(args.run_dir, args.data_dir)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    return model, data.test_x.to(args.device), data.test_y.to(args.device)


def _indices(name: str, values: Sequence[int], count: int) -> list[int]:
    for v in values:
        if not 0 <= v < count:
            raise VaezooError(f"{name} {v} is out of range: the held-out set has examples 0..{count - 1}")
    return list(values)


def _labels_for(model, y: torch.Tensor) -> torch.Tensor | None:
    return y if model.conditional else None


def _written(path: str) -> int:
    print(f"wrote {path}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from vaezoo.runs.directory import load_model

    _check_picture_args(args)
    _at_least("--n", args.n, 1)
    model = load_model(args.run_dir, device=args.device)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    if args.label is not None and not model.conditional:
        raise VaezooError(f"--label needs a conditional variant; {model.config['variant']} is not conditional")
    if args.label is not None and not 0 <= args.label < model.num_classes:
        raise VaezooError(f"--label must be in 0..{model.num_classes - 1}, got {args.label}")
    try:
        images = model.sample(args.n, args.label, temperature=args.temperature)
    except ValueError as exc:
        raise VaezooError(str(exc)) from exc
    viz.save_grid(images, args.out)
    return _written(args.out)


def cmd_reconstruct(args: argparse.Namespace) -> int:
    _at_least("--n", args.n, 1)
    model, x, y = _picture_run(args)
    x, y = x[: args.n], y[: args.n]
    recon = model.reconstruct(x, _labels_for(model, y))
    rows = torch.stack([x, recon.to(x.dtype)], dim=1).reshape(-1, *x.shape[1:])
    viz.save_grid(rows, args.out, nrow=2 * min(8, len(x)) if len(x) > 1 else 2)
    return _written(args.out)


def cmd_interpolate(args: argparse.Namespace) -> int:
    _at_least("--steps", args.steps, 2)
    model, x, y = _picture_run(args)
    if args.pair:
        first, second = _indices("--pair", args.pair, len(x))
        a, b = [first], [second]
    else:
        walks = min(8, len(x) // 2)
        if not walks:
            raise VaezooError(f"the held-out set of {args.run_dir} has {len(x)} image; interpolation needs two")
        a, b = list(range(0, 2 * walks, 2)), list(range(1, 2 * walks, 2))
    images = explore.interpolate(
        model, x[a], x[b], args.steps, spherical=args.slerp,
        ya=_labels_for(model, y[a]), yb=_labels_for(model, y[b]),
    )
    viz.save_grid(images, args.out, nrow=args.steps)
    return _written(args.out)


def cmd_arithmetic(args: argparse.Namespace) -> int:
    model, x, y = _picture_run(args)
    if args.from_label is not None or args.to_label is not None:
        if args.from_label is None or args.to_label is None:
            raise VaezooError("--from-label and --to-label go together")
        (a,) = _indices("--a", [args.a], len(x))
        try:
            shift = explore.attribute_vector(model, x, y, args.from_label, args.to_label)
        except ValueError as exc:
            raise VaezooError(f"{exc} in the held-out set") from exc
        code = model.posterior_mean(x[[a]], _labels_for(model, y[[a]]))
        moved = model.decode(code + shift, _labels_for(model, torch.full_like(y[[a]], args.to_label)))
        viz.save_grid(torch.cat([x[[a]], moved.to(x.dtype)]), args.out, nrow=2)
        return _written(args.out)
    if args.b is None or args.c is None:
        raise VaezooError("arithmetic needs --a, --b and --c (or --a with --from-label and --to-label)")
    a, b, c = _indices("--a/--b/--c", [args.a, args.b, args.c], len(x))
    images = explore.arithmetic(model, x[[a]], x[[b]], x[[c]], _labels_for(model, y[[c]]))
    viz.save_grid(images, args.out, nrow=4)
    return _written(args.out)


def cmd_traverse(args: argparse.Namespace) -> int:
    _at_least("--steps", args.steps, 2)
    model, x, y = _picture_run(args)
    (i,) = _indices("--index", [args.index], len(x))
    dims = args.dims if args.dims else None
    if dims and any(not 0 <= d < model.latent_dim for d in dims):
        raise VaezooError(f"--dims must be in 0..{model.latent_dim - 1}, got {dims}")
    images = explore.traverse(model, x[[i]], steps=args.steps, dims=dims, y=_labels_for(model, y[[i]]))
    viz.save_grid(images, args.out, nrow=args.steps)
    return _written(args.out)


def cmd_eval(args: argparse.Namespace) -> int:
    from vaezoo.analysis import evaluate
    from vaezoo.data.held_out import held_out_set
    from vaezoo.runs.directory import load_model, load_run_data, read_config

    _check_picture_args(args)
    if args.nll_samples < 1:
        raise VaezooError(f"--nll-samples must be a positive integer, got {args.nll_samples}")
    model = load_model(args.run_dir, device=args.device)
    data = load_run_data(args.run_dir, args.data_dir)
    x, y = held_out_set(data, model, read_config(args.run_dir)["train"].get("binarize", "auto"))
    result = evaluate.summary(model, x, y, args.nll_samples, progress=not args.json)
    if args.disentanglement or args.sample_quality:
        from vaezoo.analysis.learned import evaluate_run

        result.update(evaluate_run(args.run_dir, model, data, disentanglement=args.disentanglement,
                                   sample_quality=args.sample_quality, quality_samples=args.quality_samples,
                                   progress=not args.json))
    if args.json:
        _print_json(result)
        return 0
    missing = result["unavailable"]
    print(f"held-out examples      {result['examples']}")
    print(f"ELBO                   {result['elbo']:.2f} nats (reconstruction {result['recon']:.2f}, KL {result['kl']:.2f})")
    if "nll" in result:
        print(f"{f'NLL (IW, K={args.nll_samples})':<23}{result['nll']:.2f} nats")
    if "bits_per_dim" in result:
        print(f"bits per dimension     {result['bits_per_dim']:.4f}")
    print(f"active units           {result['active_units']} of {model.latent_dim}")
    if "mutual_information" in result:
        print(f"mutual information     {result['mutual_information']:.3f} nats")
    if "kl_per_dim" in result:
        print("KL per dimension       " + " ".join(f"{v:.2f}" for v in result["kl_per_dim"]))
    for metric, reason in missing.items():
        print(f"{metric.replace('_', ' '):<23}not available: {reason}")
    if "disentanglement" in result:
        d = result["disentanglement"]
        print(f"MIG {d['mig']:.3f}  SAP {d['sap']:.3f}  DCI disentanglement {d['dci']['disentanglement']:.3f} "
              f"completeness {d['dci']['completeness']:.3f} informativeness {d['dci']['informativeness']:.3f}")
        print(f"BetaVAE score {d['beta_vae_score']:.3f}  FactorVAE score {d['factor_vae_score']:.3f}")
    if "sample_quality" in result:
        q = result["sample_quality"]
        print(f"FID {q['fid']:.3f}  KID {q['kid']:.4f}  precision {q['precision']:.3f}  recall {q['recall']:.3f} "
              f"(vaezoo features; classifier test accuracy {q['features']['test_accuracy']:.3f})")
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
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `vaezoo train`")
    p.add_argument("--nll-samples", type=int, default=1000, help="importance samples K for the NLL (default 1000)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--disentanglement", action="store_true",
                   help="MIG, SAP, DCI, BetaVAE and FactorVAE scores (datasets with factors: dsprites, colour-shapes)")
    p.add_argument("--sample-quality", action="store_true",
                   help="FID, KID, precision/recall on features of a classifier vaezoo trains and caches per dataset")
    p.add_argument("--quality-samples", type=int, default=5000, help="generated and held-out images compared (default 5000)")
    p.set_defaults(func=cmd_eval)

    def picture_command(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `vaezoo train`")
        p.add_argument("--out", required=True, help="PNG file to write")
        p.add_argument("--seed", type=int, help="random seed, for a picture that repeats")
        p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
        p.add_argument("--data-dir", help=DATA_DIR_HELP)
        p.set_defaults(func=func)
        return p

    p = picture_command("sample", "decode draws of the prior into a grid", cmd_sample)
    p.add_argument("--n", type=int, default=64, help="how many (default 64)")
    p.add_argument("--temperature", type=float, default=1.0, help="scale the draws about the prior's centre")
    p.add_argument("--label", type=int, help="class to generate (conditional variants)")
    p = picture_command("reconstruct", "held-out inputs beside their reconstructions", cmd_reconstruct)
    p.add_argument("--n", type=int, default=32, help="how many inputs (default 32)")
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

    p = sub.add_parser("bench", help="time the fused reparameterize+KL operator against the reference path")
    bench.add_arguments(p)
    p.set_defaults(func=bench.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_environment()
        return args.func(args)
    except VaezooError as exc:
        print(f"vaezoo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vaezoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
