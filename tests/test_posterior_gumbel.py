"""The Gumbel-softmax and joint posteriors against independent computations: at low temperature the relaxed
draws are one-hot with the categorical's probabilities; the KL is torch.distributions' categorical KL; the
temperature follows its schedule; eval mode draws exact one-hot categorical samples."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical, kl_divergence

import vaezoo
from vaezoo.components.posteriors.gumbel import GumbelSoftmaxPosterior
from vaezoo.components.posteriors.joint import JointPosterior
from vaezoo.components.priors.categorical import CategoricalPrior, JointPrior
from vaezoo.errors import CombinationError


def test_low_temperature_draws_are_one_hot_with_the_categorical_probabilities():
    torch.manual_seed(0)
    post = GumbelSoftmaxPosterior(8, categories=4, temperature=1e-3, min_temperature=1e-3).train()
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5, -3.0, 1.0, 1.0, 0.0]])
    n = 40000
    z = post.draw((logits.expand(n, 8),), CategoricalPrior(8, 4)).z.view(n, 2, 4)
    assert (z.max(-1).values > 0.99).float().mean() > 0.99  # one-hot but for near ties of the scores (~0.3% at 1e-3)
    torch.testing.assert_close(z.sum(-1), torch.ones(n, 2))
    freq = (z > 0.5).float().mean(0)
    assert freq.sum(-1).sub(1).abs().max() < 0.005
    probs = torch.softmax(logits.view(2, 4), dim=-1)
    se = (probs * (1 - probs) / n).sqrt()
    assert ((freq - probs).abs() < 4.5 * se + 1e-4).all(), (freq, probs)


def test_eval_mode_draws_exact_one_hot_samples_and_training_mode_relaxed_ones():
    torch.manual_seed(1)
    post, prior = GumbelSoftmaxPosterior(6, categories=3), CategoricalPrior(6, 3)
    logits = torch.randn(500, 6)
    z = post.eval().draw((logits,), prior).z
    assert set(z.unique().tolist()) == {0.0, 1.0} and (z.view(500, 2, 3).sum(-1) == 1).all()
    z = post.train().draw((logits,), prior).z
    assert ((z > 0) & (z < 1)).float().mean() > 0.5


def test_kl_is_the_categorical_kl_against_uniform_and_learned_priors():
    torch.manual_seed(2)
    post = GumbelSoftmaxPosterior(12, categories=4)
    logits = torch.randn(5, 12)
    for learn in (False, True):
        prior = CategoricalPrior(12, 4, learn=learn)
        if learn:
            with torch.no_grad():
                prior.logits.copy_(torch.randn(3, 4))
        kl = post.draw((logits,), prior).kl
        expected = kl_divergence(Categorical(logits=logits.view(5, 3, 4)), Categorical(logits=prior.logits)).sum(-1)
        torch.testing.assert_close(kl, expected)
    assert post.draw((torch.zeros(5, 12),), CategoricalPrior(12, 4)).kl.abs().max() < 1e-6


def test_log_q_is_the_log_probability_of_the_drawn_code():
    torch.manual_seed(3)
    post = GumbelSoftmaxPosterior(6, categories=3).eval()
    logits = torch.randn(4, 6)
    latent = post.draw((logits,), CategoricalPrior(6, 3))
    expected = Categorical(logits=logits.view(4, 2, 3)).log_prob(latent.z.view(4, 2, 3).argmax(-1)).sum(-1)
    torch.testing.assert_close(latent.log_q, expected)


def test_temperature_anneals_exponentially_to_its_floor():
    post = GumbelSoftmaxPosterior(4, categories=2, temperature=1.0, min_temperature=0.5, anneal_rate=1e-3)
    assert post.tau() == 1.0
    post.step = 100
    assert post.tau() == pytest.approx(math.exp(-0.1))
    post.step = 10**6
    assert post.tau() == 0.5


def test_straight_through_draws_are_one_hot_with_the_relaxed_gradient():
    torch.manual_seed(4)
    post = GumbelSoftmaxPosterior(4, categories=4, hard=True).train()
    logits = torch.randn(3, 4, requires_grad=True)
    z = post.draw((logits,), CategoricalPrior(4, 4)).z
    torch.testing.assert_close(z.detach(), z.detach().round())
    assert (z.detach().round().sum(-1) == 1).all()
    (z * torch.arange(4.0)).sum().backward()
    assert logits.grad.abs().sum() > 0


def test_joint_posterior_adds_the_gaussian_and_categorical_kls():
    torch.manual_seed(5)
    post, prior = JointPosterior(7, continuous=3, categories=2), JointPrior(7, continuous=3, categories=2)
    mu, logvar, logits = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 4)
    latent = post.draw((mu, logvar, logits), prior)
    gaussian = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1)
    categorical = kl_divergence(Categorical(logits=logits.view(4, 2, 2)), Categorical(logits=torch.zeros(2, 2))).sum(-1)
    torch.testing.assert_close(latent.kl, gaussian + categorical)
    assert latent.z.shape == (4, 7)
    torch.testing.assert_close(post.mean((mu, logvar, logits), prior)[:, :3], mu)


def test_joint_prior_must_split_the_latents_like_the_posterior():
    shape, dims = (1, 8, 8), {"encoder.hidden_dims": [8], "decoder.hidden_dims": [8]}
    with pytest.raises(CombinationError, match="3 continuous dimensions and 2 categories, the prior 5 and 2"):
        vaezoo.create_model("vae-mlp", input_shape=shape, latent_dim=9, posterior="joint", prior="joint",
                            **{"posterior.continuous": 3, "posterior.categories": 2, "prior.continuous": 5,
                               "prior.categories": 2}, **dims)
    model = vaezoo.create_model("vae-mlp", input_shape=shape, latent_dim=9, posterior="joint", prior="joint",
                                continuous=3, categories=2, **dims)
    assert model.posterior.param_dims() == (3, 3, 6)


def test_the_training_loop_hands_the_step_to_the_posterior():
    from vaezoo.data.splits import Splits, TensorImages
    from vaezoo.training.trainer import TrainConfig, Trainer

    x = torch.rand(20, 1, 4, 4).bernoulli()
    data = Splits("tiny", TensorImages(x, torch.zeros(20, dtype=torch.long)),
                  TensorImages(x[:4], torch.zeros(4, dtype=torch.long)))
    model = vaezoo.create_model("gumbel-vae-mlp", input_shape=(1, 4, 4), latent_dim=4, categories=2,
                                **{"encoder.hidden_dims": [8], "decoder.hidden_dims": [8]})
    trainer = Trainer(TrainConfig("gumbel-vae-mlp", "tiny", "unused", batch_size=10), data, model, None, False)
    trainer.state.step = 7
    trainer.step(x[:10], None, 10)
    assert model.posterior.step == model.objective.step == 7
