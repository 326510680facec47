"""noise_shard: ranks that draw for their shards of a batch get the rows one whole-batch draw gives, on both
backends, forward and backward, so data-parallel training matches one process."""
from __future__ import annotations

import pytest
import torch
from _ops_cases import make_inputs, tolerance

from vaezoo.ops import backends, noise_shard, reparameterize

BACKENDS = ["reference"] + (["fused"] if "fused" in backends()["cpu"] else [])
DEVICES = ["cpu"] + (["cuda"] if "fused" in backends().get("cuda", []) else [])


def shard_bounds(rows: int, parts: int) -> list[tuple[int, int]]:
    cuts = [round(i * rows / parts) for i in range(parts + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("samples", [None, 3])
@pytest.mark.parametrize("prior", [None, "full", "shared"])
@pytest.mark.parametrize("shape, parts", [((10, 7), 3), ((12, 64), 2), ((6, 2, 4, 4), 4), ((5, 1030), 2)])
def test_shards_draw_the_rows_of_one_whole_batch_draw(device, backend, samples, prior, shape, parts):
    if device == "cuda" and backend == "reference":
        pytest.skip("the reference path draws with torch.randn on either device; the CPU case covers it")
    inputs = make_inputs(shape, torch.float64, prior, device=device, requires_grad=True)
    wanted = [t for t in inputs if t is not None]
    torch.manual_seed(11)
    whole = reparameterize(*inputs, samples=samples, log_q=True, backend=backend)
    cotangents = [torch.randn_like(o) for o in whole]
    whole_grads = torch.autograd.grad(whole, wanted, cotangents)
    batch_dim = 0 if samples is None else 1
    pieces, grads = [], [torch.zeros_like(t) for t in wanted]
    for start, stop in shard_bounds(shape[0], parts):
        torch.manual_seed(11)  # every rank starts from the same generator state
        rows = [None if t is None else (t[start:stop] if t.shape == inputs[0].shape else t) for t in inputs]
        with noise_shard(start, shape[0]):
            out = reparameterize(*rows, samples=samples, log_q=True, backend=backend)
        pieces.append(out)
        local_cot = [c.narrow(dim, start, stop - start) for c, dim in zip(cotangents, (batch_dim, 0, batch_dim))]
        leaves = [r for r in rows if r is not None]
        for g, a, t in zip(grads, torch.autograd.grad(out, leaves, local_cot), leaves):
            if t.shape == g.shape:
                g += a
            else:
                g[start:stop] += a
    for i, dim in enumerate((batch_dim, 0, batch_dim)):  # z, kl, log_q
        torch.testing.assert_close(torch.cat([p[i] for p in pieces], dim), whole[i], **tolerance(torch.float64, 64))
    for a, b in zip(grads, whole_grads):
        torch.testing.assert_close(a, b)


def test_outside_a_block_nothing_changes():
    zeros = torch.zeros(4, 8)
    torch.manual_seed(3)
    plain = reparameterize(zeros, zeros)[0]
    torch.manual_seed(3)
    with noise_shard(0, 4):
        same = reparameterize(zeros, zeros)[0]
    assert torch.equal(plain, same)


@pytest.mark.parametrize(
    "start, total, rows, message",
    [(-1, 4, 2, "start must be a non-negative int"), (5, 4, 2, "lies beyond total"), (3, 4, 2, "more than the rows")],
)
def test_bad_shards_are_refused(start, total, rows, message):
    zeros = torch.zeros(rows, 3)
    with pytest.raises(ValueError, match=message):
        with noise_shard(start, total):
            reparameterize(zeros, zeros)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("prior", ["standard-normal", "learned-diagonal"])
def test_per_dimension_kl_draws_the_shards_rows_of_the_whole_batch_draw(prior, backend, monkeypatch):
    """The per-dimension KL (free bits) reads [B, D] as [B*D, 1]: inside a trainer's or a rank's noise shard it
    draws that shard's rows of the whole batch's draw, the same z as the plain draw (it once asked for B*D rows
    of a B-row shard and failed)."""
    from vaezoo.components.posteriors.gaussian import GaussianPosterior
    from vaezoo.components.priors.gaussian import LearnedDiagonal, StandardNormal

    monkeypatch.setenv("VAEZOO_BACKEND", backend)
    prior_module = (StandardNormal if prior == "standard-normal" else LearnedDiagonal)(5).double()
    posterior = GaussianPosterior(5)
    mu, logvar = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    torch.manual_seed(4)
    whole = posterior.draw((mu, logvar), prior_module).z
    for start, stop in shard_bounds(6, 3):
        torch.manual_seed(4)
        with noise_shard(start, 6):
            latent = posterior.kl_per_dim((mu[start:stop], logvar[start:stop]), prior_module)
        torch.testing.assert_close(latent.z, whole[start:stop])
        assert latent.kl.shape == (stop - start, 5)


@pytest.mark.parametrize("samples", [None, 3])
def test_the_ladder_posterior_draws_the_shards_rows_of_the_whole_batch_draw(samples):
    """The ladder's lower layers draw one set per draw above ([K, B] rows): inside a noise shard (the trainer
    puts every step in one) they draw the shard's rows of the whole batch's draw (with samples they once asked
    for K*B rows of a B-row shard and failed, so hvae with iwae could not train)."""
    import vaezoo

    torch.manual_seed(0)
    model = vaezoo.create_model("hvae-mlp", input_shape=(1, 4, 4), latent_dim=6).double()
    params = model.encode(torch.rand(5, 1, 4, 4, dtype=torch.float64))
    torch.manual_seed(4)
    whole = model.posterior.draw(params, model.prior, samples)
    batch_dim = 0 if samples is None else 1
    for start, stop in shard_bounds(5, 2):
        torch.manual_seed(4)
        with noise_shard(start, 5):
            part = model.posterior.draw(tuple(p[start:stop] for p in params), model.prior, samples)
        for mine, all_of in ((part.z, whole.z), (part.kl, whole.kl), (part.log_q, whole.log_q)):
            torch.testing.assert_close(mine, all_of.narrow(batch_dim, start, stop - start))
