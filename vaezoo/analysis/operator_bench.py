"""`vaezoo bench`: time reparameterize (forward, backward, both) for the eager reference, torch.compile of the
reference and the fused kernels, on every device present, and report ratios (and GB/s on GPUs)."""
from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import sys
from collections.abc import Callable
from datetime import datetime, timezone

import torch

from vaezoo.errors import VaezooError
from vaezoo.ops import backends, reparameterize
from vaezoo.ops.reference import reference_reparameterize

SIZES: dict[str, tuple[int, ...]] = {
    "128x32": (128, 32),
    "512x256": (512, 256),
    "1024x1024": (1024, 1024),
    "2048x2048": (2048, 2048),
    "4096x4096": (4096, 4096),
    "64x4x32x32": (64, 4, 32, 32),
}
QUICK_SIZES = ("128x32", "1024x1024", "64x4x32x32")
IMPLEMENTATIONS = ("reference", "compiled", "fused")
PASSES = ("forward", "backward", "forward+backward")
# tensors of N elements that each pass reads and writes: forward mu, logvar -> z; backward mu, logvar, grad_z
# -> grad_mu, grad_logvar (the per-example vectors are negligible)
TRAFFIC = {"forward": 3, "backward": 5, "forward+backward": 8}


def _reference(mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z, kl, _ = reference_reparameterize(mu, logvar, None, None, None, None)
    return z, kl


def _fused(mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return reparameterize(mu, logvar, backend="fused")


@functools.cache
def implementation(name: str) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """(mu, logvar) -> (z, kl) for one of IMPLEMENTATIONS ("compiled" is compiled once, per shape on first use)."""
    if name == "compiled":
        return torch.compile(_reference, fullgraph=True, dynamic=False)
    return {"reference": _reference, "fused": _fused}[name]


def make_pass(impl: str, pass_name: str, shape: tuple[int, ...], device: str, dtype: torch.dtype) -> Callable[[], object]:
    """A zero-argument callable that runs one pass of one implementation on fresh inputs of this shape."""
    fn = implementation(impl)
    gen = torch.Generator(device="cpu").manual_seed(0)
    mu, logvar, grad_z = (torch.randn(shape, generator=gen).to(device, dtype) for _ in range(3))
    grad_kl = torch.randn(shape[0], generator=gen).to(device, dtype)
    inputs = (mu.requires_grad_(), logvar.requires_grad_())
    if pass_name == "forward":
        return lambda: fn(*inputs)
    if pass_name == "forward+backward":
        return lambda: torch.autograd.grad(fn(*inputs), inputs, (grad_z, grad_kl))
    outputs = fn(*inputs)
    return lambda: torch.autograd.grad(outputs, inputs, (grad_z, grad_kl), retain_graph=True)


def measure(fn: Callable[[], object], min_run_time: float) -> float:
    """Median seconds per call, after a warm-up (which also compiles), synchronizing CUDA."""
    for _ in range(3):
        fn()
    from torch.utils import (
        benchmark,  # imported here: it imports cpp_extension, which warns on CPU-only machines
    )

    return benchmark.Timer("fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median


def copy_bandwidth(device: str, min_run_time: float) -> float:
    """GB/s of a device-to-device copy of 256 MiB (bytes read plus bytes written)."""
    src = torch.empty(64 * 2**20, device=device)
    dst = torch.empty_like(src)
    seconds = measure(lambda: dst.copy_(src), min_run_time)
    return 2 * src.numel() * src.element_size() / seconds / 1e9


def run_benchmarks(
    devices: list[str],
    sizes: list[str],
    dtype: torch.dtype,
    min_run_time: float,
    rounds: int,
    report: Callable[[dict], None] = lambda row: None,
) -> dict:
    """All timings, as the JSON document that `vaezoo bench --json` writes; report(row) sees each row at once."""
    rows, copies = [], {}
    for device in devices:
        built = backends().get(torch.device(device).type, [])
        impls = [i for i in IMPLEMENTATIONS if i != "fused" or "fused" in built]
        if device != "cpu":
            copies[device] = copy_bandwidth(device, min_run_time)
        for size in sizes:
            shape = SIZES[size]
            torch._dynamo.reset()  # a fresh recompile budget for the compiled reference at each size
            for pass_name in PASSES:
                calls = {impl: make_pass(impl, pass_name, shape, device, dtype) for impl in impls}
                # the best of interleaved rounds: implementations see the same machine load
                best = {impl: math.inf for impl in impls}
                for _ in range(rounds):
                    for impl, fn in calls.items():
                        best[impl] = min(best[impl], measure(fn, min_run_time))
                row = {"device": device, "size": size, "pass": pass_name, "dtype": str(dtype).removeprefix("torch.")}
                row.update({f"{impl}_ms": best[impl] * 1e3 for impl in impls})
                if "fused" in best:
                    row["reference_over_fused"] = best["reference"] / best["fused"]
                    row["compiled_over_fused"] = best["compiled"] / best["fused"]
                    if device in copies:
                        traffic = TRAFFIC[pass_name] * math.prod(shape) * dtype.itemsize
                        row["fused_gbps"] = traffic / best["fused"] / 1e9
                        row["fused_fraction_of_copy"] = row["fused_gbps"] / copies[device]
                rows.append(row)
                report(row)
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "gpus": {d: torch.cuda.get_device_name(d) for d in devices if d != "cpu"},
        },
        "copy_gbps": copies,
        "rows": rows,
    }


def format_row(row: dict) -> str:
    """One line of the table."""
    cells = [f"{row['device']:<6}", f"{row['size']:<11}", f"{row['pass']:<16}"]
    cells += [f"{row[f'{impl}_ms']:>10.3f}" if f"{impl}_ms" in row else f"{'-':>10}" for impl in IMPLEMENTATIONS]
    for key in ("reference_over_fused", "compiled_over_fused"):
        cells.append(f"{row[key]:>8.2f}x" if key in row else f"{'-':>9}")
    if "fused_gbps" in row:
        cells.append(f"{row['fused_gbps']:>8.1f} GB/s ({row['fused_fraction_of_copy']:.0%} of copy)")
    return " ".join(cells)


HEADER = " ".join(
    [f"{'device':<6}", f"{'size':<11}", f"{'pass':<16}"]
    + [f"{impl + ' ms':>10}" for impl in IMPLEMENTATIONS]
    + [f"{'ref/fused':>9}", f"{'comp/fused':>9}"]
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `vaezoo bench`."""
    parser.add_argument(
        "--json", nargs="?", const="-", metavar="PATH",
        help="also write the results as JSON to PATH (to stdout, instead of the table, when PATH is left out)",
    )
    parser.add_argument("--quick", action="store_true", help=f"a short run: sizes {', '.join(QUICK_SIZES)}, one round")
    parser.add_argument("--size", action="append", choices=list(SIZES), help="a size to run (repeatable; default: all)")
    parser.add_argument(
        "--device", action="append", help="a device to run on (repeatable; default: cpu and every CUDA device)"
    )
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "float16", "bfloat16"])
    parser.add_argument("--min-run-time", type=float, default=None, help="seconds per measurement (default 0.5)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds, best kept (default 3)")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; print the table (stdout) and write JSON where asked. Returns the exit status."""
    devices = args.device or ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    for device in devices:
        try:
            kind = torch.device(device)
        except RuntimeError as err:
            raise VaezooError(f"--device {device!r} is not a device PyTorch knows ({err})") from None
        if kind.type not in ("cpu", "cuda"):
            raise VaezooError(f"--device must be cpu or cuda[:N], got {device!r}")
        if kind.type == "cuda" and (kind.index or 0) >= torch.cuda.device_count():
            raise VaezooError(f"--device {device}: PyTorch sees {torch.cuda.device_count()} CUDA GPU(s) here")
    sizes = args.size or list(QUICK_SIZES if args.quick else SIZES)
    min_run_time = args.min_run_time or (0.2 if args.quick else 0.5)
    rounds = args.rounds or (1 if args.quick else 3)
    table = sys.stderr if args.json == "-" else sys.stdout  # with JSON on stdout, the table goes to stderr
    print(HEADER, file=table, flush=True)
    result = run_benchmarks(
        devices, sizes, getattr(torch, args.dtype), min_run_time, rounds,
        report=lambda row: print(format_row(row), file=table, flush=True),
    )
    for device, gbps in result["copy_gbps"].items():
        print(f"{device} device-to-device copy: {gbps:.1f} GB/s", file=table)
    if args.json == "-":
        print(json.dumps(result, indent=2))
    elif args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0
