"""Evaluation: the importance-weighted NLL and active units against independent computations; the held-out set
read in batches, binarized the same whatever the batching."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from held_out_sets import CountingImages, held

import vaezoo
from vaezoo.analysis import evaluate
from vaezoo.analysis.evaluate import active_units, elbo, importance_weighted_nll, summary
from vaezoo.data import held_out as held_out_module
from vaezoo.data.binarize import fixed_bits
from vaezoo.data.held_out import HeldOut
from vaezoo.runtime.distributed import World


def small_model(name: str = "vae-mlp", **overrides) -> vaezoo.VAE:
    torch.manual_seed(0)
    return vaezoo.create_model(name, input_shape=(1, 8, 8), latent_dim=4, **{"encoder.hidden_dims": [32], **overrides})


def test_iw_nll_with_one_sample_is_the_negative_monte_carlo_elbo():
    model = small_model("mog-vae-mlp")  # the ELBO's KL is Monte-Carlo here, so both use the same single draw
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1)).bernoulli()
    one_sample = importance_weighted_nll(model, held(x), samples=1, batch_size=5)
    assert one_sample == -elbo(model, held(x), batch_size=5)["elbo"]


def test_iw_nll_matches_a_direct_log_mean_exp_and_tightens_with_k():
    model = small_model()
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1)).bernoulli()
    nll = {k: importance_weighted_nll(model, held(x), samples=k, batch_size=4) for k in (1, 10, 500)}
    assert nll[500] < nll[10] < nll[1]
    assert nll[500] < -elbo(model, held(x))["elbo"]
    torch.manual_seed(0)
    with torch.no_grad():  # independent: per example, K draws from q and log mean exp of p(x, z) / q(z|x)
        mu, logvar = model.encode(x)
        std = torch.exp(0.5 * logvar)
        z = mu + std * torch.randn(500, *mu.shape)
        q = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)
        p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        recon = torch.stack([model.likelihood.log_prob(model.decoder(zk), x) for zk in z])
        direct = -(torch.logsumexp(recon + p - q, 0) - math.log(500)).mean().item()
    assert abs(direct - nll[500]) < 0.05 * abs(nll[1] - nll[500]) + 0.05


def test_the_summary_estimates_the_nll_on_the_first_n_examples_when_asked_and_the_rest_on_all():
    model = small_model()
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1)).bernoulli()
    whole, first = summary(model, held(x), nll_samples=5), summary(model, held(x), nll_samples=5, nll_examples=4)
    assert whole["nll"] == importance_weighted_nll(model, held(x), samples=5) and whole["nll_examples"] == 12
    assert first["nll"] == importance_weighted_nll(model, held(x[:4]), samples=5) and first["nll_examples"] == 4
    assert first["nll"] != whole["nll"] and first["elbo"] == whole["elbo"] == elbo(model, held(x))["elbo"]
    assert summary(model, held(x), nll_samples=5, nll_examples=50)["nll_examples"] == 12
    assert "mutual_information" in whole and "kl_per_dim" in whole
    only_nll = summary(model, held(x), nll_samples=5, optional=("nll",))  # what the quality benchmark asks for
    assert only_nll["nll"] == whole["nll"] and not {"mutual_information", "kl_per_dim"} & set(only_nll)
    with pytest.raises(ValueError, match="unknown optional metrics \\['mi'\\]"):
        summary(model, held(x), optional=("mi",))


def test_active_units_count_the_dimensions_whose_mean_moves():
    model = small_model()
    with torch.no_grad():
        head = model.encoder.head.linear
        head.weight[1:4].zero_()  # mean of dims 1..3 no longer depends on x
        head.weight[:1].mul_(5.0)
    x = torch.rand(200, 1, 8, 8, generator=torch.Generator().manual_seed(2)).bernoulli()
    assert active_units(model, held(x)) == 1 == active_units(model, held(x), batch_size=7)
    means = model.encode(x)[0]
    assert means[:, 0].var() > 0.01 and means[:, 1:].var(0).max() == 0


def test_evaluation_leaves_the_rng_and_mode_alone():
    model = small_model().train()
    x = torch.rand(4, 1, 8, 8).bernoulli()
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    importance_weighted_nll(model, held(x), samples=3)
    active_units(model, held(x))
    assert torch.equal(torch.rand(1), before) and model.training


def test_eval_estimates_the_nll_on_the_first_n_held_out_images_and_says_so(tmp_path, capsys):
    import json

    from vaezoo.cli.main import main

    run = tmp_path / "run"
    assert main(["train", "vae-mlp", "--dataset", "digits", "--epochs", "1", "--quiet", "--out", str(run),
                 "--set", "encoder.hidden_dims=[16]", "--set", "decoder.hidden_dims=[16]"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--nll-samples", "3", "--nll-examples", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["nll_examples"] == 20 and result["examples"] > 20
    assert main(["eval", str(run), "--nll-samples", "3", "--nll-examples", "20"]) == 0
    table = capsys.readouterr().out
    assert f"{result['nll']:.2f} nats on the first 20" in table
    assert f"bits per dimension     {result['bits_per_dim']:.4f} on the first 20" in table


def test_a_large_k_is_split_into_passes_that_combine_to_the_same_bound(monkeypatch):
    model = small_model()
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1)).bernoulli()
    passes = []
    real_iw_terms = evaluate.iw_terms

    def counted(m, xb, k, y):
        passes.append(k * len(xb))
        return real_iw_terms(m, xb, k, y)

    monkeypatch.setattr(evaluate, "iw_terms", counted)
    monkeypatch.setattr(held_out_module, "BATCH_ELEMENTS", 40 * 64)  # 40 8x8 (example, sample) pairs per pass
    split = importance_weighted_nll(model, held(x), samples=500, batch_size=4)
    assert max(passes) <= 40 and sum(passes) == 500 * 6
    monkeypatch.undo()
    whole = importance_weighted_nll(model, held(x), samples=500, batch_size=4)
    one = importance_weighted_nll(model, held(x), samples=1, batch_size=4)
    assert abs(split - whole) < 0.05 * abs(one - whole) + 0.05  # the same estimate up to the draws


def test_a_huge_k_is_refused_before_anything_is_allocated():
    model = small_model()
    x = held(torch.zeros(2, 1, 8, 8))
    for bad in (0, 10**9, evaluate.MAX_NLL_SAMPLES + 1, True):
        with pytest.raises(ValueError, match="number of importance samples"):
            importance_weighted_nll(model, x, samples=bad)
        with pytest.raises(ValueError, match="number of importance samples"):
            summary(model, x, nll_samples=bad)


def test_the_held_out_binarization_depends_only_on_the_row_not_on_the_batching():
    x = torch.rand(50, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    binarized = held(x, binarized=True)
    whole = torch.cat([xb for xb, _, _ in binarized.batches(1000, "cpu")])
    assert set(whole.unique().tolist()) == {0.0, 1.0}
    for batch_size in (1, 7, 50):
        torch.testing.assert_close(torch.cat([xb for xb, _, _ in binarized.batches(batch_size, "cpu")]), whole)
    shards = [torch.cat([xb for xb, _, _ in binarized.batches(8, "cpu", World(rank=r, size=3))]) for r in range(3)]
    assert sum(len(s) for s in shards) == 50
    rows = np.array([31, 4, 17])  # any rows, in any order, read alone or together
    torch.testing.assert_close(binarized.read(rows)[0], whole[rows])
    torch.testing.assert_close(fixed_bits(x[rows], rows, seed=0), whole[rows])
    torch.testing.assert_close(binarized.read(rows, stored=True)[0], x[rows])  # pictures: as stored
    assert not torch.equal(fixed_bits(x[:1], np.array([0]), seed=0), fixed_bits(x[:1], np.array([1]), seed=0))
    assert not torch.equal(fixed_bits(x[:5], np.arange(5), seed=0), fixed_bits(x[:5], np.arange(5), seed=1))


def test_every_metric_reads_the_held_out_set_in_batches_each_row_once_per_pass():
    model = small_model()
    x = torch.rand(2500, 1, 8, 8, generator=torch.Generator().manual_seed(4)).bernoulli()
    images = CountingImages(x, most=1000)  # refuses to read more than a batch at once
    result = summary(model, HeldOut(images, binarized=False, conditional=False), nll_samples=2)
    assert result["examples"] == 2500 and "mutual_information" in result and "kl_per_dim" in result
    # ELBO, active units, IW-NLL, I(x;z) and KL per dimension: five passes, no row read twice in one
    assert images.rows_read == 5 * 2500 and max(len(r) for r in images.reads) == 1000


def test_each_rank_reads_only_its_shard_and_the_ranks_add_up_to_one_process():
    model = small_model()
    x = torch.rand(300, 1, 8, 8, generator=torch.Generator().manual_seed(5)).bernoulli()
    alone = elbo(model, held(x), batch_size=128)
    parts = []
    for rank in range(2):
        images = CountingImages(x, most=64)
        parts.append(elbo(model, HeldOut(images, binarized=False, conditional=False), batch_size=128,
                          world=World(rank=rank, size=2)))  # no process group: each rank's own share of the sums
        assert images.rows_read == 150
    for key in ("elbo", "recon", "kl"):
        assert parts[0][key] + parts[1][key] == pytest.approx(alone[key], rel=1e-6)


def test_a_continuous_likelihood_says_why_it_has_no_bits_per_dimension():
    model = small_model(likelihood="gaussian")
    result = summary(model, held(torch.rand(6, 1, 8, 8)), nll_samples=2)
    assert "bits_per_dim" not in result and "nll" in result
    assert "continuous" in result["unavailable"]["bits_per_dim"] and "discrete" in result["unavailable"]["bits_per_dim"]
    discrete = summary(small_model(), held(torch.rand(6, 1, 8, 8).bernoulli()), nll_samples=2)
    assert "bits_per_dim" in discrete and "bits_per_dim" not in discrete["unavailable"]
