"""The controlled-capacity objective (Burgess et al., 2018; JointVAE's two capacities, Dupont, 2018), against the
formulas computed independently from the model's parts."""
from __future__ import annotations

import math

import pytest
import torch

import vaezoo
from vaezoo.components.objectives.capacity import capacity_at
from vaezoo.errors import BadOverrideError, CombinationError

SMALL = {"encoder.hidden_dims": [8], "decoder.hidden_dims": [8]}


def test_the_capacity_rises_linearly_then_holds():
    assert [capacity_at(t, 25.0, 100) for t in (0, 40, 100, 250)] == [0.0, 10.0, 25.0, 25.0]
    assert capacity_at(0, 3.0, 0) == 3.0  # no schedule: the whole capacity from the start


def test_the_loss_is_reconstruction_plus_gamma_times_the_distance_of_the_kl_to_the_capacity():
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 4, 4), latent_dim=3, objective="capacity",
                                **SMALL, **{"objective.gamma": 7.0, "objective.capacity": 20.0,
                                            "objective.capacity_steps": 8})
    x = torch.rand(5, 1, 4, 4)
    for step, capacity in ((0, 0.0), (2, 5.0), (8, 20.0), (30, 20.0)):
        model.objective.step = step
        torch.manual_seed(1)
        out = model(x)
        mu, logvar = model.encode(x)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1)  # the closed form against N(0, I)
        expected = -out.recon.mean() + 7.0 * (kl.mean() - capacity).abs()
        torch.testing.assert_close(out.kl, kl, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-4)
        assert float(out.terms["capacity"][0]) == capacity


def joint_model(**options: object) -> vaezoo.VAE:
    return vaezoo.create_model(
        "joint-vae-capacity-conv", input_shape=(1, 8, 8), latent_dim=6, **{
            "encoder.channels": [4], "encoder.hidden": 8, "decoder.channels": [4], "decoder.hidden": 8,
            "posterior.continuous": 2, "posterior.categories": 2, "prior.continuous": 2, "prior.categories": 2,
            **{f"objective.{k}": v for k, v in options.items()}})


def test_joint_latents_hold_each_part_at_its_own_capacity_the_discrete_one_capped_at_its_largest_kl():
    model = joint_model(gamma=3.0, discrete_gamma=2.0, capacity=10.0, discrete_capacity=4.0, capacity_steps=10)
    x = torch.rand(6, 1, 8, 8)
    # 2 binary variables against a uniform prior: the discrete KL is at most 2 log 2 = 1.386 < 4
    assert model.posterior.discrete_kl_bound(model.prior) == pytest.approx(2 * math.log(2))
    for step, c_c, c_d in ((0, 0.0, 0.0), (2, 2.0, 0.8), (5, 5.0, 2 * math.log(2)), (20, 10.0, 2 * math.log(2))):
        model.objective.step = step
        torch.manual_seed(3)
        out = model(x)
        mu, logvar, logits = model.encode(x)
        kl_c = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(-1)
        log_q = torch.log_softmax(logits.unflatten(-1, (2, 2)), -1)
        kl_d = (log_q.exp() * (log_q - math.log(0.5))).sum((-1, -2))
        torch.testing.assert_close(out.kl, kl_c + kl_d, rtol=1e-5, atol=1e-5)
        expected = -out.recon.mean() + 3.0 * (kl_c.mean() - c_c).abs() + 2.0 * (kl_d.mean() - c_d).abs()
        torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-4)
        assert float(out.terms["discrete_capacity"][0]) == pytest.approx(c_d)


def test_the_joint_posterior_splits_the_kl_of_its_usual_draw():
    model = joint_model(discrete_capacity=1.0)
    params = model.encode(torch.rand(3, 1, 8, 8))
    torch.manual_seed(0)
    parts = model.posterior.kl_parts(params, model.prior)
    torch.manual_seed(0)
    whole = model.posterior.draw(params, model.prior)
    torch.testing.assert_close(parts.kl.sum(-1), whole.kl)
    torch.testing.assert_close(parts.z, whole.z)


def test_a_discrete_capacity_needs_a_posterior_with_a_discrete_part():
    with pytest.raises(CombinationError, match="needs the KL split into its continuous and discrete parts.*"
                       "a Gaussian posterior has no discrete part"):
        vaezoo.create_model("vae-mlp", input_shape=(1, 4, 4), objective="capacity", **SMALL,
                            **{"objective.discrete_capacity": 1.0})
    with pytest.raises(BadOverrideError, match="discrete_gamma weighs the discrete capacity term"):
        vaezoo.create_model("vae-mlp", input_shape=(1, 4, 4), objective="capacity", **SMALL,
                            **{"objective.discrete_gamma": 1.0})
    with pytest.raises(BadOverrideError, match="capacity_steps must be a non-negative int"):
        vaezoo.create_model("vae-mlp", input_shape=(1, 4, 4), objective="capacity", **SMALL,
                            **{"objective.capacity_steps": -1})
