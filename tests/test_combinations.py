"""Every interaction of the built-in parts, plain and conditional: each combination is refused at build with a
one-line reason that names the parts, or it trains a step, evaluates every defined metric, samples,
reconstructs and reloads.

The full product of all kinds is too large to run, and most parts never meet, so the combinations are:

- the full product where parts interact: every posterior x prior x objective x {plain, conditional}. Whether a
  combination of these is refused depends only on them; drawing, the KL and the objectives' sample dimensions
  meet here. `expected_refusal` is written from what each part offers, independently of the code; every
  refused combination is tested (with the MLP encoder and decoder and each likelihood in turn).
- the networks' own refusals (`part_refusal`, written the same way): the ldm encoder and decoder take no
  labels, and the ldm encoder gives only posteriors whose parameters are all latent maps (`LDM_SERVES`); each
  posterior, with a prior it accepts, plain and conditional, is tried with the ldm encoder, decoder and both.
- for each working posterior x prior x objective x labels, an encoder, a decoder and a likelihood chosen by a
  covering design (`covering`, deterministic, greedy, among the choices that work with that row): among the
  working rows, every pair of values of any two kinds appears at least once, and these full products appear
  whole: decoder x likelihood x labels (the decoder returns the likelihood's `param_shape`, and reads the
  labels) and encoder x posterior x labels (the encoder returns the tensors the posterior's `param_dims`
  names, and reads the labels), except for the tuples no working combination can hold (`NEVER`: the ldm
  networks with labels, the ldm encoder with a posterior it cannot serve or a prior that accepts only such
  posteriors). Encoders and decoders touch the prior and the objective only through the posterior's tensors
  and z (sample dimensions are flattened by `VAE.decode_params` before any decoder sees them; the ldm
  networks' spatial latents are the same flat z, position by position); the vamp prior, which runs the
  encoder, meets every encoder through the pairs.

What this replaced (issue 25): product A (every encoder x decoder x posterior x likelihood x labels, 504 runs
with the ELBO and a prior each posterior accepts) and product B's working rows with every likelihood (1,080
runs). A removed row of A is covered in its parts: its (decoder, likelihood, labels) and its (encoder,
posterior, labels) each by a kept row, and its (encoder, decoder) pair by another, since an encoder and a
decoder never meet. A removed row of B (the same posterior, prior, objective and labels with another
likelihood) is covered by the kept row of that (posterior, prior, objective, labels), by the kept rows that
pair the likelihood with that posterior, that prior and that objective, and by decoder x likelihood x labels.
`test_the_combinations_cover_every_builtin_part_and_every_kind_of_refusal` checks this coverage.

Both step the models by hand; a third slice trains every objective, with its defaults and with every option
changed, through `vaezoo.fit`, so that what the trainer wraps around a step meets each of them; a fourth
fits every sampler to the codes of every posterior, plain and conditional (or sees it refused).
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
    # three stages downsample 8x8 by 4: one latent channel on a 2x2 grid is LATENT numbers
    ("encoder", "ldm"): {"block_out_channels": [4, 4, 4], "latent_channels": 1, "norm_num_groups": 2},
    ("decoder", "ldm"): {"block_out_channels": [4, 4, 4], "latent_channels": 1, "norm_num_groups": 2},
    ("posterior", "gumbel-softmax"): {"categories": 2},
    ("posterior", "joint"): {"continuous": 2, "categories": 2},
    ("posterior", "iaf"): {"hidden_dims": [8], "context": 2},
    ("posterior", "planar"): {"layers": 2},
    ("posterior", "radial"): {"layers": 2},
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
    ("objective", "ldm"): {"discriminator_channels": 4, "discriminator_layers": 1, "perceptual": "none"},
    ("objective", "hamiltonian"): {"steps": 2},
    ("objective", "dfc"): {"feature_weight": 0.0, "pixel_weight": 1.0, "feature_steps": 5},  # famA: no labels needed
}
#: Objectives with the options that change what they need of the posterior: name -> (registered name, options).
OBJECTIVES = {
    "elbo": ("elbo", {}), "elbo-free-bits": ("elbo", {"free_bits": 0.1}), "tc": ("tc", {}), "mmd": ("mmd", {}),
    "iwae": ("iwae", {}), "dip": ("dip", {}), "dip-ii": ("dip", {"kind": "ii"}), "miwae": ("miwae", {}),
    "piwae": ("piwae", {}), "ciwae": ("ciwae", {}), "factor": ("factor", {}), "aae": ("aae", {}),
    "vae-gan": ("vae-gan", {}), "ldm": ("ldm", {}), "rae": ("rae", {}), "rae-gp": ("rae", {"regularizer": "gp"}),
    "hamiltonian": ("hamiltonian", {}),
    "capacity": ("capacity", {}), "capacity-joint": ("capacity", {"discrete_capacity": 1.0}),  # famA branch
    "swae": ("swae", {"projections": 4}),  # famA branch
    "dfc": ("dfc", {"feature_weight": 0.5}),  # famA branch: on the feature network's random weights here
}
#: For product A: a prior each posterior accepts.
ACCEPTED_PRIOR = {
    "gaussian": "standard-normal", "ladder": "ladder", "vmf": "uniform-sphere", "gumbel-softmax": "categorical",
    "joint": "joint", "vq": "codebook", "iaf": "standard-normal", "deterministic": "standard-normal",
    "planar": "standard-normal", "radial": "standard-normal", "wrapped-normal": "poincare",
}


def builtin(kind: str) -> list[str]:
    reset_registry()
    return [e.name for e in get_registry().entries(kind) if e.plugin == "vaezoo"]


ENCODERS, DECODERS, POSTERIORS, PRIORS, LIKELIHOODS = (
    builtin(kind) for kind in ("encoder", "decoder", "posterior", "prior", "likelihood")
)
#: The prior each posterior's draws need (by what the parts are: densities on R^d, the sphere, one-hot blocks...).
EUCLIDEAN_PRIORS = {"standard-normal", "learned-diagonal", "mog", "vamp", "ladder"}
POSTERIOR_PRIORS = {
    "gaussian": EUCLIDEAN_PRIORS, "iaf": EUCLIDEAN_PRIORS, "ladder": {"ladder"}, "vmf": {"uniform-sphere"},
    "gumbel-softmax": {"categorical"}, "joint": {"joint"}, "vq": {"codebook"}, "deterministic": EUCLIDEAN_PRIORS,
    "planar": EUCLIDEAN_PRIORS, "radial": EUCLIDEAN_PRIORS, "wrapped-normal": {"poincare"},
}
#: The feature (in the words of the refusal) each objective needs.
OBJECTIVE_NEEDS = {
    "elbo-free-bits": "the KL split into one term per latent dimension", "tc": "log q(z_d|x)",
    "iwae": "several draws of z", "miwae": "several draws of z", "piwae": "several draws of z",
    "ciwae": "several draws of z", "dip": "the mean and the per-dimension variance", "dip-ii": "the mean and the per-dimension variance",
    "hamiltonian": "several draws of z",
    "capacity-joint": "the KL split into its continuous and discrete parts",  # famA branch
}


def offers(posterior: str, prior: str, need: str) -> bool:
    """Whether the posterior with this prior gives what an objective needs, from what each family is."""
    if need == "several draws of z":  # a relaxed categorical draw has no categorical density to weight it with,
        return posterior not in {"gumbel-softmax", "joint", "deterministic"}  # a point mass none at all
    if need == "the KL split into one term per latent dimension":  # a factorized Gaussian against a factorized prior
        return posterior == "gaussian" and prior in {"standard-normal", "learned-diagonal"}
    if need == "the KL split into its continuous and discrete parts":  # only joint latents have both parts
        return posterior == "joint"
    if need == "the mean and the per-dimension variance":  # a point mass has them too: its code, variance 0
        return posterior in {"gaussian", "deterministic"}
    return posterior == "gaussian"  # per-dimension densities: only the diagonal Gaussian has them


def expected_refusal(posterior: str, prior: str, objective: str) -> str | None:
    """The parts a refusal must name, written from what each built-in part offers (independently of the code)."""
    if prior not in POSTERIOR_PRIORS[posterior]:
        return f"posterior 'vaezoo:{posterior}' cannot be used with prior"
    if prior == "vamp" and posterior != "gaussian":
        return "prior 'vaezoo:vamp' reads the encoder's output as gaussian posterior parameters"
    need = OBJECTIVE_NEEDS.get(objective)
    if need is not None and not offers(posterior, prior, need):
        return f"objective 'vaezoo:{OBJECTIVES[objective][0]}' needs {need}"
    if objective == "hamiltonian" and prior not in EUCLIDEAN_PRIORS:  # leapfrog moves z through R^d
        return "objective 'vaezoo:hamiltonian' cannot be used with prior"
    return None


#: The posteriors the ldm encoder can serve: it gives each parameter as one latent map of latent_dim numbers, so
#: those that read only tensors of latent_dim numbers (not vmf's concentration, iaf's context, joint's split).
LDM_SERVES = {"gaussian", "ladder", "gumbel-softmax", "vq", "deterministic", "wrapped-normal"}


def part_refusal(encoder: str, decoder: str, posterior: str, classes: int) -> str | None:
    """What a refusal of the networks must say: the ldm parts take no labels, and the ldm encoder gives only
    posteriors whose parameters are all latent maps (independently of the code)."""
    for kind, part in (("encoder", encoder), ("decoder", decoder)):
        if classes and part == "ldm":
            return f"{kind} 'vaezoo:ldm' takes no labels"
    if encoder == "ldm" and posterior not in LDM_SERVES:
        return f"encoder 'vaezoo:ldm' cannot give posterior 'vaezoo:{posterior}' its parameters"
    return None


def refusal(row: dict) -> str | None:
    """What the refusal of a whole combination (a dict of KINDS) must say, or None where it must work."""
    return (part_refusal(row["encoder"], row["decoder"], row["posterior"], row["classes"])
            or expected_refusal(row["posterior"], row["prior"], row["objective"]))


#: The kinds of a combination, in the order of its tuple; the parts that meet only through the posterior's
#: tensors and z are FREE: the covering design chooses them (the cheapest first, where choices tie).
KINDS = ("encoder", "decoder", "posterior", "prior", "likelihood", "objective", "classes")
FREE = {"encoder": sorted(ENCODERS, key=lambda n: n != "mlp"), "decoder": sorted(DECODERS, key=lambda n: n != "mlp"),
        "likelihood": LIKELIHOODS}
#: Kinds whose full product the working combinations hold, besides every pair of values of two kinds.
WHOLE = [("decoder", "likelihood", "classes"), ("encoder", "posterior", "classes")]
GROUPS = list(itertools.combinations(KINDS, 2)) + WHOLE


def tuples(row: dict) -> set[tuple]:
    """The (kind, value) tuples of every group that a combination holds."""
    return {tuple((kind, row[kind]) for kind in group) for group in GROUPS}


def completions(row: dict) -> list[dict]:
    """A working posterior x prior x objective x labels completed with each choice of free parts that works
    with it (the ldm networks take no labels and serve only some posteriors), cheapest first."""
    choices = [{**row, **dict(zip(FREE, values))} for values in itertools.product(*FREE.values())]
    return [choice for choice in choices if refusal(choice) is None]


def must_cover(working: list[dict]) -> set[tuple]:
    """Every tuple of every group that some working combination holds: the working rows with every working
    choice of free parts (a pair that no combination can hold, such as the ldm encoder with labels, is not
    wanted)."""
    return set().union(*(tuples(full) for row in working for full in completions(row)))


def covering(working: list[dict]) -> list[dict]:
    """Each working combination completed with the free parts that cover the most tuples still uncovered (the
    first such choice: deterministic); then, for any tuple left, one more combination that holds it."""
    options = [[(full, tuples(full)) for full in completions(row)] for row in working]
    left = set().union(*(held for choices in options for _, held in choices))
    rows = []
    for choices in options:
        full, held = max(choices, key=lambda choice: len(choice[1] & left))
        rows.append(full)
        left -= held
    while left:
        target = min(left)
        full, held = max((choice for choices in options for choice in choices if target in choice[1]),
                         key=lambda choice: len(choice[1] & left))
        rows.append(full)
        left -= held
    return rows


#: The combinations whose refusal is a part refusal, for each posterior with a prior it accepts, plain and
#: conditional: the ldm encoder, the ldm decoder or both (a refusal depends on nothing else).
LDM_PAIRS = [("ldm", "mlp"), ("mlp", "ldm"), ("ldm", "ldm")]


def combinations() -> list[tuple]:
    """Every posterior x prior x objective x labels: the working ones completed by `covering`, the refused ones
    with the MLP encoder and decoder and one likelihood in turn (a refusal does not depend on them); and the
    networks' own refusals, each posterior with the ldm networks."""
    base = [dict(zip(("posterior", "prior", "objective", "classes"), values))
            for values in itertools.product(POSTERIORS, PRIORS, list(OBJECTIVES), [0, CLASSES])]
    turn = itertools.cycle(LIKELIHOODS)
    refused = [{**row, "encoder": "mlp", "decoder": "mlp", "likelihood": next(turn)} for row in base
               if expected_refusal(row["posterior"], row["prior"], row["objective"]) is not None]
    networks = [{"posterior": posterior, "prior": ACCEPTED_PRIOR[posterior], "objective": "elbo", "classes": classes,
                 "encoder": encoder, "decoder": decoder} for posterior in POSTERIORS for classes in (0, CLASSES)
                for encoder, decoder in LDM_PAIRS]
    refused += [{**row, "likelihood": next(turn)} for row in networks if refusal(row) is not None]
    working = covering([row for row in base if expected_refusal(row["posterior"], row["prior"], row["objective"]) is None])
    return [tuple(row[kind] for kind in KINDS) for row in working + refused]


