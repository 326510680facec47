"""`vaezoo export`: write a run's model in another library's format (diffusers' AutoencoderKL)."""
from __future__ import annotations

import argparse

from vaezoo.runs.export import FORMATS, export


def add_export_arguments(p: argparse.ArgumentParser, trust_help: str, import_help: str) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (or a directory `vaezoo.load_model` reads)")
    p.add_argument("--format", required=True, choices=sorted(FORMATS),
                   help="; ".join(f"{name}: {what}" for name, what in FORMATS.items()))
    p.add_argument("--out", required=True, help="the folder to write: new or empty (nothing is overwritten)")
    p.add_argument("--trust-pickle", action="store_true", help=trust_help)
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE", help=import_help)


def cmd_export(args: argparse.Namespace) -> int:
    out = export(args.run_dir, args.out, args.format, trust_pickle=args.trust_pickle, imports=args.imports)
    print(f"wrote {out} ({FORMATS[args.format]})")
    return 0
