"""Peak memory and time of tiled against one-pass encoding and decoding with vaezoo's ldm parts (CPU, 1 thread).

    PYTHONPATH=. python benchmarks/ldm_tiling.py [--sizes 256 512] [--tile 128] [--overlap 32]

The model is an SD-shaped autoencoder-kl at a quarter of Stable Diffusion's widths (block_out_channels 32, 64,
128, 128; two blocks per stage; mid-block attention; f = 8; random weights: memory and time do not depend on
them). Each measurement runs in a fresh process, so that one allocation's memory is not reused by the next; a
thread samples the process's resident memory every millisecond, and the figure is the peak above what the
process held just before the call (model and input loaded). Writes benchmarks/results/ldm_tiling.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SETTINGS = {"block_out_channels": [32, 64, 128, 128], "layers_per_block": 2, "norm_num_groups": 32}


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(op: str, size: int, tile: int | None, overlap: int) -> dict:
    """One measurement in this process: the call's peak resident memory above the start, and its time."""
    import torch

    import vaezoo
    from vaezoo.components.ldm.tiling import tiled_decode, tiled_encode

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = vaezoo.create_model("autoencoder-kl", input_shape=(3, 64, 64), **SETTINGS).eval()
    f = model.encoder.factor
    x = torch.rand(1, 3, size, size) if op == "encode" else torch.randn(1, 4, size // f, size // f)
    if tile is None:
        call = (lambda: model.encoder.spatial(x)[0]) if op == "encode" else (lambda: model.decoder.spatial(x))
    elif op == "encode":
        call = lambda: tiled_encode(model.encoder, x, tile, overlap)[0]  # noqa: E731
    else:
        call = lambda: tiled_decode(model.decoder, x, tile, overlap)  # noqa: E731
    peak, running = [resident_mb()], [True]
    start_mb = peak[0]

    def sample() -> None:
        while running[0]:
            peak[0] = max(peak[0], resident_mb())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    began = time.perf_counter()
    with torch.no_grad():
        out = call()
    seconds = time.perf_counter() - began
    running[0] = False
    sampler.join()
    return {"op": op, "size": size, "tile": tile, "overlap": overlap if tile else None,
            "peak_mb": round(peak[0] - start_mb, 1), "seconds": round(seconds, 2), "output": list(out.shape)}


def measure(op: str, size: int, tile: int | None, overlap: int) -> dict:
    argv = [sys.executable, __file__, "--worker", op, str(size), str(tile or 0), str(overlap)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict], tile: int, overlap: int) -> str:
    sizes = " ".join(str(s) for s in sorted({r["size"] for r in rows}))
    lines = [
        "# Tiled encoding and decoding: peak memory saved (CPU, 1 thread)", "",
        f"`PYTHONPATH=. python benchmarks/ldm_tiling.py --sizes {sizes} --tile {tile} --overlap {overlap}` — "
        f"autoencoder-kl with block_out_channels "
        f"{SETTINGS['block_out_channels']}, layers_per_block {SETTINGS['layers_per_block']}, mid-block attention, "
        f"f = 8; one image; tiles of {tile} pixels overlapping by {overlap}. Peak resident memory above the "
        "model and input, sampled every millisecond, each measurement in a fresh process.", "",
        "| op | image | one pass: peak MB | tiled: peak MB | saved | one pass: s | tiled: s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for op in ("encode", "decode"):
        for size in sorted({r["size"] for r in rows}):
            full = next(r for r in rows if r["op"] == op and r["size"] == size and r["tile"] is None)
            tiled = next(r for r in rows if r["op"] == op and r["size"] == size and r["tile"] is not None)
            saved = 1 - tiled["peak_mb"] / full["peak_mb"] if full["peak_mb"] > 0 else float("nan")
            lines.append(f"| {op} | {size}x{size} | {full['peak_mb']:,.0f} | {tiled['peak_mb']:,.0f} | {saved:.0%} | "
                         f"{full['seconds']:.2f} | {tiled['seconds']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--worker", nargs=4, metavar=("OP", "SIZE", "TILE", "OVERLAP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        op, size, tile, overlap = args.worker
        print(json.dumps(worker(op, int(size), int(tile) or None, int(overlap))))
        return
    rows = [measure(op, size, tile, args.overlap) for op in ("encode", "decode") for size in args.sizes
            for tile in (None, args.tile)]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ldm_tiling.json").write_text(json.dumps({"settings": SETTINGS, "rows": rows}, indent=2) + "\n")
    (RESULTS / "ldm_tiling.md").write_text(table(rows, args.tile, args.overlap))
    print(table(rows, args.tile, args.overlap))


if __name__ == "__main__":
    main()