COMBINATIONS = combinations()
WORKING = [c for c in COMBINATIONS if refusal(dict(zip(KINDS, c))) is None]
REFUSED = [c for c in COMBINATIONS if refusal(dict(zip(KINDS, c))) is not None]


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
    if encoder == "ldm" and prior == "codebook":  # one code vector per position of the ldm's latent map
        result["prior.code_dim"] = SMALL[("encoder", "ldm")]["latent_channels"]
    return result


def finite(value) -> bool:
    return all(math.isfinite(v) for v in value) if isinstance(value, list) else math.isfinite(value)


def test_each_refused_combination_is_refused_at_build_with_one_line_naming_the_parts():
    """Every combination that must be refused (in one loop: a refusal costs a millisecond, a test case ten)."""
    wrong = []
    for combination in REFUSED:
        encoder, decoder, posterior, prior, likelihood, objective, classes = combination
        overrides = overrides_for(encoder, decoder, posterior, prior, likelihood, objective)
        words = refusal(dict(zip(KINDS, combination)))
        try:
            vaezoo.create_model("vae-mlp", input_shape=SHAPE, latent_dim=LATENT, num_classes=classes, **overrides)
        except CombinationError as error:
            message = str(error)
            if words not in message or "\n" in message:
                wrong.append((combination, message))
        else:
            wrong.append((combination, "built"))
    assert REFUSED and not wrong, f"{len(wrong)} of {len(REFUSED)}, e.g. {wrong[:5]}"


