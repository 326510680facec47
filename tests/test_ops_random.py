"""Randomness of the fused operator: the normals' statistics, and torch generator semantics (manual_seed,
get/set_rng_state, thread count and shape invariance)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from _ops_cases import fused_cpu
from scipy import stats

from vaezoo.ops import reparameterize

pytestmark = fused_cpu

N = 1 << 20


def draw(shape=(N // 256, 256), dtype=torch.float32, **kwargs) -> torch.Tensor:
    """eps itself: z for mu = 0, logvar = 0."""
    zeros = torch.zeros(shape, dtype=dtype)
    return reparameterize(zeros, zeros, backend="fused", **kwargs)[0]


@pytest.fixture(scope="module")
def normals() -> np.ndarray:
    torch.manual_seed(1234)
    return draw().double().flatten().numpy()


def test_mean_variance_and_tails(normals):
    n = normals.size
    assert abs(normals.mean()) < 5 / np.sqrt(n)
    assert abs(normals.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(stats.kurtosis(normals, fisher=False) - 3) < 5 * np.sqrt(24 / n)
    assert abs(stats.skew(normals)) < 5 * np.sqrt(6 / n)
    assert np.abs(normals).max() > 4.5  # the tails are there


def test_kolmogorov_smirnov(normals):
    assert stats.kstest(normals, "norm").pvalue > 1e-4
    # also within each lane of a Philox block (element index mod 4)
    for lane in range(4):
        assert stats.kstest(normals[lane::4], "norm").pvalue > 1e-4


@pytest.mark.parametrize("lag", [1, 2, 3, 4, 256])
def test_no_correlation_between_neighbours(normals, lag):
    c = np.corrcoef(normals[:-lag], normals[lag:])[0, 1]
    assert abs(c) < 5 / np.sqrt(normals.size)


def test_no_correlation_between_calls_and_samples():
    torch.manual_seed(0)
    a, b = draw().flatten(), draw().flatten()
    assert abs(np.corrcoef(a.numpy(), b.numpy())[0, 1]) < 5 / np.sqrt(N)
    k = draw((N // 1024, 256), samples=4)
    for i in range(1, 4):
        assert abs(np.corrcoef(k[0].flatten().numpy(), k[i].flatten().numpy())[0, 1]) < 5 / np.sqrt(N // 4)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_dtypes_are_standard_normal(dtype):
    torch.manual_seed(3)
    x = draw((256, 256), dtype=dtype).double().flatten().numpy()
    assert abs(x.mean()) < 5 / np.sqrt(x.size)
    assert abs(x.var() - 1) < 0.02
    assert stats.kstest(x, "norm").pvalue > 1e-4 or dtype != torch.float64


def test_manual_seed_reproduces_and_calls_differ():
    torch.manual_seed(42)
    a, b = draw((64, 64)), draw((64, 64))
    torch.manual_seed(42)
    assert torch.equal(draw((64, 64)), a)
    assert not torch.equal(a, b)
    torch.manual_seed(43)
    assert not torch.equal(draw((64, 64)), a)


def test_get_set_rng_state_replays():
    state = torch.get_rng_state()
    a = draw((32, 48))
    after = torch.rand(3)
    torch.set_rng_state(state)
    assert torch.equal(draw((32, 48)), a)
    assert torch.equal(torch.rand(3), after)  # the op advanced the generator like one draw


def test_explicit_eps_leaves_the_generator_alone():
    torch.manual_seed(5)
    zeros = torch.zeros(4, 4)
    reparameterize(zeros, zeros, eps=torch.ones(4, 4), backend="fused")
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(3), after)


def test_thread_count_does_not_change_results():
    threads = torch.get_num_threads()
    mu, logvar = torch.randn(512, 300), torch.randn(512, 300)
    try:
        out = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            torch.manual_seed(9)
            out.append(reparameterize(mu, logvar, samples=2, log_q=True, backend="fused"))
    finally:
        torch.set_num_threads(threads)
    for other in out[1:]:
        for a, b in zip(out[0], other):
            assert torch.equal(a, b)


def test_eps_is_keyed_by_element_index_not_by_shape():
    torch.manual_seed(11)
    rows = draw((6, 35))
    torch.manual_seed(11)
    flat = draw((210, 1))
    torch.manual_seed(11)
    spatial = draw((3, 2, 5, 7))
    assert torch.equal(rows.flatten(), flat.flatten())
    assert torch.equal(rows.flatten(), spatial.flatten())


def _philox_normals(seed: int, n: int) -> np.ndarray:
    """The first n normals of the stream (seed, offset 0) per csrc/philox.h, in NumPy: Philox4x32-10 on the
    counter (0, 0, group, 0) for element group i // 4, then Box-Muller on its two word pairs, in float64."""
    mask = np.uint64(0xFFFFFFFF)
    groups = np.arange((n + 3) // 4, dtype=np.uint64)
    c = [np.zeros_like(groups), np.zeros_like(groups), groups & mask, groups >> np.uint64(32)]
    k0, k1 = seed & 0xFFFFFFFF, seed >> 32
    for _ in range(10):
        p0, p1 = np.uint64(0xD2511F53) * c[0], np.uint64(0xCD9E8D57) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ np.uint64(k0), p1 & mask, (p0 >> np.uint64(32)) ^ c[3] ^ np.uint64(k1),
             p0 & mask]
        k0, k1 = (k0 + 0x9E3779B9) & 0xFFFFFFFF, (k1 + 0xBB67AE85) & 0xFFFFFFFF
    out = np.empty((groups.size, 4))
    for pair in range(2):
        u = (c[2 * pair].astype(np.float64) + 0.5) / 2.0**32
        t = c[2 * pair + 1].astype(np.float64) / 2.0**32
        radius = np.sqrt(-2 * np.log(u))
        out[:, 2 * pair], out[:, 2 * pair + 1] = radius * np.cos(2 * np.pi * t), radius * np.sin(2 * np.pi * t)
    return out.flatten()[:n]


def test_the_cpu_stream_is_philox_box_muller():
    """The vectorized Philox (AVX-512, AVX2 or portable, whichever this CPU runs) draws the stream the CUDA
    kernel draws: checked against an independent NumPy Philox, over several chunks and a ragged end."""
    torch.manual_seed(21)
    zeros = torch.zeros(7, 331)
    z, _kl, _log_q, rng = torch.ops.vaezoo.reparameterize_fwd(zeros, zeros, None, None, None, None)
    assert rng[1].item() == 0
    expected = _philox_normals(rng[0].item() & 0xFFFFFFFFFFFFFFFF, z.numel())
    np.testing.assert_allclose(z.double().flatten().numpy(), expected, rtol=1e-5, atol=1e-5)
