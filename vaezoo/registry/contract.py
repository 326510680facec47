"""Build-time checks that the parts of a VAE keep the plugin contract and can work together.

Everything here runs inside `create_model`, before any training and before a run directory exists, so a
combination that cannot work is refused with one line that names the parts and the reason.
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from vaezoo.core import FEATURES, Likelihood, Objective, Posterior, Prior, Sampler
from vaezoo.errors import CombinationError

#: The base class each kind's factory must return.
BASES: dict[str, type] = {
    "encoder": nn.Module,
    "posterior": Posterior,
    "decoder": nn.Module,
    "prior": Prior,
    "likelihood": Likelihood,
    "objective": Objective,
    "sampler": Sampler,
}


def check_type(kind: str, label: str, part: Any) -> None:
    """The factory of `label` returned an instance of its kind's base class."""
    base = BASES[kind]
    if not isinstance(part, base):
        raise CombinationError(
            f"{label}: its factory returned a {type(part).__module__}.{type(part).__qualname__}, not a "
            f"{base.__module__.split('.')[0]}.{base.__qualname__}; subclass {base.__qualname__}"
        )


def check_combination(labels: dict[str, str], parts: dict[str, Any], num_classes: int, prior_takes: set[str]) -> None:
    """The posterior can draw against the prior, the objective gets the features it needs, and a conditional
    VAE's prior can use the labelled encoder. `labels` names each part for the messages."""
    posterior: Posterior = parts["posterior"]
    prior: Prior = parts["prior"]
    mismatch = posterior.prior_mismatch(prior)
    if mismatch:
        raise CombinationError(f"{labels['posterior']} cannot be used with {labels['prior']}: {mismatch}")
    if prior.encodes_with is not None and prior.encodes_with != posterior.family:
        raise CombinationError(
            f"{labels['prior']} reads the encoder's output as {prior.encodes_with} posterior parameters, but "
            f"{labels['posterior']} is of the {posterior.family} family"
        )
    grid, code_dim = getattr(parts["encoder"], "latent_grid", None), getattr(prior, "code_dim", None)
    if grid is not None and code_dim is not None and code_dim != grid[0]:
        raise CombinationError(
            f"{labels['prior']} groups the code in vectors of code_dim={code_dim} numbers, but {labels['encoder']} "
            f"lays its latents out as one vector of latent_channels={grid[0]} per position: set code_dim={grid[0]} "
            "so that each position is quantized as one vector"
        )
    for feature in sorted(parts["objective"].needs()):
        if feature not in FEATURES:
            raise CombinationError(
                f"{labels['objective']} needs the posterior feature {feature!r}, which vaezoo does not know; the "
                f"features are {', '.join(FEATURES)} (name the ones it uses in needs())"
            )
        reason = posterior.why_not(feature, prior)
        if reason is not None:
            raise CombinationError(
                f"{labels['objective']} needs {FEATURES[feature]}, which {labels['posterior']} with "
                f"{labels['prior']} does not give: {reason}"
            )
    reason = parts["objective"].prior_mismatch(prior)
    if reason is not None:
        raise CombinationError(f"{labels['objective']} cannot be used with {labels['prior']}: {reason}")
    if num_classes and "encoder" in prior_takes and "num_classes" not in prior_takes:
        raise CombinationError(
            f"{labels['prior']} encodes with the VAE's encoder, which in this conditional VAE ({num_classes} "
            "classes) needs labels, but the prior's factory takes no num_classes"
        )


def _shapes(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return str(list(value.shape))
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_shapes(v) for v in value) + ")"
    return type(value).__name__


@torch.no_grad()
def dry_run(labels: dict[str, str], parts: dict[str, Any], input_shape: tuple[int, ...], latent_dim: int,
            num_classes: int) -> None:
    """One example through the encoder and the decoder (their composition_probe where they offer one), two draws
    of the prior: each output has the shape its contract promises. Modes and the global random state are left
    as they were."""
    modules = [parts[k] for k in ("encoder", "posterior", "decoder", "prior")]
    modes = [m.training for m in modules]
    label = [torch.zeros(1, num_classes).index_fill_(1, torch.tensor([0]), 1.0)] if num_classes else []
    try:
        with torch.random.fork_rng(devices=[]):
            for m in modules:
                m.eval()
            params = _check_encoder(labels["encoder"], parts, input_shape, label)
            _check_features(labels, parts, params, latent_dim)
            _check_decoder(labels["decoder"], parts, latent_dim, label)
            _check_prior(labels["prior"], parts["prior"], latent_dim)
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


def probe(network: Any) -> Any:
    """What the dry run calls in place of an encoder's or decoder's forward: the network itself, or its
    composition_probe, which a fully convolutional network offers to give forward's output shapes without
    running every layer at the full input size (vaezoo.components.ldm.networks)."""
    return getattr(network, "composition_probe", network)


