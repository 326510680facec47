"""`vaezoo bench`: time reparameterize on every device present, in two tables. The per-call table: small sizes,
where a call's fixed cost is most of its time, the fused operator against torch.add on the same tensors (about
one kernel's launch and dispatch) and the eager reference. The size table: forward, backward and both for the
eager reference, torch.compile of the reference and the fused kernels, flat and spatial (B x C x H x W)
latents, with ratios (and GB/s on GPUs)."""
from __future__ import annotations

import argparse
import functools
import json
import math
import platform
import statistics
import sys
import time
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
    # spatial latents of latent-diffusion autoencoders (4 channels; 16 in later models), batch 8
    "8x4x32x32": (8, 4, 32, 32),
    "8x4x64x64": (8, 4, 64, 64),
    "8x16x64x64": (8, 16, 64, 64),
}
# the same spatial latents in channels_last memory (a convolution's usual output): non-contiguous inputs
CHANNELS_LAST = {f"{name}-cl": name for name in ("8x4x32x32", "8x4x64x64", "8x16x64x64")}
SIZE_NAMES = [*SIZES, *CHANNELS_LAST]
QUICK_SIZES = ("128x32", "1024x1024", "8x4x64x64")
PARTS = ("per-call", "sizes")
PER_CALL_SIZES: dict[str, tuple[int, ...]] = {"1x1": (1, 1), "8x4": (8, 4), "128x32": (128, 32)}
PER_CALL_CONTENDERS = ("fused", "add", "reference")
PER_CALL_PASSES = ("forward", "forward+backward")
BLOCK_SECONDS = 0.005  # one timed block of calls in the per-call table
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


def _inputs(shape: tuple[int, ...], device: str, dtype: torch.dtype, channels_last: bool = False):
    """mu, logvar, grad_z (shaped like mu) and grad_kl, the same for every contender (seeded)."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    mu, logvar, grad_z = (
        torch.randn(shape, generator=gen).to(device, dtype).contiguous(memory_format=layout) for _ in range(3)
    )
    return mu, logvar, grad_z, torch.randn(shape[0], generator=gen).to(device, dtype)


def make_pass(impl: str, pass_name: str, size: str, device: str, dtype: torch.dtype) -> Callable[[], object]:
    """A zero-argument callable that runs one pass of one implementation on fresh inputs of this size (a name
    of SIZE_NAMES: a name of CHANNELS_LAST is its spatial size in channels_last memory)."""
    fn = implementation(impl)
    shape = SIZES[CHANNELS_LAST.get(size, size)]
    mu, logvar, grad_z, grad_kl = _inputs(shape, device, dtype, channels_last=size in CHANNELS_LAST)
    inputs = (mu.requires_grad_(), logvar.requires_grad_())
    if pass_name == "forward":
        return lambda: fn(*inputs)
    if pass_name == "forward+backward":
        return lambda: torch.autograd.grad(fn(*inputs), inputs, (grad_z, grad_kl))
    outputs = fn(*inputs)
    return lambda: torch.autograd.grad(outputs, inputs, (grad_z, grad_kl), retain_graph=True)


def cpu_clock() -> Callable[[], float]:
    """The clock of CPU timings: with one torch thread the process's CPU time, so that time spent waiting while
    other work holds a shared machine's cores does not count; with several, wall time."""
    return time.process_time if torch.get_num_threads() == 1 else time.perf_counter


def measure(fn: Callable[[], object], min_run_time: float, device: str = "cpu") -> float:
    """Median seconds per call, after a warm-up (which also compiles); on a GPU, wall time with the device
    synchronized, on the CPU cpu_clock()."""
    for _ in range(3):
        fn()
    from torch.utils import (
        benchmark,  # imported here: it imports cpp_extension, which warns on CPU-only machines
    )

    clock = {} if torch.device(device).type == "cuda" else {"timer": cpu_clock()}
    return benchmark.Timer("fn()", globals={"fn": fn}, **clock).blocked_autorange(min_run_time=min_run_time).median


