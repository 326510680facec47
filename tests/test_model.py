"""The VAE: shapes for several inputs, the ELBO against an independent computation, and its methods."""
from __future__ import annotations

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

import vaezoo
from vaezoo.core.estimators import elbo_terms


@pytest.mark.parametrize("variant", ["vae-mlp", "vae-conv", "vae-resnet"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (2, 5, 7)])
def test_variants_build_for_any_image_shape(variant, shape):
    model = vaezoo.create_model(variant, input_shape=shape, latent_dim=4)
    x = torch.rand(3, *shape).bernoulli()
    out = model(x)
    assert out.params.shape == (3, *shape)
    assert out.z.shape == out.q_params[0].shape == out.q_params[1].shape == (3, 4)
    assert out.recon.shape == out.kl.shape == (3,)
    assert torch.isfinite(out.loss)
    assert model.sample(5).shape == (5, *shape)
    assert model.reconstruct(x).shape == x.shape
    assert model.decode(torch.zeros(2, 4)).shape == (2, *shape)


def test_elbo_matches_torch_distributions():
    torch.manual_seed(0)
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=5)
    x = torch.rand(6, 1, 8, 8).bernoulli()
    out = elbo_terms(model, x)
    mu, logvar = model.encode(x)
    q = Normal(mu, torch.exp(0.5 * logvar))
    expected_kl = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
    expected_recon = Bernoulli(logits=model.decoder(out.z)).log_prob(x).flatten(1).sum(-1)
    torch.testing.assert_close(out.kl, expected_kl)
    torch.testing.assert_close(out.recon, expected_recon)
    torch.testing.assert_close(out.loss, -(expected_recon - expected_kl).mean())
    # z really is a draw from q: standardized it is N(0, 1)-like, not the mean itself
    assert not torch.allclose(out.z, mu)


def test_beta_weights_only_the_kl():
    torch.manual_seed(1)
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=5, beta=3.0)
    x = torch.rand(4, 1, 8, 8).bernoulli()
    torch.manual_seed(2)
    out = model(x)
    torch.testing.assert_close(out.loss, -(out.recon - 3.0 * out.kl).mean())


def test_gaussian_likelihood_matches_torch_distributions():
    model = vaezoo.create_model("vae-conv", input_shape=(1, 8, 8), likelihood="gaussian", sigma=0.3, learn_sigma=True)
    x = torch.rand(4, 1, 8, 8)
    params = torch.rand(4, 1, 8, 8)
    expected = Normal(params, 0.3).log_prob(x).flatten(1).sum(-1)
    torch.testing.assert_close(model.likelihood.log_prob(params, x), expected)
    assert model.likelihood.log_sigma.requires_grad


def test_training_steps_lower_the_loss():
    torch.manual_seed(0)
    model = vaezoo.create_model("vae-conv", input_shape=(1, 8, 8), latent_dim=4)
    x = (torch.rand(4, 1, 8, 8) > 0.5).float().repeat(16, 1, 1, 1)  # four patterns: learnable structure
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = model(x).loss.item()
    for _ in range(200):
        loss = model(x).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first / 2
