"""The zoo's quality table: train variants on dynamically binarized Fashion-MNIST for a fixed budget, then
report the held-out ELBO, the importance-weighted NLL (where the model defines it), active units, the
reconstruction error, sample sharpness and time; optionally FID, KID and precision/recall.

    python benchmarks/quality/run.py --threads 1                          # the density variants, 50 epochs each
    python benchmarks/quality/run.py --variants vae-mlp svae-mlp --epochs 10 --nll-samples 100 --sample-quality
    python benchmarks/quality/run.py --variants vae-conv vae-gan-conv --epochs 5 --compare vae-conv vae-gan-conv

Each variant trains through `vaezoo.training.trainer` into RUNS/VARIANT-eE-sS (a finished run there is measured
again, not retrained). Rows are merged into benchmarks/results/quality.json, keyed by variant and budget, and
quality.md holds one table per budget. --compare A B also writes A-vs-B.{md,png}: the two variants' samples
side by side, next to real held-out images, with their figures.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import vaezoo
from vaezoo.analysis import pictures
from vaezoo.analysis.eval_extras import generate
from vaezoo.data.datasets import load_dataset
from vaezoo.data.splits import to_model_input
from vaezoo.training.config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from finished_runs import train_or_reuse  # noqa: E402 - the benchmarks' shared helper
from measure import measure  # noqa: E402

DENSITY_VARIANTS = ["vae-mlp", "hvae-mlp", "vamp-vae-mlp", "iwae-mlp", "mog-vae-mlp"]
RESULTS = Path(__file__).resolve().parents[1] / "results"
COLUMNS = [  # (key, header, format); a row without the key shows "-"
    ("elbo", "held-out ELBO (nats)", "{:.2f}"), ("iw_nll", "IW-NLL (nats)", "{:.2f}"), ("nll_samples", "K", "{}"),
    ("nll_examples", "IW-NLL images", "{}"),
    ("reconstruction_mse", "recon. MSE", "{:.4f}"), ("sample_sharpness", "sample sharpness", "{:.4f}"),
    ("fid", "FID", "{:.2f}"), ("precision", "precision", "{:.3f}"), ("recall", "recall", "{:.3f}"),
    ("train_seconds", "train time (min)", None), ("median_epoch_seconds", "median epoch (s)", "{:.1f}"),
    ("threads", "threads", "{}"),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=DENSITY_VARIANTS, help="variants to train and evaluate")
    parser.add_argument("--epochs", type=int, default=50, help="training budget in epochs (default 50)")
    parser.add_argument("--batch-size", type=int, default=128, help="examples per step (default 128)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--nll-samples", type=int, default=1000, help="importance samples K (default 1000)")
    parser.add_argument("--nll-examples", type=int, help="IW-NLL on the first N held-out images (default: all "
                        "10,000; a conv model's K decoder passes per image make that long on a CPU)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice); 1 on a shared "
                        "machine, where threads spinning on busy cores run many times slower")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--data-dir", help="Fashion-MNIST's files (default: where Debian's package puts them)")
    parser.add_argument("--sample-quality", action="store_true",
                        help="also FID, KID and precision/recall of 10,000 samples on vaezoo's Fashion-MNIST "
                        "classifier features (comparable within vaezoo, not with Inception-based figures)")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"),
                        help="two of --variants whose samples go side by side in results/A-vs-B.{md,png}")
    parser.add_argument("--runs", default="runs/quality", help="where the run directories go")
    parser.add_argument("--results", default=str(RESULTS), help="where quality.json and quality.md go")
    args = parser.parse_args()
    if args.compare and not set(args.compare) <= set(args.variants):
        parser.error(f"--compare {' '.join(args.compare)}: both must be among --variants")
    return args


def budget(epochs: int) -> str:
    return f"{epochs} epoch{'s' if epochs != 1 else ''}"


def cell(row: dict[str, object], key: str, fmt: str | None) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    return f"{value / 60:.1f}" if key == "train_seconds" else fmt.format(value)


def feature_network_line(rows: list[dict[str, object]]) -> str:
    """Which feature network the FIDs of `rows` were measured on: its SHA-256 and source, or, for rows measured
    before vaezoo shipped one, that it was trained on the measuring machine (and its held-out accuracy)."""
    named = sorted({f"{r['feature_network_sha256'][:16]} ({r['feature_network']})" for r in rows
                    if r.get("fid") is not None and r.get("feature_network_sha256")})
    older = sorted({f" (held-out accuracy {r['classifier_test_accuracy']:.4f})" if r.get("classifier_test_accuracy")
                    else "" for r in rows if r.get("fid") is not None and not r.get("feature_network_sha256")})
    parts = [f"the network {n}" for n in named] + [
        f"a network trained on the measuring machine before vaezoo shipped one{a}: not comparable with FIDs on "
        "the shipped network" for a in older]
    return "FID, KID and precision/recall on " + "; ".join(parts) + "."


def write_table(results: dict[str, dict[str, object]], path: Path) -> None:
    """quality.md: one table per training budget, best IW-NLL first (rows without one after), with the
    commands that made its rows."""
    lines = ["# Quality on Fashion-MNIST (binarized afresh per batch; test set binarized once)", ""]
    for epochs in sorted({r["epochs"] for r in results.values()}, reverse=True):
        rows = sorted((r for r in results.values() if r["epochs"] == epochs),
                      key=lambda r: (r.get("iw_nll") is None, r.get("iw_nll") or 0.0, r["variant"]))
        lines += [f"## {budget(epochs)}", "",
                  "| variant | active units | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
                  "|---|---:|" + "---:|" * len(COLUMNS)]
        for r in rows:
            lines.append(f"| {r['variant']} | {r['active_units']}/{r['latent_dim']} | "
                         + " | ".join(cell(r, k, f) for k, _, f in COLUMNS) + " |")
        sharp = {r["data_sharpness"] for r in rows if "data_sharpness" in r}
        unavailable = sorted({f"{r['variant']}: {r['iw_nll_unavailable']}" for r in rows if r.get("iw_nll_unavailable")})
        lines += [""] + [f"Real held-out images score sample sharpness {s:.4f}." for s in sorted(sharp)]
        lines += [f"IW-NLL not defined for {u}." for u in unavailable]
        lines += [feature_network_line(rows)] if any(r.get("fid") is not None for r in rows) else []
        lines += ["Commands:"] + [f"- `{c}`" for c in sorted({r["command"] for r in rows})] + [""]
    lines += [
        "IW-NLL is -log p(x) estimated with K importance samples (Burda et al., 2016), on the first IW-NLL images "
        "of the held-out set (the ELBO and the rest on all of it). Reconstruction MSE is per "
        "pixel, between the held-out images and the decoded posterior means. Sample sharpness is the mean variance "
        "of the Laplacian of 1,000 decoded prior samples (`vaezoo.metrics.sharpness`; higher is sharper). FID and "
        "precision/recall (Kynkaanniemi et al., 2019) compare 10,000 samples with the 10,000 test images on the "
        "features of vaezoo's Fashion-MNIST classifier: comparable within vaezoo, not with Inception-based figures."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_comparison(pair: list[str], runs: dict[str, Path], results: dict[str, dict[str, object]], data,
                     args: argparse.Namespace) -> None:
    """A-vs-B.md and .png: 64 samples of each variant and 64 real held-out images, side by side, with figures."""
    name = f"{pair[0]}-vs-{pair[1]}"
    real = to_model_input(data.test.read(np.arange(64)))
    grids = [generate(vaezoo.load_model(runs[v], device=args.device), 64) for v in pair] + [real]
    panels = [pictures.grid_array(g, nrow=8) for g in grids]
    gap = np.full((panels[0].shape[0], 16, *panels[0].shape[2:]), 255, dtype=np.uint8)
    Image.fromarray(np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)).save(Path(args.results) / f"{name}.png")
    rows = [results[f"{v}@{args.epochs}"] for v in pair]
    shown = [c for c in COLUMNS if any(r.get(c[0]) is not None for r in rows)]
    lines = [f"# {pair[0]} against {pair[1]} on Fashion-MNIST, {budget(args.epochs)} each", "",
             f"![left: {pair[0]} samples; middle: {pair[1]} samples; right: real held-out images]({name}.png)", "",
             "Left: " + pair[0] + " samples; middle: " + pair[1] + " samples; right: real held-out images "
             "(decoded prior draws, the likelihood's mean, as `vaezoo sample` shows them).", "",
             "| variant | " + " | ".join(h for _, h, _ in shown) + " |", "|---|" + "---:|" * len(shown)]
    lines += [f"| {r['variant']} | " + " | ".join(cell(r, k, f) for k, _, f in shown) + " |" for r in rows]
    lines += ["", f"Real held-out images score sample sharpness {rows[0]['data_sharpness']:.4f}.", "",
              f"Command: `{rows[0]['command']}`"]
    (Path(args.results) / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results_dir = Path(args.results)
    results_dir.mkdir(parents=True, exist_ok=True)
    store = results_dir / "quality.json"
    record = json.loads(store.read_text()) if store.exists() else {"results": {}}
    data = load_dataset("fashion-mnist", args.data_dir)  # interim: until load_dataset returns Splits
    command = "python benchmarks/quality/run.py " + " ".join(sys.argv[1:])
    runs = {}
    for variant in args.variants:
        runs[variant] = train_or_reuse(TrainConfig(
            variant=variant, dataset="fashion-mnist", data_dir=args.data_dir, device=args.device,
            out=str(Path(args.runs) / f"{variant}-e{args.epochs}-s{args.seed}"), epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        ))
        row = measure(runs[variant], data, nll_samples=args.nll_samples, sample_quality=args.sample_quality,
                      device=args.device, nll_examples=args.nll_examples)
        row.update(variant=variant, epochs=args.epochs, command=command)
        print(json.dumps(row), flush=True)
        record["results"][f"{variant}@{args.epochs}"] = row
        record["setup"] = {
            "dataset": "fashion-mnist, binarized afresh per batch; test set binarized once (seed 0)",
            "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "optimizer": "Adam",
            "torch": torch.__version__, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, device {args.device}",
        }
        store.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        write_table(record["results"], results_dir / "quality.md")
    if args.compare:
        write_comparison(args.compare, runs, record["results"], data, args)


if __name__ == "__main__":
    main()