def _check_encoder(label: str, parts: dict[str, Any], input_shape: tuple[int, ...], onehot: list) -> tuple:
    """The encoder's output for one input, checked against the shapes the posterior reads."""
    expected = [[1, d] for d in parts["posterior"].param_dims()]
    try:
        out = probe(parts["encoder"])(torch.rand(1, *input_shape), *onehot)
    except Exception as exc:  # noqa: BLE001 - any failure of a part's forward is reported against the part
        raise CombinationError(f"{label} fails on one input of shape {list(input_shape)}: {type(exc).__name__}: {exc}") from exc
    got = [list(t.shape) if isinstance(t, torch.Tensor) else None for t in out] if isinstance(out, (tuple, list)) else None
    if got != expected:
        raise CombinationError(
            f"{label} returned {_shapes(out)} for one input; the posterior reads a tuple of tensors shaped "
            f"{tuple(expected)}"
        )
    return tuple(out)


def _feature_outputs(feature: str, posterior: Posterior, prior: Prior, params: tuple) -> dict[str, Any]:
    """What the posterior gives for `feature` on one example, by the name of the call."""
    if feature == "samples":
        latent = posterior.draw(params, prior, 2)
        return {"draw(params, prior, samples=2).z": latent.z, "draw(params, prior, samples=2).log_q": latent.log_q}
    if feature == "kl_per_dim":
        return {"kl_per_dim(params, prior).kl": posterior.kl_per_dim(params, prior).kl}
    if feature == "kl_parts":
        return {"kl_parts(params, prior).kl": posterior.kl_parts(params, prior).kl,
                "discrete_kl_bound(prior)": torch.tensor([[posterior.discrete_kl_bound(prior)]])}
    if feature == "density":
        return {"log_density(z, params)": posterior.log_density(posterior.draw(params, prior).z, params)}
    mean, var = posterior.moments(params)
    return {"moments(params)[0]": mean, "moments(params)[1]": var}


#: The shape each call of `_feature_outputs` must return for one example, given latent_dim D.
FEATURE_SHAPES = {
    "draw(params, prior, samples=2).z": lambda d: [2, 1, d],
    "draw(params, prior, samples=2).log_q": lambda d: [2, 1],
    "kl_per_dim(params, prior).kl": lambda d: [1, d],
    "kl_parts(params, prior).kl": lambda d: [1, 2],
    "discrete_kl_bound(prior)": lambda d: [1, 1],
    "log_density(z, params)": lambda d: [1, d],
    "moments(params)[0]": lambda d: [1, d],
    "moments(params)[1]": lambda d: [1, d],
}


def _check_features(labels: dict[str, str], parts: dict[str, Any], params: tuple, latent_dim: int) -> None:
    """Each feature the objective needs, which the posterior says it offers, works on one example and has the
    shape the contract promises (a posterior whose why_not offers what it does not implement is refused here,
    not at the first training step)."""
    posterior, prior = parts["posterior"], parts["prior"]
    for feature in sorted(parts["objective"].needs()):
        head = (f"{labels['objective']} needs {FEATURES[feature]}; {labels['posterior']} with {labels['prior']} "
                "offers it (its why_not gives no reason), but")
        try:
            outputs = _feature_outputs(feature, posterior, prior, params)
        except Exception as exc:  # noqa: BLE001 - any failure of a part is reported against the parts
            raise CombinationError(f"{head} fails on one example: {type(exc).__name__}: {exc}") from exc
        for call, value in outputs.items():
            expected = FEATURE_SHAPES[call](latent_dim)
            if not isinstance(value, torch.Tensor) or list(value.shape) != expected:
                raise CombinationError(f"{head} {call} returned {_shapes(value)} for one example, not {expected}")


def _check_decoder(label: str, parts: dict[str, Any], latent_dim: int, onehot: list) -> None:
    expected = [1, *parts["likelihood"].param_shape()]
    try:
        out = probe(parts["decoder"])(torch.zeros(1, latent_dim), *onehot)
    except Exception as exc:  # noqa: BLE001
        raise CombinationError(f"{label} fails on one code of {latent_dim} dimensions: {type(exc).__name__}: {exc}") from exc
    if not isinstance(out, torch.Tensor) or list(out.shape) != expected:
        raise CombinationError(
            f"{label} returned {_shapes(out)} for one code; the likelihood reads its parameters shaped {expected}"
        )


def _check_prior(label: str, prior: Prior, latent_dim: int) -> None:
    try:
        z = prior.sample(2)
        log_p = prior.log_prob(z) if isinstance(z, torch.Tensor) else None
    except Exception as exc:  # noqa: BLE001
        raise CombinationError(f"{label} fails to sample or score: {type(exc).__name__}: {exc}") from exc
    if not isinstance(z, torch.Tensor) or list(z.shape) != [2, latent_dim]:
        raise CombinationError(f"{label}: sample(2) returned {_shapes(z)}, not a tensor shaped [2, {latent_dim}]")
    if not isinstance(log_p, torch.Tensor) or list(log_p.shape) != [2]:
        raise CombinationError(f"{label}: log_prob of two codes returned {_shapes(log_p)}, not a tensor shaped [2]")


def declared(factory: Any) -> set[str]:
    """The parameter names a factory's signature declares (empty when it cannot be inspected)."""
    try:
        return set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return set()
