"""The objectives against independent computations: IWAE, the TC decomposition, MMD, free bits and warm-up."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

import vaezoo
from vaezoo.components.objectives.mmd import imq_kernel, mmd, rbf_kernel
from vaezoo.components.objectives.tc import decompose_kl
from vaezoo.components.posteriors import GaussianPosterior
from vaezoo.core.estimators import elbo_terms, iw_terms
from vaezoo.errors import CombinationError


def batch(n: int = 6, shape=(1, 8, 8)) -> torch.Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(3)).bernoulli()


# --- IWAE ---------------------------------------------------------------------------------------------------


def test_iwae_with_one_sample_is_the_elbo_of_the_same_draw():
    torch.manual_seed(0)
    model = vaezoo.create_model("iwae-mlp", input_shape=(1, 8, 8), latent_dim=4, samples=1, prior="mog")
    x = batch()
    torch.manual_seed(7)
    iw = model(x)
    torch.manual_seed(7)
    single = elbo_terms(model, x)  # mog: the ELBO's KL is log q - log p of its one draw, like IWAE's weight
    torch.testing.assert_close(iw.terms["iw_bound"], single.elbo)
    torch.testing.assert_close(iw.z[0], single.z)
    torch.testing.assert_close(iw.loss, single.loss)


def test_iwae_one_sample_weight_against_torch_distributions_and_the_analytic_elbo():
    torch.manual_seed(0)
    model = vaezoo.create_model("iwae-mlp", input_shape=(1, 8, 8), latent_dim=4, samples=1)
    x = batch(1).expand(4000, 1, 8, 8)
    with torch.no_grad():
        iw = model(x)
        z = iw.z[0]
        q = Independent(Normal(iw.q_params[0], torch.exp(0.5 * iw.q_params[1])), 1)
        p = Independent(Normal(torch.zeros_like(z), torch.ones_like(z)), 1)
        recon = model.likelihood.log_prob(model.decoder(z), x)
        torch.testing.assert_close(iw.terms["iw_bound"], recon + p.log_prob(z) - q.log_prob(z))
        analytic = elbo_terms(model, x).recon.mean() - kl_divergence(q, p).mean()
    bound = iw.terms["iw_bound"]
    assert abs(bound.mean() - analytic) < 4 * bound.std() / math.sqrt(len(bound))


def test_iwae_bound_rises_with_k():
    torch.manual_seed(0)
    model = vaezoo.create_model("iwae-mlp", input_shape=(1, 8, 8), latent_dim=4)
    x = batch(2).repeat(300, 1, 1, 1)
    with torch.no_grad():
        bounds = [iw_terms(model, x, k).terms["iw_bound"].mean().item() for k in (1, 5, 50)]
    assert bounds[0] < bounds[1] < bounds[2], bounds


# --- beta-TCVAE -----------------------------------------------------------------------------------------------


def brute_force_decomposition(z, mu, logvar, dataset_size):
    """MWS terms by explicit loops over pairs and dimensions, with torch.distributions densities."""
    m, d = z.shape
    log_norm = math.log(m * dataset_size)
    mi, tc, dim_kl = [], [], []
    for i in range(m):
        joint = torch.stack([Normal(mu[k], torch.exp(0.5 * logvar[k])).log_prob(z[i]).sum() for k in range(m)])
        log_qz = torch.logsumexp(joint, 0) - log_norm
        marginals = 0.0
        for j in range(d):
            per_k = torch.stack([Normal(mu[k, j], torch.exp(0.5 * logvar[k, j])).log_prob(z[i, j]) for k in range(m)])
            marginals = marginals + torch.logsumexp(per_k, 0) - log_norm
        log_q = Normal(mu[i], torch.exp(0.5 * logvar[i])).log_prob(z[i]).sum()
        log_p = Normal(0.0, 1.0).log_prob(z[i]).sum()
        mi.append(log_q - log_qz)
        tc.append(log_qz - marginals)
        dim_kl.append(marginals - log_p)
    return torch.stack(mi), torch.stack(tc), torch.stack(dim_kl)


def test_tc_decomposition_matches_brute_force_and_sums_to_the_kl():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 3, dtype=torch.float64), 0.4 * torch.randn(5, 3, dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(5, 3, dtype=torch.float64)
    log_q = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    log_p = Normal(0.0, 1.0).log_prob(z).sum(-1)
    parts = decompose_kl(z, GaussianPosterior(3), (mu, logvar), log_q, log_p, dataset_size=1000)
    mi, tc, dim_kl = brute_force_decomposition(z, mu, logvar, 1000)
    torch.testing.assert_close(parts.mi, mi)
    torch.testing.assert_close(parts.tc, tc)
    torch.testing.assert_close(parts.dim_kl, dim_kl)
    torch.testing.assert_close(parts.mi + parts.tc + parts.dim_kl, log_q - log_p)


def test_tc_objective_terms_average_to_the_analytic_kl_and_unit_weights_give_the_elbo():
    torch.manual_seed(0)
    # small MLP networks: the terms depend on the posterior and the draws, not on the networks (3000 passes)
    model = vaezoo.create_model("beta-tcvae-conv", input_shape=(1, 8, 8), latent_dim=3, alpha=1.0, beta=1.0, gamma=1.0,
                                encoder="mlp", decoder="mlp", **{"encoder.hidden_dims": [8], "decoder.hidden_dims": [8]})
    x = batch(8)
    sums, analytic = [], None
    with torch.no_grad():
        for _ in range(3000):
            out = model(x)
            sums.append(out.terms["mi"] + out.terms["tc"] + out.terms["dim_kl"])
            analytic = out.kl  # closed-form KL to N(0, I), the same every draw
            torch.testing.assert_close(out.loss, -(out.recon - sums[-1]).mean())
    sums = torch.stack(sums)
    se = sums.std(0) / math.sqrt(len(sums))
    assert ((sums.mean(0) - analytic).abs() < 4 * se + 1e-3).all()


def test_tc_weight_only_scales_the_total_correlation():
    torch.manual_seed(0)
    model = vaezoo.create_model("beta-tcvae-conv", input_shape=(1, 8, 8), latent_dim=3)
    x = batch(8)
    torch.manual_seed(1)
    out = model(x)
    expected = -(out.recon - out.terms["mi"] - 6.0 * out.terms["tc"] - out.terms["dim_kl"]).mean()
    torch.testing.assert_close(out.loss, expected)


# --- MMD ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_mmd_of_a_sample_with_itself_is_zero_and_grows_with_a_shift(kernel):
    a = torch.randn(64, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert mmd(a, a, kernel).item() == pytest.approx(0.0, abs=1e-12)
    values = [mmd(a, a + shift, kernel).item() for shift in (0.25, 0.5, 1.0, 2.0)]
    assert 0 < values[0] < values[1] < values[2] < values[3]


@pytest.mark.parametrize("kernel, formula", [
    ("imq", lambda sq, d: 2 * d / (2 * d + sq)),
    ("rbf", lambda sq, d: math.exp(-sq / (2 * d))),
])
def test_mmd_equals_a_double_loop(kernel, formula):
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    k = lambda u, v: formula(float(((u - v) ** 2).sum()), 3)  # noqa: E731
    mean = lambda s, t: sum(k(u, v) for u in s for v in t) / (len(s) * len(t))  # noqa: E731
    assert mmd(a, b, kernel).item() == pytest.approx(mean(a, a) + mean(b, b) - 2 * mean(a, b), rel=1e-12)
    assert {"imq": imq_kernel, "rbf": rbf_kernel}[kernel](a, b, 1.0).shape == (6, 5)


def test_mmd_objective_weights():
    torch.manual_seed(0)
    model = vaezoo.create_model("wae-mmd-conv", input_shape=(1, 8, 8), latent_dim=3)
    out = model(batch())
    torch.testing.assert_close(out.loss, -(out.recon.mean() - 100.0 * out.terms["mmd"]))
    info = vaezoo.create_model("info-vae-mlp", input_shape=(1, 8, 8), latent_dim=3)
    out = info(batch())
    torch.testing.assert_close(out.loss, -(out.recon.mean() - out.kl.mean() - 100.0 * out.terms["mmd"]))
    assert info.objective.kernel == "rbf" and model.objective.kernel == "imq"


# --- ELBO: free bits and warm-up ------------------------------------------------------------------------------


def test_free_bits_floor_each_dimension_of_the_batch_mean_kl():
    torch.manual_seed(0)
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=5, free_bits=0.5)
    x = batch(7)
    out = model(x)
    q = Normal(out.q_params[0], torch.exp(0.5 * out.q_params[1]))
    per_dim = kl_divergence(q, Normal(0.0, 1.0))
    torch.testing.assert_close(out.terms["kl_per_dim"], per_dim)
    torch.testing.assert_close(out.kl, per_dim.sum(-1))
    expected = -(out.recon.mean() - per_dim.mean(0).clamp(min=0.5).sum())
    torch.testing.assert_close(out.loss, expected)
    assert (per_dim.mean(0) < 0.5).any()  # the floor is active for this untrained model
    with pytest.raises(CombinationError, match="objective 'vaezoo:elbo' needs the KL split .* prior MixtureOfGaussians has no closed-form KL"):
        vaezoo.create_model("mog-vae-mlp", input_shape=(1, 8, 8), free_bits=0.5)


def test_kl_warm_up_follows_the_step():
    torch.manual_seed(0)
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), beta=2.0, warmup_steps=100)
    x = batch()
    for step, weight in ((0, 0.0), (50, 1.0), (100, 2.0), (500, 2.0)):
        model.objective.step = step
        torch.manual_seed(1)
        out = model(x)
        torch.testing.assert_close(out.loss, -(out.recon.mean() - weight * out.kl.mean()))
