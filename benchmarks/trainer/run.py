"""What the trainer costs: per-epoch time of `vaezoo train` against a hand-written loop (and pythae's trainer),
interleaved in one run on one thread, as paired ratios per round.

    python benchmarks/trainer/run.py --rounds 7 [--pythae-python /tmp/venv-pythae/bin/python]

Each round times, in a rotating order: the hand-written VAE in a plain loop (hand_loop.py), the vaezoo
vae-mlp model in the same plain loop, `vaezoo train vae-mlp` for one epoch (its training pass, the `seconds`
of metrics.jsonl; and its wall time with evaluation, checkpoint and pictures), and, with --pythae-python,
pythae 0.1.2's trainer on the same networks in its own environment. All on Fashion-MNIST (60,000 images,
batch 128, Adam 1e-3). Writes benchmarks/results/trainer.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import vaezoo
from vaezoo.data.datasets import load_dataset
from vaezoo.runs.directory import read_metrics
from vaezoo.training.config import TrainConfig
from vaezoo.training.trainer import train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hand_loop import HandVAE, hand_epoch  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"


def vaezoo_epoch(out: Path, batch_size: int, seed: int) -> tuple[float, float]:
    """One epoch of `vaezoo train vae-mlp`: (its training pass in seconds, its wall time)."""
    start = time.perf_counter()
    run = train(TrainConfig(variant="vae-mlp", dataset="fashion-mnist", out=str(out), epochs=1,
                            batch_size=batch_size, seed=seed), progress=False)
    wall = time.perf_counter() - start
    return read_metrics(run)[-1]["seconds"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--pythae-python", help="python of an environment with pythae==0.1.2 (kept out of vaezoo's)")
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("fashion-mnist")
    generator = torch.Generator().manual_seed(0)
    tmp = Path(tempfile.mkdtemp(prefix="vaezoo-trainer-bench-"))
    static = tmp / "train_x.npy"
    np.save(static, torch.bernoulli(data.train_x, generator=torch.Generator().manual_seed(1)).numpy())

    def hand() -> dict[str, float]:
        torch.manual_seed(0)
        model = HandVAE()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        return {"seconds": hand_epoch(model, HandVAE.loss, optimizer, data.train_x, args.batch_size, generator)[0]}

    def vaezoo_model_plain() -> dict[str, float]:
        torch.manual_seed(0)
        model = vaezoo.create_model("vae-mlp", input_shape=(1, 28, 28))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        seconds = hand_epoch(model, lambda m, x: m(x).loss, optimizer, data.train_x, args.batch_size, generator)[0]
        return {"seconds": seconds}

    def vaezoo_cli(round_index: int) -> dict[str, float]:
        seconds, wall = vaezoo_epoch(tmp / f"run-{round_index}", args.batch_size, seed=0)
        return {"seconds": seconds, "wall": wall}

    def pythae() -> dict[str, float]:
        result = subprocess.run([args.pythae_python, str(Path(__file__).with_name("pythae_epoch.py")), "--data",
                                 str(static), "--batch-size", str(args.batch_size)],
                                capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        return json.loads(result.stdout.strip().splitlines()[-1])

    contenders = {"hand-written loop": lambda r: hand(), "vaezoo model, plain loop": lambda r: vaezoo_model_plain(),
                  "vaezoo train": vaezoo_cli}
    if args.pythae_python:
        contenders["pythae trainer"] = lambda r: pythae()
    names = list(contenders)
    rounds: list[dict[str, dict[str, float]]] = []
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        timings = {name: contenders[name](r) for name in order}
        rounds.append(timings)
        print(f"round {r + 1}: " + ", ".join(f"{n} {t['seconds']:.2f}s" for n, t in timings.items()), flush=True)

    def ratios(name: str, baseline: str = "hand-written loop") -> list[float]:
        return [t[name]["seconds"] / t[baseline]["seconds"] for t in rounds]

    summary = {
        name: {
            "median_seconds": statistics.median(t[name]["seconds"] for t in rounds),
            "ratio_to_hand_median": statistics.median(ratios(name)),
            "ratio_to_hand_min": min(ratios(name)), "ratio_to_hand_max": max(ratios(name)),
            "ratio_to_plain_median": statistics.median(ratios(name, "vaezoo model, plain loop")),
            "ratio_to_plain_min": min(ratios(name, "vaezoo model, plain loop")),
            "ratio_to_plain_max": max(ratios(name, "vaezoo model, plain loop")),
            **({"median_wall": statistics.median(t[name]["wall"] for t in rounds)} if "wall" in rounds[0][name] else {}),
        }
        for name in names
    }
    record = {
        "command": "python benchmarks/trainer/run.py " + " ".join(sys.argv[1:]),
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": 1, "torch": torch.__version__},
        "rounds": rounds, "summary": summary,
    }
    results = Path(args.results)
    (results / "trainer.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        "# Trainer overhead: one epoch of Fashion-MNIST, vae-mlp (784-400-400-20), batch 128, Adam 1e-3, 1 thread",
        "", f"`{record['command']}` — {args.rounds} interleaved rounds; ratios are paired per round against the "
        "hand-written loop and against the vaezoo model stepped in that same plain loop (median, and min–max over "
        "rounds): the first is what vaezoo costs in all, the second what its trainer adds to a plain loop.", "",
        "| contender | median epoch (s) | ratio to hand-written (median) | min–max | ratio to the vaezoo model in "
        "the plain loop (median) | min–max | median wall (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in summary.items():
        wall = f"{s['median_wall']:.2f}" if "median_wall" in s else ""
        lines.append(f"| {name} | {s['median_seconds']:.2f} | {s['ratio_to_hand_median']:.3f} | "
                     f"{s['ratio_to_hand_min']:.3f}–{s['ratio_to_hand_max']:.3f} | {s['ratio_to_plain_median']:.3f} | "
                     f"{s['ratio_to_plain_min']:.3f}–{s['ratio_to_plain_max']:.3f} | {wall} |")
    lines += ["", "The epoch time of `vaezoo train` is its training pass (metrics.jsonl `seconds`); its wall time adds "
              "the held-out evaluation, the checkpoint, the pictures and the report. pythae trains on one static "
              "binarization (it has no per-batch binarization); the others binarize each batch. The plain loops step "
              "torch's default Adam (its one-tensor-at-a-time path on the CPU) as a user's loop would; `vaezoo "
              "train` steps the fused Adam and checks the step's finiteness with one sum per gradient, which is "
              "where it gains. The machine is shared, so single rounds vary by ±15%: read the paired medians."]
    (results / "trainer.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
