"""pytest-benchmark suite of reparameterize: the same cases as `vaezoo bench` (its per-call table and its size
table).

Run: pytest benchmarks/test_bench_ops.py --benchmark-enable [--benchmark-json out.json]
(the project's pytest config disables benchmarks by default; -k 'cpu and 128x32' narrows the run).
"""
from __future__ import annotations

import pytest
import torch

from vaezoo.analysis.operator_bench import (
    IMPLEMENTATIONS,
    PASSES,
    PER_CALL_CONTENDERS,
    PER_CALL_PASSES,
    PER_CALL_SIZES,
    SIZE_NAMES,
    make_pass,
    per_call_pass,
)
from vaezoo.ops import backends

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _run(benchmark, fn, device: str) -> None:
    for _ in range(3):  # warm up (and compile)
        fn()
    if device == "cuda":
        benchmark(lambda: (fn(), torch.cuda.synchronize()))
    else:
        benchmark(fn)


def _skip_unbuilt(impl: str, device: str) -> None:
    if impl == "fused" and "fused" not in backends().get(device, []):
        pytest.skip(f"vaezoo._C has no {device} kernels in this build")


@pytest.mark.parametrize("pass_name", PASSES)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("size", SIZE_NAMES)
@pytest.mark.parametrize("device", DEVICES)
def test_reparameterize(benchmark, device, size, impl, pass_name):
    _skip_unbuilt(impl, device)
    _run(benchmark, make_pass(impl, pass_name, size, device, torch.float32), device)


@pytest.mark.parametrize("pass_name", PER_CALL_PASSES)
@pytest.mark.parametrize("contender", PER_CALL_CONTENDERS)
@pytest.mark.parametrize("size", list(PER_CALL_SIZES))
@pytest.mark.parametrize("device", DEVICES)
def test_per_call(benchmark, device, size, contender, pass_name):
    _skip_unbuilt(contender, device)
    _run(benchmark, per_call_pass(contender, pass_name, PER_CALL_SIZES[size], device, torch.float32), device)
