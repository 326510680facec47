"""Every combination of the built-in parts, plain and conditional: refused at build with a one-line reason that
names the parts, or it trains a step, evaluates every defined metric, samples, reconstructs and reloads."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from safetensors.torch import load, save

import vaezoo
from vaezoo import evaluate
from vaezoo.core import FEATURES
from vaezoo.discovery import get_registry, reset_registry
from vaezoo.errors import CombinationError
from vaezoo.factory import rebuild

SHAPE = (1, 8, 8)
LATENT = 4
CLASSES = 3
#: Small options per part, so that thousands of combinations run in minutes.
SMALL = {
    ("encoder", "mlp"): {"hidden_dims": [16]},
    ("encoder", "conv"): {"channels": [4], "hidden": 16},
    ("encoder", "resnet"): {"channels": [4], "blocks": 1, "hidden": 16},
    ("decoder", "mlp"): {"hidden_dims": [16]},
    ("decoder", "conv"): {"channels": [4], "hidden": 16},
    ("decoder", "resnet"): {"channels": [4], "blocks": 1, "hidden": 16},
    ("prior", "mog"): {"components": 3},
    ("prior", "vamp"): {"components": 3},
    ("prior", "ladder"): {"layers": 2, "hidden": 8},
    ("objective", "iwae"): {"samples": 2},
    ("objective", "mmd"): {"mmd_weight": 10.0},
}
#: Objectives with the options that change what they need of the posterior.
OBJECTIVES = {"elbo": {}, "elbo-free-bits": {"free_bits": 0.1}, "tc": {}, "mmd": {}, "iwae": {}}


def builtin(kind: str) -> list[str]:
    reset_registry()
    return [e.name for e in get_registry().entries(kind) if e.plugin == "vaezoo"]


COMBINATIONS = list(itertools.product(
    builtin("encoder"), builtin("decoder"), builtin("posterior"), builtin("prior"), builtin("likelihood"),
    list(OBJECTIVES), [0, CLASSES],
))


def expected_refusal(posterior: str, prior: str, objective: str) -> str | None:
    """The parts a refusal must name, written from what each built-in part offers (independently of the code)."""
    if posterior == "ladder" and prior != "ladder":
        return "posterior 'vaezoo:ladder' cannot be used with prior"
    if objective == "tc" and posterior == "ladder":
        return "objective 'vaezoo:tc' needs log q(z_d|x)"
    if objective == "elbo-free-bits" and (posterior == "ladder" or prior in {"mog", "vamp", "ladder"}):
        return "objective 'vaezoo:elbo' needs the KL split into one term per latent dimension"
    return None


def overrides_for(encoder, decoder, posterior, prior, likelihood, objective) -> dict:
    chosen = {"encoder": encoder, "decoder": decoder, "posterior": posterior, "prior": prior,
              "likelihood": likelihood, "objective": "elbo" if objective.startswith("elbo") else objective}
    result: dict = dict(chosen)
    for kind, name in chosen.items():
        for key, value in SMALL.get((kind, name), {}).items():
            result[f"{kind}.{key}"] = value
    for key, value in OBJECTIVES[objective].items():
        result[f"objective.{key}"] = value
    return result


def finite(value) -> bool:
    return all(math.isfinite(v) for v in value) if isinstance(value, list) else math.isfinite(value)


@pytest.mark.parametrize(
    "encoder,decoder,posterior,prior,likelihood,objective,classes", COMBINATIONS,
    ids=["-".join(map(str, c)) for c in COMBINATIONS],
)
def test_combination_is_refused_or_works_end_to_end(encoder, decoder, posterior, prior, likelihood, objective, classes):
    torch.manual_seed(0)
    overrides = overrides_for(encoder, decoder, posterior, prior, likelihood, objective)
    refusal = expected_refusal(posterior, prior, objective)
    if refusal is not None:
        with pytest.raises(CombinationError) as info:
            vaezoo.create_model("vae-mlp", input_shape=SHAPE, latent_dim=LATENT, num_classes=classes, **overrides)
        message = str(info.value)
        assert refusal in message and "\n" not in message, message
        return
    model = vaezoo.create_model("vae-mlp", input_shape=SHAPE, latent_dim=LATENT, num_classes=classes, **overrides)
    x = torch.rand(6, *SHAPE).bernoulli()
    y = torch.arange(6) % CLASSES if classes else None

    # one training step: finite loss and gradients, and the weights move
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    out = model(x, y)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert out.recon.shape == out.kl.shape == (6,)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    optimizer.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))

    # every metric that is defined, and a reason for every one that is not
    result = evaluate.summary(model, x, y, nll_samples=3)
    for metric, feature in evaluate.METRIC_NEEDS.items():
        reason = model.posterior.why_not(feature, model.prior)
        if reason is None:
            assert finite(result[metric]), (metric, result[metric])
        else:
            assert metric not in result and result["unavailable"][metric] == reason
    for metric in ("elbo", "recon", "kl"):
        assert finite(result[metric])
    assert 0 <= result["active_units"] <= LATENT

    # pictures: samples and reconstructions have the input's shape and the likelihood's range
    samples = model.sample(4)
    assert samples.shape == (4, *SHAPE) and torch.isfinite(samples).all()
    assert model.reconstruct(x, y).shape == x.shape

    # save and load: the rebuilt model computes the same codes
    model.eval()
    copy = rebuild(model.config)
    copy.load_state_dict(load(save({k: v.contiguous() for k, v in model.state_dict().items()})))
    copy.eval()
    torch.testing.assert_close(copy.posterior_mean(x, y), model.posterior_mean(x, y))


def test_the_combinations_cover_every_builtin_part_and_both_kinds_of_refusal():
    parts = {kind: builtin(kind) for kind in ("encoder", "decoder", "posterior", "prior", "likelihood", "objective")}
    assert parts["posterior"] == ["gaussian", "ladder"] and len(parts["prior"]) == 5
    assert {o if o in parts["objective"] else "elbo" for o in OBJECTIVES} == set(parts["objective"])
    refused = [c for c in COMBINATIONS if expected_refusal(c[2], c[3], c[5])]
    assert 0 < len(refused) < len(COMBINATIONS)
    assert set(FEATURES) == set(evaluate.METRIC_NEEDS.values())