@pytest.mark.parametrize(
    "encoder,decoder,posterior,prior,likelihood,objective,classes", WORKING,
    ids=["-".join(map(str, c)) for c in WORKING],
)
def test_combination_works_end_to_end(encoder, decoder, posterior, prior, likelihood, objective, classes):
    torch.manual_seed(0)
    overrides = overrides_for(encoder, decoder, posterior, prior, likelihood, objective)
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


#: The pairs of values that no working combination holds, written from what the parts are: the ldm networks
#: take no labels; the ldm encoder serves no posterior outside LDM_SERVES, and so no prior that accepts only such
#: posteriors (the uniform sphere only vmf, the joint prior only joint), and no objective that only such a
#: posterior can serve (JointVAE's capacities need joint latents). The design must hold every other pair.
NEVER = {
    ("encoder", "classes"): {("ldm", CLASSES)},
    ("decoder", "classes"): {("ldm", CLASSES)},
    ("encoder", "posterior"): {("ldm", posterior) for posterior in set(POSTERIORS) - LDM_SERVES},
    ("encoder", "prior"): {("ldm", "uniform-sphere"), ("ldm", "joint")},
    ("encoder", "objective"): {("ldm", "capacity-joint")},
}


def never_works(group: tuple, values: tuple) -> bool:
    """Whether these values of the kinds in `group` hold a pair of NEVER."""
    held = dict(zip(group, values))
    return any(set(pair) <= set(group) and tuple(held[k] for k in pair) in pairs for pair, pairs in NEVER.items())


