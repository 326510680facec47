"""pytest-benchmark suite of reparameterize: the same cases as `vaezoo bench`.

Run: pytest benchmarks/test_bench_ops.py --benchmark-enable [--benchmark-json out.json]
(the project's pytest config disables benchmarks by default; -k 'cpu and 128x32' narrows the run).
"""
from __future__ import annotations

import pytest
import torch

from vaezoo.analysis.operator_bench import IMPLEMENTATIONS, PASSES, SIZES, make_pass
from vaezoo.ops import backends

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("pass_name", PASSES)
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("device", DEVICES)
def test_reparameterize(benchmark, device, size, impl, pass_name):
    if impl == "fused" and "fused" not in backends().get(device, []):
        pytest.skip(f"vaezoo._C has no {device} kernels in this build")
    fn = make_pass(impl, pass_name, SIZES[size], device, torch.float32)
    for _ in range(3):  # warm up (and compile)
        fn()
    if device == "cuda":
        benchmark(lambda: (fn(), torch.cuda.synchronize()))
    else:
        benchmark(fn)
