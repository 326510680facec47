"""Priors against torch.distributions, and the hierarchical KL against a Monte-Carlo estimate of its own."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save
from torch.distributions import (
    Categorical,
    Independent,
    MixtureSameFamily,
    Normal,
    kl_divergence,
)

import vaezoo
from vaezoo.components.posteriors import LadderPosterior
from vaezoo.components.priors import LadderPrior, MixtureOfGaussians
from vaezoo.core.estimators import elbo_terms


def mixture(means: torch.Tensor, logvars: torch.Tensor, logits: torch.Tensor) -> MixtureSameFamily:
    return MixtureSameFamily(Categorical(logits=logits), Independent(Normal(means, torch.exp(0.5 * logvars)), 1))


def test_mog_log_density_equals_mixture_same_family():
    torch.manual_seed(0)
    prior = MixtureOfGaussians(latent_dim=3, components=4).double()
    with torch.no_grad():
        prior.logvars.normal_(0, 0.5)
        prior.logits.normal_()
    z = 2 * torch.randn(7, 5, 3, dtype=torch.float64)
    expected = mixture(prior.means, prior.logvars, prior.logits).log_prob(z)
    torch.testing.assert_close(prior.log_prob(z), expected)
    draws = prior.sample(20000)
    assert draws.shape == (20000, 3)
    torch.testing.assert_close(draws.mean(0), mixture(prior.means, prior.logvars, prior.logits).mean, atol=0.06, rtol=0)


def test_vamp_log_density_equals_mixture_same_family_through_the_encoder():
    torch.manual_seed(0)
    model = vaezoo.create_model("vamp-vae-mlp", input_shape=(1, 8, 8), latent_dim=4, **{"prior.components": 6}).double()
    prior = model.prior
    means, logvars = model.encoder(prior.pseudo_inputs())
    z = torch.randn(9, 4, dtype=torch.float64)
    expected = mixture(means, logvars, torch.zeros(6, dtype=torch.float64)).log_prob(z)
    torch.testing.assert_close(prior.log_prob(z), expected)
    assert prior.pseudo_inputs().min() >= 0 and prior.pseudo_inputs().max() <= 1


def test_vamp_shares_the_encoder_and_saves_it_once():
    model = vaezoo.create_model("vamp-vae-mlp", input_shape=(1, 8, 8), **{"prior.components": 5})
    assert model.prior.encoder is model.encoder
    keys = list(model.state_dict())
    assert not any(k.startswith("prior.encoder") for k in keys) and "prior.pseudo" in keys
    save({k: v.detach().contiguous() for k, v in model.state_dict().items()})  # no shared-memory refusal
    model(torch.rand(4, 1, 8, 8).bernoulli()).loss.backward()
    assert model.prior.pseudo.grad is not None and model.prior.pseudo.grad.abs().sum() > 0


def test_mc_kl_priors_use_log_q_minus_log_prior():
    torch.manual_seed(0)
    model = vaezoo.create_model("mog-vae-mlp", input_shape=(1, 8, 8), latent_dim=3)
    x = torch.rand(5, 1, 8, 8).bernoulli()
    out = elbo_terms(model, x)
    mu, logvar = out.q_params
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    torch.testing.assert_close(out.kl, q.log_prob(out.z) - model.prior.log_prob(out.z))


def test_learned_diagonal_prior_has_the_analytic_kl():
    torch.manual_seed(0)
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=3, prior="learned-diagonal")
    with torch.no_grad():
        model.prior.mu.normal_()
        model.prior.logvar.normal_(0, 0.3)
    out = elbo_terms(model, torch.rand(4, 1, 8, 8).bernoulli())
    mu, logvar = out.q_params
    p = Normal(model.prior.mu, torch.exp(0.5 * model.prior.logvar))
    expected = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), p).sum(-1)
    torch.testing.assert_close(out.kl, expected)
    torch.testing.assert_close(model.prior.log_prob(out.z), p.log_prob(out.z).sum(-1))
    out.loss.backward()
    assert model.prior.mu.grad is not None


def ladder_case(layers: int, sizes_dim: int = 6) -> tuple[LadderPrior, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    prior = LadderPrior(sizes_dim, layers=layers, hidden=16).double()
    mu = torch.randn(2, sizes_dim, dtype=torch.float64)
    logvar = 0.5 * torch.randn(2, sizes_dim, dtype=torch.float64)
    return prior, mu, logvar


def independent_posterior_and_prior(prior: LadderPrior, mu, logvar, z) -> tuple[torch.Tensor, torch.Tensor]:
    """log q(z|x) and log p(z) of given z, from torch.distributions and the merge written in variances."""
    mus, logvars, zs = (t.split(prior.sizes, dim=-1) for t in (mu, logvar, z))
    top = len(prior.sizes) - 1
    log_q = Normal(mus[top], torch.exp(0.5 * logvars[top])).log_prob(zs[top]).sum(-1)
    log_p = Normal(0.0, 1.0).log_prob(zs[top]).sum(-1)
    for l in range(top):
        p_mu, p_logvar = prior.conditionals[l](zs[l + 1])
        var_bu, var_p = logvars[l].exp(), p_logvar.exp()
        var_q = 1 / (1 / var_bu + 1 / var_p)
        mean_q = var_q * (mus[l] / var_bu + p_mu / var_p)
        log_q = log_q + Normal(mean_q, var_q.sqrt()).log_prob(zs[l]).sum(-1)
        log_p = log_p + Normal(p_mu, p_logvar.exp().sqrt()).log_prob(zs[l]).sum(-1)
    return log_q, log_p


@pytest.mark.parametrize("layers", [2, 3])
def test_ladder_draw_log_q_and_log_prob_are_the_top_down_densities(layers):
    prior, mu, logvar = ladder_case(layers)
    latent = LadderPosterior(6).draw((mu, logvar), prior, samples=4)
    assert latent.z.shape == (4, 2, 6) and latent.log_q.shape == latent.kl.shape == (4, 2)
    log_q, log_p = independent_posterior_and_prior(prior, mu, logvar, latent.z)
    torch.testing.assert_close(latent.log_q, log_q)
    torch.testing.assert_close(prior.log_prob(latent.z), log_p)


@pytest.mark.parametrize("layers", [2, 3])
def test_hierarchical_kl_equals_a_monte_carlo_estimate(layers):
    prior, mu, logvar = ladder_case(layers)
    n = 40000
    with torch.no_grad():
        latent = LadderPosterior(6).draw((mu, logvar), prior, samples=n)
        log_q, log_p = independent_posterior_and_prior(prior, mu, logvar, latent.z)
    mc = log_q - log_p  # [n, 2]: the plain Monte-Carlo KL of the same draws
    analytic = latent.kl  # analytic per layer given the layers above
    se = (mc.std(0) / n**0.5).max().item()
    torch.testing.assert_close(analytic.mean(0), mc.mean(0), atol=5 * se, rtol=0)
    assert (analytic.var(0) < mc.var(0)).all()  # the conditional closed form removes variance


def test_ladder_prior_samples_top_down():
    prior, _, _ = ladder_case(2)
    torch.manual_seed(0)
    z = prior.sample(5)
    assert z.shape == (5, 6)
    assert torch.isfinite(prior.log_prob(z)).all()