def test_the_combinations_cover_every_builtin_part_and_every_kind_of_refusal():
    from vaezoo.registry.catalog import ALL_KINDS

    # every kind of part is here (samplers in their own product below), and every built-in part of each kind
    assert set(ALL_KINDS) - {"variant", "dataset", "weights"} == set(KINDS[:-1]) | {"sampler"}
    assert set(SAMPLERS) == set(builtin("sampler"))
    assert set(POSTERIORS) == set(ACCEPTED_PRIOR) == set(POSTERIOR_PRIORS)
    assert set(PRIORS) == set().union(*POSTERIOR_PRIORS.values())
    assert {name for name, _ in OBJECTIVES.values()} == set(builtin("objective"))
    assert LDM_SERVES < set(POSTERIORS) and "ldm" in ENCODERS and "ldm" in DECODERS
    # the full product where parts interact
    assert {c[2:4] + c[5:] for c in COMBINATIONS} == set(
        itertools.product(POSTERIORS, PRIORS, list(OBJECTIVES), [0, CLASSES]))
    assert len(COMBINATIONS) == len(set(COMBINATIONS))
    # the covering design, checked from the values of each kind: among the working combinations every value of a
    # free kind meets every value of every other kind, and the products in WHOLE are whole, except where they
    # hold a pair that can never work (NEVER)
    working = [dict(zip(KINDS, c)) for c in WORKING]
    values = {"encoder": ENCODERS, "decoder": DECODERS, "posterior": POSTERIORS, "prior": PRIORS,
              "likelihood": LIKELIHOODS, "objective": list(OBJECTIVES), "classes": [0, CLASSES]}
    for kind in KINDS:  # every part works in some combination
        assert {row[kind] for row in working} == set(values[kind]), kind
    for group in [g for g in itertools.combinations(KINDS, 2) if set(g) & set(FREE)] + WHOLE:
        held = {tuple(row[k] for k in group) for row in working}
        wanted = {t for t in itertools.product(*(values[k] for k in group)) if not never_works(group, t)}
        assert held == wanted, (group, sorted(wanted - held)[:5], sorted(held - wanted)[:5])
    # every kind of refusal, each with every likelihood in some combination
    refusals = [r for c in COMBINATIONS if (r := expected_refusal(c[2], c[3], c[5]))]
    assert {c[4] for c in COMBINATIONS if expected_refusal(c[2], c[3], c[5])} == set(LIKELIHOODS)
    for need in set(OBJECTIVE_NEEDS.values()) | {"cannot be used with prior", "reads the encoder's output",
                                                 "objective 'vaezoo:hamiltonian' cannot be used with prior"}:
        assert any(need in r for r in refusals), need
    # and every refusal of the networks: each ldm network with labels, the ldm encoder with each posterior it
    # cannot serve
    assert {r for c in REFUSED if (r := part_refusal(c[0], c[1], c[2], c[6]))} == {
        f"{kind} 'vaezoo:ldm' takes no labels" for kind in ("encoder", "decoder")} | {
        f"encoder 'vaezoo:ldm' cannot give posterior 'vaezoo:{posterior}' its parameters"
        for posterior in set(POSTERIORS) - LDM_SERVES}
    assert set(evaluate.METRIC_NEEDS.values()) <= set(FEATURES)
    # OBJECTIVE_NEEDS and `offers` word one rule per feature: a new feature needs a rule here
    assert set(FEATURES) == {"samples", "kl_per_dim", "density", "moments", "kl_parts"}