def per_call_pass(contender: str, pass_name: str, shape: tuple[int, ...], device: str, dtype: torch.dtype):
    """A zero-argument callable: one call of a contender of the per-call table. forward runs on inputs that
    need no gradient (an inference call); forward+backward on inputs that do, then torch.autograd.grad."""
    mu, logvar, grad_z, grad_kl = _inputs(shape, device, dtype)
    if contender == "add":
        fn, cotangents = (lambda m, lv: (torch.add(m, lv),)), (grad_z,)
    else:
        fn, cotangents = implementation(contender), (grad_z, grad_kl)
    if pass_name == "forward":
        return lambda: fn(mu, logvar)
    inputs = (mu.requires_grad_(), logvar.requires_grad_())
    return lambda: torch.autograd.grad(fn(*inputs), inputs, cotangents)


def interleaved_blocks(
    calls: dict[str, Callable[[], object]], seconds: float, sync: Callable[[], None], clock: Callable[[], float]
) -> dict[str, list[float]]:
    """Per-call seconds of each callable in blocks of calls run in turn (each block about BLOCK_SECONDS), until
    each has run about `seconds`: {name: [per-call time of each block]}. Block i of every callable ran at about
    the same moment, so their ratios see the same machine load."""
    counts = {}
    for name, fn in calls.items():  # warm up, and size the blocks
        for _ in range(3):
            fn()
        sync()
        start, n = clock(), 0
        while clock() - start < BLOCK_SECONDS / 4 or n < 2:
            fn()
            n += 1
        sync()
        counts[name] = max(1, round(n * BLOCK_SECONDS / (clock() - start)))
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(max(3, round(seconds / BLOCK_SECONDS))):
        for name, fn in calls.items():
            n = counts[name]
            start = clock()
            for _ in range(n):
                fn()
            sync()
            times[name].append((clock() - start) / n)
    return times


def run_per_call(
    devices: list[str], dtype: torch.dtype, seconds: float, report: Callable[[dict], None] = lambda row: None
) -> list[dict]:
    """The per-call table: for each device, size and pass, the median per-call time of each contender and the
    median over blocks of the paired ratios fused / add and reference / fused. On the CPU the clock is
    cpu_clock(); on a GPU wall time, with the device synchronized at the end of each block."""
    rows = []
    for device in devices:
        built = backends().get(torch.device(device).type, [])
        contenders = [c for c in PER_CALL_CONTENDERS if c != "fused" or "fused" in built]
        on_gpu = torch.device(device).type == "cuda"
        sync = functools.partial(torch.cuda.synchronize, device) if on_gpu else (lambda: None)
        clock = time.perf_counter if on_gpu else cpu_clock()
        for size, shape in PER_CALL_SIZES.items():
            for pass_name in PER_CALL_PASSES:
                calls = {c: per_call_pass(c, pass_name, shape, device, dtype) for c in contenders}
                times = interleaved_blocks(calls, seconds, sync, clock)
                row = {"device": device, "size": size, "pass": pass_name, "dtype": str(dtype).removeprefix("torch."),
                       "blocks": len(times[contenders[0]])}
                row.update({f"{c}_us": statistics.median(times[c]) * 1e6 for c in contenders})
                if "fused" in times:
                    row["fused_over_add"] = statistics.median(f / a for f, a in zip(times["fused"], times["add"]))
                    row["reference_over_fused"] = statistics.median(
                        r / f for r, f in zip(times["reference"], times["fused"])
                    )
                rows.append(row)
                report(row)
    return rows


def format_per_call_row(row: dict) -> str:
    """One line of the per-call table."""
    cells = [f"{row['device']:<6}", f"{row['size']:<7}", f"{row['pass']:<16}"]
    cells += [f"{row[f'{c}_us']:>10.2f}" if f"{c}_us" in row else f"{'-':>10}" for c in PER_CALL_CONTENDERS]
    for key in ("fused_over_add", "reference_over_fused"):
        cells.append(f"{row[key]:>10.2f}x" if key in row else f"{'-':>11}")
    return " ".join(cells)


PER_CALL_HEADER = " ".join(
    [f"{'device':<6}", f"{'size':<7}", f"{'pass':<16}", f"{'fused us':>10}", f"{'add us':>10}",
     f"{'ref us':>10}", f"{'fused/add':>11}", f"{'ref/fused':>11}"]
)


