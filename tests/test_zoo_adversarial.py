"""The adversarial objectives: FactorVAE's total-correlation estimate against the closed form on correlated
Gaussians, and each objective's losses against a direct computation, with the adversary's loss reaching the
adversary alone."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import vaezoo
from vaezoo.components.objectives.factor import FactorVAE, density_ratio, permute_dims
from vaezoo.components.objectives.vaegan import relaxed_bernoulli


def correlated(n: int, rho: float, generator: torch.Generator) -> torch.Tensor:
    """n draws of a 2-d Gaussian with unit variances and correlation rho."""
    cov = torch.tensor([[1.0, rho], [rho, 1.0]])
    return torch.randn(n, 2, generator=generator) @ torch.linalg.cholesky(cov).T


@pytest.mark.parametrize("rho", [0.0, 0.6, 0.8])
def test_factor_discriminator_estimates_the_total_correlation_of_gaussians(rho):
    torch.manual_seed(0)
    objective = FactorVAE(latent_dim=2, hidden_dims=[32, 32])
    optimizer = torch.optim.Adam(objective.adversary().parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 800)
    generator = torch.Generator().manual_seed(1)
    for _ in range(800):
        loss = objective.adversary_loss(None, None, None, SimpleNamespace(z=correlated(512, rho, generator)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():
        estimate = density_ratio(objective.discriminator(correlated(20000, rho, generator))).mean().item()
    closed_form = -0.5 * math.log(1 - rho**2)  # TC of a Gaussian: -1/2 log det of its correlation matrix
    assert abs(estimate - closed_form) < 0.05, (estimate, closed_form)


def test_permuting_dimensions_keeps_each_marginal_and_breaks_the_dependence():
    torch.manual_seed(0)
    z = correlated(5000, 0.9, torch.Generator().manual_seed(2))
    shuffled = permute_dims(z)
    for j in range(2):
        torch.testing.assert_close(shuffled[:, j].sort().values, z[:, j].sort().values)
    assert torch.corrcoef(z.T)[0, 1] > 0.85 and abs(torch.corrcoef(shuffled.T)[0, 1]) < 0.05


def batch(n: int = 6) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(3)).bernoulli()


def adversary_gets_every_gradient(model: vaezoo.VAE, loss: torch.Tensor) -> None:
    """The adversary's loss moves the adversary and nothing of the VAE."""
    model.zero_grad(set_to_none=True)
    loss.backward()
    adversary = {id(p) for p in model.objective.adversary().parameters()}
    assert all(p.grad is not None for p in model.objective.adversary().parameters())
    assert all(p.grad is None for p in model.parameters() if id(p) not in adversary)


def test_factor_vae_loss_is_the_elbo_plus_gamma_tc():
    torch.manual_seed(0)
    model = vaezoo.create_model("factor-vae-conv", input_shape=(1, 8, 8), gamma=3.0)
    x = batch()
    out = model(x)
    expected_tc = model.objective.discriminator(out.z).detach() @ torch.tensor([1.0, -1.0])
    torch.testing.assert_close(out.terms["tc"].detach(), expected_tc)
    torch.testing.assert_close(out.loss, -(out.recon - out.kl).mean() + 3.0 * out.terms["tc"].mean())
    adversary_gets_every_gradient(model, model.objective.adversary_loss(model, x, None, out))


def test_aae_fools_its_discriminator_and_the_discriminator_tells_prior_from_codes():
    torch.manual_seed(0)
    model = vaezoo.create_model("aae-conv", input_shape=(1, 8, 8), kl_weight=0.5, adversarial_weight=2.0)
    x = batch()
    out = model(x)
    logit = model.objective.discriminator(out.z).squeeze(-1)
    fool = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit), reduction="none")
    torch.testing.assert_close(out.loss, (-out.recon + 0.5 * out.kl + 2.0 * fool).mean())
    torch.manual_seed(5)
    loss = model.objective.adversary_loss(model, x, None, out)
    torch.manual_seed(5)
    real = model.objective.discriminator(model.prior.sample(6)).squeeze(-1)
    expected = F.binary_cross_entropy_with_logits(real, torch.ones(6)) + F.binary_cross_entropy_with_logits(
        logit, torch.zeros(6))
    torch.testing.assert_close(loss, expected)
    adversary_gets_every_gradient(model, loss)


def test_vae_gan_measures_reconstruction_in_the_discriminators_features():
    torch.manual_seed(0)
    model = vaezoo.create_model("vae-gan-conv", input_shape=(1, 8, 8), feature_weight=0.5, gan_weight=2.0)
    model.eval()  # the discriminator's power iteration holds still, so it gives the same features again
    x = batch()
    out = model(x)
    discriminator = model.objective.discriminator
    mean = model.likelihood.mean(out.params)
    reconstruction, generated = out.terms["reconstruction"], out.terms["generated"]
    # binarized data: the discriminator is shown relaxed Bernoulli draws of the decoded pixels, not their means
    assert ((reconstruction > 0) & (reconstruction < 1)).all() and not torch.allclose(reconstruction, mean)
    assert (reconstruction - 0.5).abs().mean() > (mean - 0.5).abs().mean()
    real_features, _ = discriminator(x)
    fake_features, fake_logit = discriminator(reconstruction)
    _, generated_logit = discriminator(generated)
    feature_recon = -0.5 * (real_features - fake_features).pow(2).sum(-1)
    fool = F.softplus(-fake_logit) + F.softplus(-generated_logit)  # -log sigmoid: 'real' for both fakes
    expected = -(out.recon + 0.5 * feature_recon - out.kl).mean() + 2.0 * fool.mean()
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters())
    adversary_gets_every_gradient(model, model.objective.adversary_loss(model, x, None, out))