# -- through the trainer: what it wraps around a step ------------------------------------------------------------
#
# The products above step models by hand. This slice trains each objective through the public `vaezoo.fit`
# (two optimizer steps, a held-out evaluation), with its defaults and with every option it takes changed, so
# the trainer's noise shard, adversary steps, gradient clipping, learning-rate schedule and the objectives'
# own schedules (KL warm-up, read from `step`) meet every objective. Free bits once failed only here.

#: A value other than the default for every option of every built-in objective (with the small networks).
OPTION_VALUES = {
    "elbo": {"beta": 2.0, "free_bits": 0.1, "warmup_steps": 3},
    "tc": {"alpha": 0.5, "beta": 2.0, "gamma": 0.5, "dataset_size": 8},
    "mmd": {"kl_weight": 0.0, "mmd_weight": 10.0, "kernel": "rbf", "scale": 2.0},
    "dip": {"kind": "ii", "lambda_od": 2.0, "lambda_d": 3.0},
    "iwae": {"samples": 3},
    "miwae": {"samples": 2, "groups": 3},
    "piwae": {"samples": 3, "groups": 2},
    "ciwae": {"samples": 3, "beta": 0.25},
    "factor": {"gamma": 2.0, "hidden_dims": [6], "steps": 2},
    "aae": {"adversarial_weight": 0.5, "kl_weight": 0.1, "hidden_dims": [6], "steps": 2},
    "vae-gan": {"gan_weight": 0.5, "feature_weight": 2.0, "channels": [3], "hidden": 6, "steps": 2,
                "temperature": 0.3},
    "ldm": {"reconstruction": "l2", "perceptual": "domain", "perceptual_weight": 0.5, "perceptual_steps": 5,
            "kl_weight": 0.01, "adversarial_weight": 0.8, "adaptive": False, "discriminator_start": 1,
            "discriminator_channels": 3, "discriminator_layers": 1, "steps": 2},
    "rae": {"latent_weight": 0.5, "decoder_weight": 0.1, "regularizer": "gp"},
    "hamiltonian": {"steps": 2, "step_size": 0.1, "initial_beta": 0.7, "tempered": False},
    # famA branch: a discrete capacity needs joint latents (OPTION_PARTS)
    "capacity": {"gamma": 2.0, "capacity": 3.0, "capacity_steps": 2, "discrete_capacity": 1.0, "discrete_gamma": 0.5},
    "swae": {"weight": 2.0, "projections": 5, "power": 1.0, "kl_weight": 0.5},
    "dfc": {"feature_weight": 2.0, "kl_weight": 0.5, "pixel_weight": 0.5, "feature_steps": 3},
}
#: The parts an objective's "every option" row needs instead of the Gaussian posterior and prior (famA branch).
OPTION_PARTS = {
    "capacity": {"posterior": "joint", "prior": "joint", **{f"{kind}.{k}": v for kind in ("posterior", "prior")
                                                            for k, v in SMALL[(kind, "joint")].items()}},
}
#: What the trainer wraps around each step: two steps of 4 (each in its noise shard), a clipped gradient, a
#: warmed-up cosine learning rate (and bfloat16 autocast with every option changed).
TRAINER = {"batch_size": 4, "clip_grad": 0.5, "schedule": "cosine", "warmup_steps": 1, "seed": 3}
THROUGH_TRAINER = [(name, options) for name in OPTION_VALUES for options in ("defaults", "every option")]


