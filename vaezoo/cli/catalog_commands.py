"""`vaezoo list`, `show` and `plugins`: what the registry holds and who gave it (registry.description)."""
from __future__ import annotations

import argparse

from vaezoo.cli.output import print_json
from vaezoo.registry.description import describe_variant, list_entries
from vaezoo.registry.discovery import get_registry


#: The metrics `vaezoo list --pretrained` shows in its table, in this order (--json gives them all).
SHOWN_METRICS = (("elbo", "ELBO"), ("nll", "IW-NLL"), ("fid", "FID"))


def list_pretrained(args: argparse.Namespace) -> int:
    from vaezoo.runs.pretrained import INSTALL_HINT, pretrained_records

    rows = pretrained_records(args.pattern)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"no pretrained weights match {args.pattern!r}" if get_registry().names("weights")
              else f"no pretrained weights are installed: {INSTALL_HINT}")
        return 0
    width, pwidth = max(len(r["name"]) for r in rows), max(len(r["plugin"]) for r in rows)
    for r in rows:
        shown = "  ".join(f"{label} {r['metrics'][key]:.2f}" for key, label in SHOWN_METRICS if key in r["metrics"])
        print(f"{r['name']:<{width}}  {r['plugin']:<{pwidth}}  {shown}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    if args.pretrained:
        return list_pretrained(args)
    kind = args.kind
    rows = list_entries(kind, args.pattern)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"no {kind} matches {args.pattern!r}")
        return 0
    width = max(len(r["name"]) for r in rows)
    pwidth = max(len(r["plugin"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['plugin']:<{pwidth}}  {r['description']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    info = describe_variant(args.name)
    if args.json:
        print_json(info)
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
        print_json(records)
        return 0
    for r in records:
        origin = "built-in" if r["builtin"] else f"{r['distribution']} {r['version']}"
        print(f"{r['name']}  ({origin})  {r['status']}")
        for kind, names in r["contributed"].items():
            print(f"    {kind if kind.endswith('s') else kind + 's':<12} {', '.join(names)}")
        if r["status"] == "active" and not r["contributed"]:
            print("    registered nothing: are its hook functions decorated with @vaezoo.hookimpl?")
        if r["error"]:
            print(f"    error: {r['error']}")
    return 0
