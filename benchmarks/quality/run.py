"""The zoo's quality table: train density-model variants on dynamically binarized Fashion-MNIST for a fixed
budget, then report the held-out ELBO, the importance-weighted NLL, active units and time.

    python benchmarks/quality/run.py                       # every variant below, 50 epochs each
    python benchmarks/quality/run.py --variants vae-mlp --epochs 5
    python benchmarks/quality/run.py --sample-quality      # adds FID, precision and recall columns

Each variant trains through `vaezoo.training.trainer` into RUNS/VARIANT (a finished run there is evaluated again, not
retrained); results are merged into benchmarks/results/quality.json and the table quality.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import vaezoo
from vaezoo.analysis.evaluate import active_units, elbo, importance_weighted_nll
from vaezoo.data.datasets import load_dataset
from vaezoo.data.held_out import held_out_set
from vaezoo.runs.directory import read_metrics
from vaezoo.training.config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from finished_runs import train_or_reuse  # noqa: E402 - the benchmarks' shared helper

DENSITY_VARIANTS = ["vae-mlp", "hvae-mlp", "vamp-vae-mlp", "iwae-mlp", "mog-vae-mlp"]
RESULTS = Path(__file__).resolve().parents[1] / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=DENSITY_VARIANTS, help="variants to train and evaluate")
    parser.add_argument("--epochs", type=int, default=50, help="training budget in epochs (default 50)")
    parser.add_argument("--batch-size", type=int, default=128, help="examples per step (default 128)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--nll-samples", type=int, default=1000, help="importance samples K (default 1000)")
    parser.add_argument("--nll-batch", type=int, default=10, help="test examples per IW-NLL batch (default 10)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice); 1 on a shared "
                        "machine, where threads spinning on busy cores run many times slower")
    parser.add_argument("--sample-quality", action="store_true",
                        help="also FID, KID and precision/recall of 10,000 samples on vaezoo's Fashion-MNIST "
                        "classifier features (comparable within vaezoo, not with Inception-based figures)")
    parser.add_argument("--runs", default="runs/quality", help="where the run directories go")
    parser.add_argument("--results", default=str(RESULTS), help="where quality.json and quality.md go")
    return parser.parse_args()


def measure(variant: str, run: Path, args: argparse.Namespace) -> dict[str, object]:
    """Held-out ELBO, IW-NLL, active units and times of one finished run."""
    data = load_dataset("fashion-mnist")
    model = vaezoo.load_model(run)
    held_out, _ = held_out_set(data, model)
    metrics = read_metrics(run)
    start = time.perf_counter()
    nll = importance_weighted_nll(model, held_out, samples=args.nll_samples, batch_size=args.nll_batch)
    quality = {}
    if args.sample_quality:
        from vaezoo.analysis.learned import sample_quality_scores

        q = sample_quality_scores(model, data, samples=len(data.test_x))
        quality = {"fid": q["fid"], "kid": q["kid"], "precision": q["precision"], "recall": q["recall"],
                   "classifier_test_accuracy": q["features"]["test_accuracy"]}
    return {**quality,
        "variant": variant,
        "epochs": args.epochs,
        "elbo": elbo(model, held_out)["elbo"],
        "iw_nll": nll,
        "nll_samples": args.nll_samples,
        "active_units": active_units(model, held_out),
        "latent_dim": model.latent_dim,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(sum(m["seconds"] for m in metrics), 1),
        "median_epoch_seconds": round(statistics.median(m["seconds"] for m in metrics), 2),
        "threads": torch.get_num_threads(),
        "nll_seconds": round(time.perf_counter() - start, 1),
    }


def write_table(results: dict[str, dict[str, object]], path: Path) -> None:
    """quality.md: one row per variant, best NLL first."""
    rows = sorted(results.values(), key=lambda r: r["iw_nll"])
    quality = any("fid" in r for r in rows)  # sample-quality columns once any row has them
    lines = [
        "| variant | epochs | held-out ELBO (nats) | IW-NLL (nats) | K | active units | train time (min) "
        "| median epoch (s) | threads |" + (" FID | precision | recall |" if quality else ""),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if quality else ""),
    ]
    for r in rows:
        extra = ""
        if quality:
            extra = (f" {r['fid']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} |" if "fid" in r else " - | - | - |")
        lines.append(
            f"| {r['variant']} | {r['epochs']} | {r['elbo']:.2f} | {r['iw_nll']:.2f} | {r['nll_samples']} | "
            f"{r['active_units']}/{r['latent_dim']} | {r['train_seconds'] / 60:.1f} | "
            f"{r['median_epoch_seconds']:.1f} | {r['threads']} |" + extra
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results_dir = Path(args.results)
    results_dir.mkdir(parents=True, exist_ok=True)
    store = results_dir / "quality.json"
    record = json.loads(store.read_text()) if store.exists() else {"results": {}}
    for variant in args.variants:
        run = Path(args.runs) / f"{variant}-e{args.epochs}-s{args.seed}"
        run = train_or_reuse(TrainConfig(
            variant=variant, dataset="fashion-mnist", out=str(run), epochs=args.epochs, batch_size=args.batch_size,
            lr=args.lr, seed=args.seed,
        ))
        result = measure(variant, run, args)
        print(json.dumps(result), flush=True)
        record["results"][variant] = result
        record["setup"] = {
            "dataset": "fashion-mnist, binarized afresh per batch; test set binarized once (seed 0)",
            "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "optimizer": "Adam",
            "torch": torch.__version__, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        }
        store.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        write_table(record["results"], results_dir / "quality.md")


if __name__ == "__main__":
    main()
