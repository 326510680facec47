"""Every interaction of the built-in parts, plain and conditional: each combination is refused at build with a
one-line reason that names the parts, or it trains a step, evaluates every defined metric, samples,
reconstructs and reloads.

The full product of all kinds is too large to run (thousands of combinations per new part), so two products
together cover every interaction:

(A) every encoder x decoder x posterior x likelihood x {plain, conditional}, each posterior with a prior and
    the ELBO, which it accepts. The encoder meets the posterior (it returns the tensors `param_dims` names)
    and the labels; the decoder meets the likelihood (it returns `param_shape`) and the labels.
(B) every posterior x prior x likelihood x objective x {plain, conditional}, with the small MLP encoder and
    decoder. Whether a combination is refused depends only on the posterior, the prior, the objective and the
    labels; drawing, the KL, the objectives' sample dimensions and the likelihood's log-probability over them
    meet here.

The encoder and the decoder touch the prior and the objective only through the posterior's tensors and z
(sample dimensions are flattened by `VAE.decode_params` before any decoder sees them), so no interaction is
left out. `expected_refusal` is written from what each part offers, independently of the code.
"""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from held_out_sets import held
from safetensors.torch import load, save

import vaezoo
from vaezoo.analysis import evaluate
from vaezoo.core import FEATURES
from vaezoo.errors import CombinationError
from vaezoo.registry.discovery import get_registry, reset_registry
from vaezoo.registry.factory import rebuild

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
    ("posterior", "gumbel-softmax"): {"categories": 2},
    ("posterior", "joint"): {"continuous": 2, "categories": 2},
    ("posterior", "iaf"): {"hidden_dims": [8], "context": 2},
    ("prior", "mog"): {"components": 3},
    ("prior", "vamp"): {"components": 3},
    ("prior", "ladder"): {"layers": 2, "hidden": 8},
    ("prior", "categorical"): {"categories": 2},
    ("prior", "joint"): {"continuous": 2, "categories": 2},
    ("prior", "codebook"): {"codes": 4, "code_dim": 2},
    ("objective", "iwae"): {"samples": 2},
    ("objective", "miwae"): {"samples": 2, "groups": 2},
    ("objective", "piwae"): {"samples": 2, "groups": 2},
    ("objective", "ciwae"): {"samples": 2},
    ("objective", "mmd"): {"mmd_weight": 10.0},
    ("objective", "factor"): {"hidden_dims": [8]},
    ("objective", "aae"): {"hidden_dims": [8]},
    ("objective", "vae-gan"): {"channels": [4], "hidden": 8},
}
#: Objectives with the options that change what they need of the posterior: name -> (registered name, options).
OBJECTIVES = {
    "elbo": ("elbo", {}), "elbo-free-bits": ("elbo", {"free_bits": 0.1}), "tc": ("tc", {}), "mmd": ("mmd", {}),
    "iwae": ("iwae", {}), "dip": ("dip", {}), "dip-ii": ("dip", {"kind": "ii"}), "miwae": ("miwae", {}),
    "piwae": ("piwae", {}), "ciwae": ("ciwae", {}), "factor": ("factor", {}), "aae": ("aae", {}),
    "vae-gan": ("vae-gan", {}),
}
#: For product A: a prior each posterior accepts.
ACCEPTED_PRIOR = {
    "gaussian": "standard-normal", "ladder": "ladder", "vmf": "uniform-sphere", "gumbel-softmax": "categorical",
    "joint": "joint", "vq": "codebook", "iaf": "standard-normal",
}


def builtin(kind: str) -> list[str]:
    reset_registry()
    return [e.name for e in get_registry().entries(kind) if e.plugin == "vaezoo"]


ENCODERS, DECODERS, POSTERIORS, PRIORS, LIKELIHOODS = (
    builtin(kind) for kind in ("encoder", "decoder", "posterior", "prior", "likelihood")
)
#: (encoder, decoder, posterior, prior, likelihood, objective, classes)
PRODUCT_A = [
    (e, d, q, ACCEPTED_PRIOR[q], lik, "elbo", c)
    for e, d, q, lik, c in itertools.product(ENCODERS, DECODERS, POSTERIORS, LIKELIHOODS, [0, CLASSES])
]

#: The prior each posterior's draws need (by what the parts are: densities on R^d, the sphere, one-hot blocks...).
EUCLIDEAN_PRIORS = {"standard-normal", "learned-diagonal", "mog", "vamp", "ladder"}
POSTERIOR_PRIORS = {
    "gaussian": EUCLIDEAN_PRIORS, "iaf": EUCLIDEAN_PRIORS, "ladder": {"ladder"}, "vmf": {"uniform-sphere"},
    "gumbel-softmax": {"categorical"}, "joint": {"joint"}, "vq": {"codebook"},
}
#: The feature (in the words of the refusal) each objective needs.
OBJECTIVE_NEEDS = {
    "elbo-free-bits": "the KL split into one term per latent dimension", "tc": "log q(z_d|x)",
    "iwae": "several draws of z", "miwae": "several draws of z", "piwae": "several draws of z",
    "ciwae": "several draws of z", "dip": "the mean and the per-dimension variance", "dip-ii": "the mean and the per-dimension variance",
}


