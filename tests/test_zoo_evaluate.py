"""Evaluation: the importance-weighted NLL and active units against independent computations."""
from __future__ import annotations

import math

import pytest
import torch

import vaezoo
from vaezoo.analysis.evaluate import active_units, elbo, importance_weighted_nll, summary


def small_model(name: str = "vae-mlp", **overrides) -> vaezoo.VAE:
    torch.manual_seed(0)
    return vaezoo.create_model(name, input_shape=(1, 8, 8), latent_dim=4, **{"encoder.hidden_dims": [32], **overrides})


def test_iw_nll_with_one_sample_is_the_negative_monte_carlo_elbo():
    model = small_model("mog-vae-mlp")  # the ELBO's KL is Monte-Carlo here, so both use the same single draw
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1)).bernoulli()
    assert importance_weighted_nll(model, x, samples=1, batch_size=5) == -elbo(model, x, batch_size=5)["elbo"]


def test_iw_nll_matches_a_direct_log_mean_exp_and_tightens_with_k():
    model = small_model()
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1)).bernoulli()
    nll = {k: importance_weighted_nll(model, x, samples=k, batch_size=4) for k in (1, 10, 500)}
    assert nll[500] < nll[10] < nll[1]
    assert nll[500] < -elbo(model, x)["elbo"]
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
    whole, first = summary(model, x, nll_samples=5), summary(model, x, nll_samples=5, nll_examples=4)
    assert whole["nll"] == importance_weighted_nll(model, x, samples=5) and whole["nll_examples"] == 12
    assert first["nll"] == importance_weighted_nll(model, x[:4], samples=5) and first["nll_examples"] == 4
    assert first["nll"] != whole["nll"] and first["elbo"] == whole["elbo"] == elbo(model, x)["elbo"]
    assert summary(model, x, nll_samples=5, nll_examples=50)["nll_examples"] == 12
    assert "mutual_information" in whole and "kl_per_dim" in whole
    only_nll = summary(model, x, nll_samples=5, optional=("nll",))  # what the quality benchmark asks for
    assert only_nll["nll"] == whole["nll"] and not {"mutual_information", "kl_per_dim"} & set(only_nll)
    with pytest.raises(ValueError, match="unknown optional metrics \\['mi'\\]"):
        summary(model, x, optional=("mi",))


def test_active_units_count_the_dimensions_whose_mean_moves():
    model = small_model()
    with torch.no_grad():
        head = model.encoder.head.linear
        head.weight[1:4].zero_()  # mean of dims 1..3 no longer depends on x
        head.weight[:1].mul_(5.0)
    x = torch.rand(200, 1, 8, 8, generator=torch.Generator().manual_seed(2)).bernoulli()
    assert active_units(model, x) == 1
    means = model.encode(x)[0]
    assert means[:, 0].var() > 0.01 and means[:, 1:].var(0).max() == 0


def test_evaluation_leaves_the_rng_and_mode_alone():
    model = small_model().train()
    x = torch.rand(4, 1, 8, 8).bernoulli()
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    importance_weighted_nll(model, x, samples=3)
    active_units(model, x)
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