def trained_through_fit(objective: str, options: dict, classes: int, **settings):
    torch.manual_seed(0)
    small = {f"objective.{k}": v for k, v in SMALL.get(("objective", objective), {}).items()}
    model = vaezoo.create_model("vae-mlp", input_shape=SHAPE, latent_dim=LATENT, num_classes=classes,
                                **{**overrides_for("mlp", "mlp", "gaussian", "standard-normal", "bernoulli", "elbo"),
                                   "objective": objective, **small, **(OPTION_PARTS.get(objective, {}) if options else {}),
                                   **{f"objective.{k}": v for k, v in options.items()}})
    x = torch.rand(12, *SHAPE).bernoulli()
    data = (x, torch.arange(12) % CLASSES) if classes else x
    train, held_out = (data[0][:8], data[1][:8]) if classes else data[:8], (data[0][8:], data[1][8:]) if classes else data[8:]
    adversary = model.objective.adversary()
    before = [p.detach().clone() for p in model.parameters()]
    before_adversary = [p.detach().clone() for p in adversary.parameters()] if adversary is not None else []
    run = vaezoo.fit(model, train, held_out, epochs=1, **TRAINER, **settings)
    return model, run, before, before_adversary


@pytest.mark.parametrize("objective, which", THROUGH_TRAINER, ids=[f"{o}-{w.replace(' ', '-')}" for o, w in THROUGH_TRAINER])
def test_each_objective_and_option_trains_through_the_trainer(objective, which):
    options = OPTION_VALUES[objective] if which == "every option" else {}
    classes = CLASSES if which == "every option" else 0  # labels through the trainer too
    model, run, before, before_adversary = trained_through_fit(objective, options, classes, bf16=bool(options))
    (metrics,) = run.metrics
    assert math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["val_elbo"]), metrics
    assert model.objective.step == 1  # the trainer set the step before each of the two steps: schedules see it
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    adversary = model.objective.adversary()
    if adversary is not None:  # the adversary's own optimizer stepped it too
        assert any(not torch.equal(a, p) for a, p in zip(before_adversary, adversary.parameters()))
    if objective == "elbo" and options:  # KL warm-up: beta_t = beta * step / warmup_steps at the last step
        assert model.objective.kl_weight() == pytest.approx(2.0 / 3)