def offers(posterior: str, prior: str, need: str) -> bool:
    """Whether the posterior with this prior gives what an objective needs, from what each family is."""
    if need == "several draws of z":  # a relaxed categorical draw has no categorical density to weight it with
        return posterior not in {"gumbel-softmax", "joint"}
    if need == "the KL split into one term per latent dimension":  # a factorized Gaussian against a factorized prior
        return posterior == "gaussian" and prior in {"standard-normal", "learned-diagonal"}
    return posterior == "gaussian"  # per-dimension densities and moments: only the diagonal Gaussian has them


def expected_refusal(posterior: str, prior: str, objective: str) -> str | None:
    """The parts a refusal must name, written from what each built-in part offers (independently of the code)."""
    if prior not in POSTERIOR_PRIORS[posterior]:
        return f"posterior 'vaezoo:{posterior}' cannot be used with prior"
    if prior == "vamp" and posterior != "gaussian":
        return "prior 'vaezoo:vamp' reads the encoder's output as gaussian posterior parameters"
    need = OBJECTIVE_NEEDS.get(objective)
    if need is not None and not offers(posterior, prior, need):
        return f"objective 'vaezoo:{OBJECTIVES[objective][0]}' needs {need}"
    return None


def product_b() -> list[tuple]:
    """Every posterior x prior x objective x labels; every likelihood where the combination works, and one
    likelihood (in turn) where it is refused, since a refusal does not depend on the likelihood."""
    rows, turn = [], itertools.cycle(LIKELIHOODS)
    for q, p, o, c in itertools.product(POSTERIORS, PRIORS, list(OBJECTIVES), [0, CLASSES]):
        likelihoods = LIKELIHOODS if expected_refusal(q, p, o) is None else [next(turn)]
        rows += [("mlp", "mlp", q, p, lik, o, c) for lik in likelihoods]
    return rows


PRODUCT_B = product_b()
COMBINATIONS = PRODUCT_A + [c for c in PRODUCT_B if c not in set(PRODUCT_A)]


def overrides_for(encoder, decoder, posterior, prior, likelihood, objective) -> dict:
    name, options = OBJECTIVES[objective]
    chosen = {"encoder": encoder, "decoder": decoder, "posterior": posterior, "prior": prior,
              "likelihood": likelihood, "objective": name}
    result: dict = dict(chosen)
    for kind, part in chosen.items():
        for key, value in SMALL.get((kind, part), {}).items():
            result[f"{kind}.{key}"] = value
    for key, value in options.items():
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

    # one training step (and the adversary's, for an adversarial objective): finite losses and gradients,
    # and the weights move
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    out = model(x, y)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert out.recon.shape == out.kl.shape == (6,)
    adversarial = model.objective.adversary() is not None
    for loss_of in [lambda: out.loss] + ([lambda: model.objective.adversary_loss(model, x, y, out)] if adversarial else []):
        loss = loss_of()
        assert loss.dim() == 0 and torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        optimizer.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))

    # every metric that is defined, and a reason for every one that is not
    result = evaluate.summary(model, held(x, y, conditional=model.conditional), nll_samples=3)
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


def test_the_combinations_cover_every_builtin_part_and_every_kind_of_refusal():
    assert set(POSTERIORS) == set(ACCEPTED_PRIOR) == set(POSTERIOR_PRIORS)
    assert set(PRIORS) == set().union(*POSTERIOR_PRIORS.values())
    assert {name for name, _ in OBJECTIVES.values()} == set(builtin("objective"))
    assert len(set(PRODUCT_A)) == len(ENCODERS) * len(DECODERS) * len(POSTERIORS) * len(LIKELIHOODS) * 2
    assert all(expected_refusal(c[2], c[3], c[5]) is None for c in PRODUCT_A)
    assert {c[2:4] + c[5:] for c in PRODUCT_B} == set(
        itertools.product(POSTERIORS, PRIORS, list(OBJECTIVES), [0, CLASSES]))
    refusals = [r for c in PRODUCT_B if (r := expected_refusal(c[2], c[3], c[5]))]
    assert {c[4] for c in PRODUCT_B if expected_refusal(c[2], c[3], c[5])} == set(LIKELIHOODS)
    for need in set(OBJECTIVE_NEEDS.values()) | {"cannot be used with prior", "reads the encoder's output"}:
        assert any(need in r for r in refusals), need
    assert set(evaluate.METRIC_NEEDS.values()) <= set(FEATURES)
    # OBJECTIVE_NEEDS and `offers` word one rule per feature: a new feature needs a rule here
    assert set(FEATURES) == {"samples", "kl_per_dim", "density", "moments"}
