"""The lecture's comparison made concrete: vae-conv and vae-gan-conv trained alike on Fashion-MNIST, their
samples side by side, with a sharpness figure, the reconstruction error and the held-out bound.

    python benchmarks/quality/vae_vs_gan.py --device cuda --epochs 10

Sharpness is the mean variance of the Laplacian of each image (a standard blur measure: higher is sharper),
next to the same figure for real held-out images. Writes benchmarks/results/vae-vs-gan.{json,md} and
vae-vs-gan.png (left: vae-conv samples, middle: vae-gan-conv samples, right: real images).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import vaezoo
from vaezoo.analysis import evaluate
from vaezoo.analysis import pictures as viz
from vaezoo.data.datasets import load_dataset
from vaezoo.data.held_out import held_out_set
from vaezoo.training.config import TrainConfig
from vaezoo.training.trainer import train

RESULTS = Path(__file__).resolve().parents[1] / "results"
LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def sharpness(images: torch.Tensor) -> float:
    """Mean over images of the variance of their Laplacian (per channel)."""
    flat = images.float().flatten(0, 1).unsqueeze(1)
    return F.conv2d(flat, LAPLACIAN.to(flat)).flatten(1).var(dim=1).mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dataset", default="fashion-mnist", help="dataset (default fashion-mnist)")
    parser.add_argument("--data-dir", help="the dataset's files (fashion-mnist: default where Debian puts them)")
    parser.add_argument("--runs", default="runs/vae-vs-gan")
    parser.add_argument("--nll-samples", type=int, default=100)
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args()
    data = load_dataset(args.dataset, args.data_dir)
    rows, grids = {}, []
    for variant in ("vae-conv", "vae-gan-conv"):
        run = Path(args.runs) / variant
        start = time.perf_counter()
        train(TrainConfig(variant=variant, dataset=args.dataset, data_dir=args.data_dir, out=str(run),
                          epochs=args.epochs, device=args.device), progress=False)
        minutes = (time.perf_counter() - start) / 60
        model = vaezoo.load_model(run, device=args.device)
        held_out, _ = held_out_set(data, model)
        torch.manual_seed(0)
        samples = model.sample(1000).cpu()
        x = held_out[:1000].to(args.device)
        recon = model.reconstruct(x).cpu()
        summary = evaluate.summary(model, held_out.to(args.device), nll_samples=args.nll_samples)
        rows[variant] = {
            "sharpness": sharpness(samples), "reconstruction_mse": F.mse_loss(recon, x.cpu()).item(),
            "elbo": summary["elbo"], "nll": summary.get("nll"), "train_minutes": round(minutes, 2),
        }
        grids.append(samples[:64])
        print(variant, rows[variant], flush=True)
    real = data.test_x[:1000]
    rows["real held-out images"] = {"sharpness": sharpness(real)}
    grids.append(real[:64])
    results = Path(args.results)
    panels = [viz.grid_array(g, nrow=8) for g in grids]  # three 8x8 grids, with a white gap between them
    gap = np.full((panels[0].shape[0], 16, *panels[0].shape[2:]), 255, dtype=np.uint8)
    Image.fromarray(np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)).save(results / "vae-vs-gan.png")
    record = {"command": "python benchmarks/quality/vae_vs_gan.py " + " ".join(sys.argv[1:]), "epochs": args.epochs,
              "dataset": args.dataset,
              "device": str(torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"), "rows": rows}
    (results / "vae-vs-gan.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"# vae-conv against vae-gan-conv on {args.dataset} ({args.epochs} epochs each, {record['device']})", "",
             f"`{record['command']}`. ![samples: vae-conv, vae-gan-conv, real](vae-vs-gan.png)", "",
             "| model | sample sharpness (Laplacian variance) | reconstruction MSE | held-out ELBO (nats) | "
             f"IW-NLL, K={args.nll_samples} (nats) | train minutes |", "|---|---:|---:|---:|---:|---:|"]
    for name, row in rows.items():
        cells = [f"{row[k]:.4f}" if isinstance(row.get(k), float) else "" for k in ("sharpness", "reconstruction_mse")]
        cells += [f"{row[k]:.2f}" if isinstance(row.get(k), float) else "" for k in ("elbo", "nll", "train_minutes")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Sharpness is computed on 1,000 decoded prior samples (the likelihood's mean) and on 1,000 real "
              "held-out images; the decoded samples are the likelihood's mean, as `vaezoo sample` shows them."]
    (results / "vae-vs-gan.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
