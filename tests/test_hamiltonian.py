"""The Hamiltonian VAE objective (Caterini et al., 2018): leapfrog preserves volume and is reversible, and its
bound is a bound of log p(x) whose importance weights are exact (their mean is p(x))."""
from __future__ import annotations

import math

import pytest
import torch

import vaezoo
from vaezoo.components.objectives.hamiltonian import leapfrog, tempering_schedule
from vaezoo.core.estimators import iw_terms


def banana_grad(v: torch.Tensor) -> torch.Tensor:
    """The gradient of a smooth, non-quadratic log density in 3-D (so the leapfrog map is not linear)."""
    with torch.enable_grad():
        v = v if v.requires_grad else v.detach().requires_grad_()
        log_p = -0.5 * v[..., 0] ** 2 - 0.5 * (v[..., 1] - v[..., 0] ** 2) ** 2 - torch.cosh(v[..., 2])
        (grad,) = torch.autograd.grad(log_p.sum(), v, create_graph=True)
    return grad


def test_leapfrog_preserves_volume_and_is_reversible():
    generator = torch.Generator().manual_seed(0)
    step = torch.tensor([0.3, 0.1, 0.2], dtype=torch.float64)
    for _ in range(5):
        z, rho = (torch.randn(3, generator=generator, dtype=torch.float64) for _ in range(2))

        def joint(state: torch.Tensor) -> torch.Tensor:
            return torch.cat(leapfrog(state[:3], state[3:], banana_grad, step))

        jacobian = torch.autograd.functional.jacobian(joint, torch.cat([z, rho]))
        assert torch.linalg.det(jacobian).item() == pytest.approx(1.0, abs=1e-9)
        z1, rho1 = leapfrog(z, rho, banana_grad, step)
        z2, rho2 = leapfrog(z1, -rho1, banana_grad, step)  # run back with the momentum negated
        torch.testing.assert_close(z2, z)
        torch.testing.assert_close(-rho2, rho)


def test_the_tempering_schedule_runs_from_beta_0_to_one():
    roots = tempering_schedule(torch.tensor(0.25), 4)
    assert roots[0].item() == pytest.approx(0.5) and roots[-1].item() == pytest.approx(1.0)
    assert all(a < b for a, b in zip(roots, roots[1:]))


def tiny_model(**objective):
    torch.manual_seed(0)
    options = {f"objective.{k}": v for k, v in objective.items()}
    model = vaezoo.create_model("hamiltonian-vae-mlp", input_shape=(1, 3, 3), latent_dim=2,
                                **{"encoder.hidden_dims": [8], "decoder.hidden_dims": [8], **options})
    with torch.no_grad():  # spread the decoder so that the posterior, and the dynamics, matter
        for p in model.decoder.parameters():
            p.mul_(3.0)
    return model.eval()


@pytest.mark.parametrize("tempered", [True, False])
def test_the_bound_is_below_log_p_x_and_its_weights_are_exact(tempered):
    model = tiny_model(steps=3, step_size=0.3, initial_beta=0.3, tempered=tempered)
    x = torch.tensor([[[[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]]])
    with torch.no_grad():
        log_p = iw_terms(model, x, 50_000).terms["iw_bound"].item()  # the posterior as proposal: near exact
        elbo = model(x.expand(20_000, 1, 3, 3)).elbo.double()
    assert elbo.mean().item() < log_p
    # q_K(z_K, rho_K) is a normalized density and the target p(x, z) N(rho; 0, I) integrates to p(x): the
    # importance weights exp(ELBO) average to p(x) (a wrong tempering log-det moves this by D/2 log beta_0 = 1.2)
    estimate = (torch.logsumexp(elbo, 0) - math.log(len(elbo))).item()
    assert estimate == pytest.approx(log_p, abs=0.1)


def test_the_step_sizes_and_temperature_learn_and_bad_options_are_refused():
    model = tiny_model().train()
    model(torch.rand(4, 1, 3, 3).bernoulli()).loss.backward()
    assert model.objective.log_step_size.grad.abs().sum() > 0 and model.objective.raw_root_beta.grad != 0
    for options, message in (({"steps": 0}, "steps must be a positive int"), ({"step_size": 0.0}, "step_size must be"),
                             ({"initial_beta": 1.5}, "initial_beta must be in")):
        with pytest.raises(Exception, match=message):
            tiny_model(**options)