def test_the_trainer_slice_changes_every_option_of_every_objective():
    """A new objective, or a new option of one, must be added to OPTION_VALUES (with a value not its default)."""
    from vaezoo.registry.factory import component_options

    objectives = {e.name: e.obj for e in get_registry().entries("objective") if e.plugin == "vaezoo"}
    assert set(OPTION_VALUES) == set(objectives)
    for name, factory in objectives.items():
        defaults = component_options("objective", factory)
        assert set(OPTION_VALUES[name]) == set(defaults), name
        for option, value in OPTION_VALUES[name].items():
            assert value != defaults[option], (name, option)


class Declared:
    """Wraps a posterior so that each feature's method works only if the objective declared that feature."""

    METHODS = {"kl_per_dim": "kl_per_dim", "density": "log_density", "moments": "moments", "kl_parts": "kl_parts"}

    def __init__(self, posterior, allowed: frozenset[str]) -> None:
        self.posterior, self.allowed, self.used = posterior, allowed, set()

    def install(self) -> None:
        for feature, method in self.METHODS.items():
            setattr(self.posterior, method, self.guard(feature, getattr(self.posterior, method)))
        self.posterior.draw = self.guard_samples(self.posterior.draw)

    def guard(self, feature, method):
        def call(*args, **kwargs):
            self.used.add(feature)
            assert feature in self.allowed, f"the objective used {feature!r} without declaring it in needs()"
            return method(*args, **kwargs)
        return call

    def guard_samples(self, draw):
        def call(params, prior, samples=None):
            if samples is not None:
                self.used.add("samples")
                assert "samples" in self.allowed, "the objective drew several samples without declaring 'samples'"
            return draw(params, prior, samples)
        return call


@pytest.mark.parametrize("objective, which", THROUGH_TRAINER, ids=[f"{o}-{w.replace(' ', '-')}" for o, w in THROUGH_TRAINER])
def test_each_objective_declares_every_posterior_feature_it_uses(objective, which):
    """The build check can only refuse what needs() names: a feature used but not declared fails at a step."""
    options = OPTION_VALUES[objective] if which == "every option" else {}
    torch.manual_seed(0)
    small = {f"objective.{k}": v for k, v in SMALL.get(("objective", objective), {}).items()}
    model = vaezoo.create_model("vae-mlp", input_shape=SHAPE, latent_dim=LATENT, objective=objective,
                                **{**small, **(OPTION_PARTS.get(objective, {}) if options else {}),
                                   **{f"objective.{k}": v for k, v in options.items()}})
    guard = Declared(model.posterior, model.objective.needs())
    guard.install()
    out = model(torch.rand(6, *SHAPE).bernoulli())
    assert torch.isfinite(out.loss)
    assert guard.used == set(model.objective.needs())  # and it declares nothing it does not use


@pytest.mark.parametrize("posterior", POSTERIORS)
def test_each_posterior_trains_through_the_trainer_with_several_draws_where_offered(posterior):
    """Each posterior (with a prior it accepts) inside the trainer's noise shards, with iwae's K draws where it
    offers them: posteriors that reshape their draws (the ladder's lower layers) once failed only here."""
    prior = ACCEPTED_PRIOR[posterior]
    objective = "iwae" if offers(posterior, prior, "several draws of z") else "elbo"
    torch.manual_seed(0)
    model = vaezoo.create_model("vae-mlp", input_shape=SHAPE, latent_dim=LATENT,
                                **overrides_for("mlp", "mlp", posterior, prior, "bernoulli", objective))
    before = [p.detach().clone() for p in model.parameters()]
    run = vaezoo.fit(model, torch.rand(8, *SHAPE).bernoulli(), epochs=1, **TRAINER)
    assert math.isfinite(run.metrics[0]["train_loss"])
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