def copy_bandwidth(device: str, min_run_time: float) -> float:
    """GB/s of a device-to-device copy of 256 MiB (bytes read plus bytes written)."""
    src = torch.empty(64 * 2**20, device=device)
    dst = torch.empty_like(src)
    seconds = measure(lambda: dst.copy_(src), min_run_time, device)
    return 2 * src.numel() * src.element_size() / seconds / 1e9


def run_benchmarks(
    devices: list[str],
    sizes: list[str],
    dtype: torch.dtype,
    min_run_time: float,
    rounds: int,
    report: Callable[[dict], None] = lambda row: None,
    parts: tuple[str, ...] = PARTS,
    report_per_call: Callable[[dict], None] = lambda row: None,
) -> dict:
    """All timings, as the JSON document that `vaezoo bench --json` writes: the per-call table ("per_call"; each
    contender runs about min_run_time * rounds seconds) and the size table ("rows"), as `parts` asks;
    report(row) and report_per_call(row) see each row at once."""
    per_call = run_per_call(devices, dtype, min_run_time * rounds, report_per_call) if "per-call" in parts else []
    rows, copies = [], {}
    for device in devices if "sizes" in parts else []:
        built = backends().get(torch.device(device).type, [])
        impls = [i for i in IMPLEMENTATIONS if i != "fused" or "fused" in built]
        if device != "cpu":
            copies[device] = copy_bandwidth(device, min_run_time)
        for size in sizes:
            shape = SIZES[CHANNELS_LAST.get(size, size)]
            torch._dynamo.reset()  # a fresh recompile budget for the compiled reference at each size
            for pass_name in PASSES:
                calls = {impl: make_pass(impl, pass_name, size, device, dtype) for impl in impls}
                # the best of interleaved rounds: implementations see the same machine load
                best = {impl: math.inf for impl in impls}
                for _ in range(rounds):
                    for impl, fn in calls.items():
                        best[impl] = min(best[impl], measure(fn, min_run_time, device))
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
            "cpu_clock": "process CPU time" if cpu_clock() is time.process_time else "wall time",
            "gpus": {d: torch.cuda.get_device_name(d) for d in devices if d != "cpu"},
        },
        "copy_gbps": copies,
        "per_call": per_call,
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
    parser.add_argument(
        "--part", action="append", choices=PARTS,
        help="a table to run (repeatable; default: both): per-call (sizes "
        f"{', '.join(PER_CALL_SIZES)}: fused against torch.add and the eager reference) or sizes",
    )
    parser.add_argument(
        "--size", action="append", choices=SIZE_NAMES,
        help="a size of the size table (repeatable; default: all; -cl: channels_last memory)",
    )
    parser.add_argument(
        "--device", action="append", help="a device to run on (repeatable; default: cpu and every CUDA device)"
    )
    parser.add_argument(
        "--threads", type=int, default=None,
        help="torch CPU threads (default: torch's); with 1, CPU times are the process's CPU time, not wall time",
    )
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "float16", "bfloat16"])
    parser.add_argument("--min-run-time", type=float, default=None, help="seconds per measurement (default 0.5)")
    parser.add_argument(
        "--rounds", type=int, default=None,
        help="interleaved rounds, best kept (default 3); the per-call table runs rounds x min-run-time per contender",
    )


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
    if args.threads is not None:
        if args.threads < 1:
            raise VaezooError(f"--threads must be a whole number at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    sizes = args.size or list(QUICK_SIZES if args.quick else SIZES)
    min_run_time = args.min_run_time or (0.2 if args.quick else 0.5)
    rounds = args.rounds or (1 if args.quick else 3)
    table = sys.stderr if args.json == "-" else sys.stdout  # with JSON on stdout, the table goes to stderr
    parts = tuple(args.part or PARTS)
    headers_printed: set[str] = set()

    def printer(header: str, format_fn: Callable[[dict], str]) -> Callable[[dict], None]:
        """Prints a row of one table, after that table's header."""
        def print_row(row: dict) -> None:
            if header not in headers_printed:
                print(("\n" if headers_printed else "") + header, file=table, flush=True)
                headers_printed.add(header)
            print(format_fn(row), file=table, flush=True)
        return print_row

    result = run_benchmarks(
        devices, sizes, getattr(torch, args.dtype), min_run_time, rounds, report=printer(HEADER, format_row),
        parts=parts, report_per_call=printer(PER_CALL_HEADER, format_per_call_row),
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
