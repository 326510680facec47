"""An objective's own held-out loss and terms (vaezoo.analysis.objective_terms), checked against the objective
computed by hand: a deterministic WAE-MMD (z = the encoder's mean), whose only random draws are the prior's."""
from __future__ import annotations

import pytest
import torch

import vaezoo
from vaezoo.analysis.objective_terms import held_out_objective
from vaezoo.core import Latent, Posterior


class PointPosterior(Posterior):
    """z = mu, no KL: the deterministic encoder of a WAE."""

    def draw(self, params, prior, samples=None):
        mu = params[0]
        return Latent(mu, torch.zeros(len(mu)), torch.zeros(len(mu)))

    def mean(self, params, prior):
        return params[0]


def wae(seed: int = 0) -> vaezoo.VAE:
    torch.manual_seed(seed)
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 4, 4), latent_dim=3, objective="mmd",
                                kl_weight=0.0, mmd_weight=7.0, kernel="imq", scale=1.0)
    model.posterior = PointPosterior(3)
    return model


def imq_mmd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The V-statistic MMD^2 with the IMQ kernel C / (C + |a - b|^2), C = 2 D, written out element by element."""
    c = 2.0 * a.shape[1]

    def mean_kernel(u, v):
        return sum(c / (c + float(((ui - vj) ** 2).sum())) for ui in u for vj in v) / (len(u) * len(v))

    return mean_kernel(a, a) + mean_kernel(b, b) - 2 * mean_kernel(a, b)


def test_a_deterministic_wae_held_out_loss_and_mmd_are_the_objective_by_hand():
    model = wae()
    x = (torch.rand(7, 1, 4, 4, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    batches = [(x[:4], None), (x[4:], None)]  # unequal batches: each batch mean is weighted by its rows
    got = held_out_objective(model, batches, seed=5)

    torch.manual_seed(5)  # the prior's draws are the only random numbers, in batch order
    loss_sum = mmd_sum = 0.0
    with torch.no_grad():
        for xb, _ in batches:
            z = model.encoder(xb)[0]
            recon = model.likelihood.log_prob(model.decoder(z), xb)
            divergence = imq_mmd(z, model.prior.sample(len(xb)))
            loss_sum += float(-(recon.mean() - 7.0 * divergence)) * len(xb)
            mmd_sum += divergence * len(xb)
    assert set(got) == {"loss", "mmd"}
    assert got["loss"] == pytest.approx(loss_sum / 7, rel=1e-5)
    assert got["mmd"] == pytest.approx(mmd_sum / 7, rel=1e-5)
    assert got["mmd"] > 0


def test_same_seed_same_numbers_and_training_state_untouched():
    model = wae()
    x = torch.rand(5, 1, 4, 4)
    model.train()
    torch.manual_seed(9)
    expected_next = torch.rand(1)
    torch.manual_seed(9)
    first = held_out_objective(model, [(x, None)])
    assert torch.equal(torch.rand(1), expected_next)  # the global random state is as it was
    assert model.training
    assert held_out_objective(model, [(x, None)]) == first


def test_per_example_terms_are_averaged_over_examples_and_others_left_out():
    torch.manual_seed(0)
    model = vaezoo.create_model("iwae-mlp", input_shape=(1, 4, 4), latent_dim=2, samples=3)
    x = (torch.rand(6, 1, 4, 4) > 0.5).float()
    got = held_out_objective(model, [(x[:2], None), (x[2:], None)])
    assert set(got) == {"loss", "iw_bound"}  # log_w [K, B] is not one number per example
    assert got["loss"] == pytest.approx(-got["iw_bound"])


def test_no_examples_is_refused():
    with pytest.raises(ValueError, match="hold no examples"):
        held_out_objective(wae(), [])


def test_the_trainer_records_the_objectives_held_out_loss_and_terms_each_epoch():
    """val_loss and val_loss_<term> of every epoch are held_out_objective of the held-out set, beside the ELBO."""
    model = wae()
    x = torch.rand(96, 1, 4, 4)
    run = vaezoo.fit(model, x[:64], x[64:], epochs=2, batch_size=16, binarize="none")
    last = run.metrics[-1]
    expected = held_out_objective(model, [(x[64:], None)])
    assert last["val_loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert last["val_loss_mmd"] == pytest.approx(expected["mmd"], rel=1e-5)
    assert "val_elbo" in last and all("val_loss" in m for m in run.metrics)
