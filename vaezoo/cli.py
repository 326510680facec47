"""The `vaezoo` command line."""
from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from vaezoo import bench
from vaezoo.discovery import get_registry
from vaezoo.errors import VaezooError
from vaezoo.factory import component_options, get_model_spec, list_components, list_models
from vaezoo.registry import ALL_KINDS
from vaezoo.spec import KINDS


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """Parse --set KEY=VALUE pairs; VALUE is JSON when it parses as JSON, else a string."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise VaezooError(f"--set takes KEY=VALUE (e.g. --set beta=4 or --set encoder.hidden_dims=[512,256]), got {item!r}")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    return overrides


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def cmd_list(args: argparse.Namespace) -> int:
    registry = get_registry()
    kind = args.kind
    names = list_models(args.pattern) if kind == "variant" else list_components(kind, args.pattern)
    rows = []
    for name in names:
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


def _train_config(args: argparse.Namespace):
    from vaezoo.train import TrainConfig

    return TrainConfig(
        variant=args.variant, dataset=args.dataset, out=args.out, data_dir=args.data_dir, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, latent_dim=args.latent_dim, overrides=parse_set(args.set),
        device=args.device, seed=args.seed,
    )


def cmd_train(args: argparse.Namespace) -> int:
    from vaezoo.train import train

    run = train(_train_config(args), progress=not args.quiet)
    print(f"run written to {run}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from vaezoo.train import TrainConfig, train

    out = args.out or str(Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S"))
    config = TrainConfig(variant="vae-mlp", dataset="digits", out=out, epochs=args.epochs, batch_size=64)
    print(f"vaezoo demo: training vae-mlp on the 8x8 digits for {config.epochs} epochs into {out}")
    run = train(config, progress=not args.quiet)
    for picture in ("samples.png", "reconstructions.png"):
        print(f"  {run / picture}")
    print(f"run written to {run}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaezoo", description="A plugin-based model zoo of Variational Autoencoders on PyTorch."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list variants (or components of a kind)")
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
    p.add_argument("variant", help="variant name (see `vaezoo list`)")
    p.add_argument("--dataset", required=True, help="digits or fashion-mnist")
    p.add_argument("--data-dir", help="folder with the dataset's files (fashion-mnist: its four IDX files)")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training set (default 10)")
    p.add_argument("--batch-size", type=int, default=128, help="examples per step (default 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--latent-dim", type=int, help="latent dimensions (default: the variant's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a part or option: prior=NAME, beta=4, encoder.hidden_dims=[512,256] (repeatable)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="run directory to create")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="train vae-mlp on the built-in 8x8 digits and write pictures (< 2 min on CPU)")
    p.add_argument("--out", help="run directory (default: runs/demo-DATE-TIME)")
    p.add_argument("--epochs", type=int, default=150, help="epochs (default 150)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench", help="time the fused reparameterize+KL operator against the reference path")
    bench.add_arguments(p)
    p.set_defaults(func=bench.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VaezooError as exc:
        print(f"vaezoo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vaezoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