# -- samplers (samplers branch, issue 24): every built-in sampler x every posterior x {plain, conditional} ---------
#
# A sampler meets the model only through its posterior's codes (and, for the prior and pixelcnn samplers, its
# prior), so this product covers its interactions: it is refused at build with a line naming both parts, or it
# fits the codes of a few inputs, draws codes the decoder takes, and reloads from its state dict.

SAMPLERS = builtin("sampler")
SMALL_SAMPLERS = {"gmm": {"components": 2}, "flow": {"layers": 1, "hidden_dims": [8]},
                  "two-stage": {"hidden_dims": [8]}, "pixelcnn": {"channels": 8, "blocks": 1}}
#: Posteriors whose codes are unconstrained real vectors: what a density on R^d can be fitted to.
REAL_CODES = {"gaussian", "deterministic", "iaf", "ladder", "planar", "radial"}


def expected_sampler_refusal(sampler: str, posterior: str, classes: int) -> str | None:
    """Written from what each part is: the prior needs nothing; pixelcnn models VQ code indices; the others are
    densities on R^d; a fitted sampler draws no labels."""
    works = sampler == "prior" or (posterior == "vq" if sampler == "pixelcnn" else posterior in REAL_CODES)
    if not works or (classes and sampler != "prior"):
        return f"sampler 'vaezoo:{sampler}' cannot be fitted to the codes of posterior 'vaezoo:{posterior}'"
    return None


SAMPLER_PRODUCT = list(itertools.product(SAMPLERS, POSTERIORS, [0, CLASSES]))


@pytest.mark.parametrize("sampler, posterior, classes", SAMPLER_PRODUCT,
                         ids=["-".join(map(str, c)) for c in SAMPLER_PRODUCT])
def test_each_sampler_fits_each_posterior_or_is_refused(sampler, posterior, classes):
    from vaezoo.analysis.samplers import draw_images
    from vaezoo.registry.samplers import build_sampler, rebuild_sampler

    torch.manual_seed(0)
    model = vaezoo.create_model("vae-mlp", input_shape=SHAPE, latent_dim=LATENT, num_classes=classes,
                                **overrides_for("mlp", "mlp", posterior, ACCEPTED_PRIOR[posterior], "bernoulli", "elbo"))
    model.eval()
    options = SMALL_SAMPLERS.get(sampler, {})
    refusal = expected_sampler_refusal(sampler, posterior, classes)
    if refusal is not None:
        with pytest.raises(CombinationError) as info:
            build_sampler(sampler, model, **options)
        assert refusal in str(info.value) and "\n" not in str(info.value), str(info.value)
        return
    built, identity = build_sampler(sampler, model, **options)
    y = torch.arange(3) % CLASSES if classes else None
    if built.needs_fit:
        x = torch.rand(8, *SHAPE).bernoulli()
        with torch.no_grad():
            params = model.encode(x)
            codes = (model.posterior.mean(params, model.prior) if built.codes == "means"
                     else model.posterior.draw(params, model.prior).z)
        built.fit(codes, 2)
        y = None
    images = draw_images(model, built, 3, None if y is None else 1)
    assert images.shape == (3, *SHAPE) and torch.isfinite(images).all()
    copy = rebuild_sampler(identity, model, options)
    copy.load_state_dict(built.state_dict())
    torch.manual_seed(1)
    expected = built.sample(3)
    torch.manual_seed(1)
    assert torch.equal(copy.sample(3), expected)


def test_the_sampler_product_covers_every_builtin_sampler_and_both_outcomes():
    assert set(SAMPLERS) == {"prior", "gmm", "two-stage", "flow", "pixelcnn"}
    assert REAL_CODES < set(POSTERIORS)
    outcomes = {(s, expected_sampler_refusal(s, q, c) is None) for s, q, c in SAMPLER_PRODUCT}
    assert outcomes == {(s, ok) for s in SAMPLERS for ok in (True, False)} - {("prior", False)}