@pytest.mark.parametrize("temperature", [0.1, 0.5, 2.0])
def test_a_relaxed_bernoulli_draw_exceeds_one_half_with_the_pixels_probability(temperature):
    torch.manual_seed(0)
    probs = torch.tensor([0.05, 0.3, 0.5, 0.9]).expand(100_000, 4)
    draws = relaxed_bernoulli(probs, temperature)
    assert ((draws >= 0) & (draws <= 1)).all()
    torch.testing.assert_close((draws > 0.5).float().mean(0), probs[0], atol=0.006, rtol=0)
    # sigmoid of logistic noise over the temperature: the draws spread towards {0, 1} as it falls
    near_binary = ((draws < 0.01) | (draws > 0.99)).float().mean().item()
    assert (near_binary > 0.8) if temperature == 0.1 else (near_binary < 0.5)
    probs = torch.full((3,), 0.7, requires_grad=True)
    relaxed_bernoulli(probs, temperature).sum().backward()
    assert (probs.grad >= 0).all() and probs.grad.sum() > 0  # draws rise with p (saturated ones hold still)


def test_vae_gan_shows_the_discriminator_the_mean_of_a_continuous_likelihood():
    torch.manual_seed(0)
    model = vaezoo.create_model("vae-gan-conv", input_shape=(1, 8, 8), likelihood="gaussian").eval()
    out = model(torch.rand(4, 1, 8, 8))
    torch.testing.assert_close(out.terms["reconstruction"], model.likelihood.mean(out.params))


# --- in the training loop: a second parameter group, stepped after the VAE --------------------------------------


def tiny_run(tmp_path, name: str, *extra: str) -> list[str]:
    return ["train", name, "--dataset", "digits", "--quiet", "--batch-size", "256", "--set", "encoder.channels=[4]",
            "--set", "decoder.channels=[4]", "--set", "encoder.hidden=16", "--set", "decoder.hidden=16", *extra]


def test_the_trainer_steps_the_vae_and_the_adversary_each_with_its_own_loss(tmp_path, monkeypatch):
    from vaezoo.data.datasets import load_dataset
    from vaezoo.training.trainer import TrainConfig, Trainer

    torch.manual_seed(0)
    data = load_dataset("digits")
    model = vaezoo.create_model("factor-vae-conv", input_shape=data.input_shape, steps=3,
                                **{"objective.hidden_dims": [16]})
    trainer = Trainer(TrainConfig("factor-vae-conv", "digits", str(tmp_path)), data, model, tmp_path, False)
    calls = []
    real = model.objective.adversary_loss
    monkeypatch.setattr(model.objective, "adversary_loss", lambda *a: calls.append(1) or 0.0 * real(*a))
    adversary = [p.detach().clone() for p in model.objective.adversary().parameters()]
    vae = [p.detach().clone() for p in trainer.vae_params]
    batches = trainer.batches.epoch(1, 0)
    assert trainer.step(*trainer.batch(0, next(batches))) is not None
    assert len(calls) == 3  # `steps` adversary updates per VAE update
    # the VAE's loss (which depends on the discriminator) moved the VAE and not the discriminator
    assert all(torch.equal(a, p) for a, p in zip(adversary, model.objective.adversary().parameters()))
    assert any(not torch.equal(a, p) for a, p in zip(vae, trainer.vae_params))
    monkeypatch.setattr(model.objective, "adversary_loss", real)
    assert trainer.step(*trainer.batch(1, next(batches))) is not None
    assert any(not torch.equal(a, p) for a, p in zip(adversary, model.objective.adversary().parameters()))


@pytest.mark.parametrize("name", ["factor-vae-conv", "aae-conv", "vae-gan-conv"])
def test_an_adversarial_run_resumes_to_the_weights_of_an_unbroken_one(tmp_path, name, capsys):
    from safetensors.torch import load_file

    from vaezoo.cli.main import main

    assert main(tiny_run(tmp_path, name, "--epochs", "2", "--out", str(tmp_path / "straight"))) == 0
    assert main(tiny_run(tmp_path, name, "--epochs", "1", "--out", str(tmp_path / "broken"))) == 0
    assert main(tiny_run(tmp_path, name, "--epochs", "2", "--out", str(tmp_path / "broken"), "--resume")) == 0
    straight = load_file(tmp_path / "straight" / "model.safetensors")
    resumed = load_file(tmp_path / "broken" / "model.safetensors")
    assert any(k.startswith("objective.discriminator") for k in straight)
    assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)
