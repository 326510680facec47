"""The sampler table: for trained runs on Fashion-MNIST, fit each sampler that can model the run's codes and
score its decoded draws (FID, precision and recall on vaezoo's Fashion-MNIST classifier features) against the
model's own prior.

    OMP_NUM_THREADS=1 python -m vaezoo train vae-conv --dataset fashion-mnist --epochs 3 --out RUNS/vae-conv
    (likewise vq-vae-conv, ae-conv, rae-conv)
    OMP_NUM_THREADS=1 python benchmarks/samplers/run.py --runs RUNS --samples 5000

A sampler already fitted to a run (RUN/samplers/NAME.safetensors, checked against the run's weights) is
scored again, not refitted. Rows are merged into benchmarks/results/samplers.json (keyed by run and sampler)
and samplers.md holds the table; each row says whether its sampler beats the prior's FID.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

import vaezoo
from vaezoo.analysis.eval_extras import sample_quality_scores
from vaezoo.analysis.run_held_out import load_run_held_out
from vaezoo.analysis.samplers import fit_sampler, load_sampler
from vaezoo.errors import CombinationError, RunDirError
from vaezoo.runs.directory import read_config, read_metrics

RESULTS = Path(__file__).resolve().parents[1] / "results"
SAMPLERS = ["prior", "gmm", "two-stage", "flow", "pixelcnn"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="a folder of finished runs, one per variant")
    parser.add_argument("--variants", nargs="+", default=["vae-conv", "vq-vae-conv", "ae-conv", "rae-conv"])
    parser.add_argument("--samplers", nargs="+", default=SAMPLERS)
    parser.add_argument("--samples", type=int, default=5000, help="generated and held-out images compared")
    parser.add_argument("--seed", type=int, default=0, help="the samplers' fitting seed (default 0)")
    parser.add_argument("--results", default=str(RESULTS), help="where samplers.json and samplers.md go")
    return parser.parse_args()


def write_table(results: dict[str, dict], path: Path) -> None:
    lines = ["# Samplers on Fashion-MNIST: decoded draws of each sampler against the model's prior", "",
             "| variant | epochs | sampler | fitted to | fit epochs | fit (s) | FID | precision | recall | "
             "beats the prior's FID |", "|---|---:|---|---|---:|---:|---:|---:|---:|---|"]
    variants = sorted({r["variant"] for r in results.values()})
    for variant in variants:
        rows = [r for r in results.values() if r["variant"] == variant]
        prior = next((r for r in rows if r["sampler"] == "prior"), None)
        for r in sorted(rows, key=lambda r: SAMPLERS.index(r["sampler"]) if r["sampler"] in SAMPLERS else 99):
            if "refused" in r:
                continue
            beats = "-" if r["sampler"] == "prior" or prior is None else ("yes" if r["fid"] < prior["fid"] else "no")
            fit = r.get("fit") or {}
            lines.append(
                f"| {variant} | {r['epochs']} | {r['sampler']} | {fit.get('codes', '-')} | {fit.get('epochs', '-')} | "
                f"{fit.get('seconds', '-')} | {r['fid']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | {beats} |")
    refused = sorted({f"{r['sampler']} for {r['variant']}: {r['refused']}" for r in results.values() if "refused" in r})
    lines += [""] + [f"Refused: {line}." for line in refused]
    lines += ["", "Commands:"] + [f"- `{c}`" for c in sorted({r["command"] for r in results.values()})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    args = parse_args()
    results_dir = Path(args.results)
    store = results_dir / "samplers.json"
    record = json.loads(store.read_text()) if store.exists() else {"results": {}}
    command = "python benchmarks/samplers/run.py " + " ".join(sys.argv[1:])
    for variant in args.variants:
        run = Path(args.runs) / variant
        epochs = max(m["epoch"] for m in read_metrics(run))
        model = vaezoo.load_model(run)
        data, held_out = load_run_held_out(run, model)
        for name in args.samplers:
            row = {"variant": variant, "epochs": epochs, "sampler": name, "command": command,
                   "train_command": read_config(run)["train"]}
            try:
                sampler = load_sampler(run, name, model)
            except CombinationError as exc:
                row["refused"] = str(exc).partition(": ")[2]
                record["results"][f"{variant}/{name}"] = row
                store.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
                continue
            except RunDirError:  # not fitted yet
                start = time.perf_counter()
                _, fitted = fit_sampler(run, name, seed=args.seed)
                row["fit"] = {"codes": fitted["codes"], "epochs": fitted["epochs"], "figures": fitted["fit"],
                              "seconds": round(time.perf_counter() - start, 1)}
                sampler = load_sampler(run, name, model)
            quality = sample_quality_scores(model, data, held_out, samples=args.samples, sampler=sampler,
                                            sampler_name=name)
            row.update({k: quality[k] for k in ("samples", "fid", "kid", "precision", "recall", "sample_sharpness")})
            previous = record["results"].get(f"{variant}/{name}", {})
            row.setdefault("fit", previous.get("fit"))
            print(json.dumps(row), flush=True)
            record["results"][f"{variant}/{name}"] = row
            record["setup"] = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                               "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)"}
            store.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            write_table(record["results"], results_dir / "samplers.md")


if __name__ == "__main__":
    main()
