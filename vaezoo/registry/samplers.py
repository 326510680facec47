"""Build a sampler by name for a trained model, or rebuild the one a run recorded from the same distribution, and
refuse one that cannot model the model's codes with one line naming both parts."""
from __future__ import annotations

from typing import Any

from vaezoo.core import VAE, Sampler
from vaezoo.errors import BadOverrideError, CombinationError
from vaezoo.registry.catalog import Entry
from vaezoo.registry.contract import check_type, declared
from vaezoo.registry.discovery import get_registry
from vaezoo.registry.factory import component_options, identity_of, recorded_provider


def posterior_label(model: VAE) -> str:
    """How refusals name the model's posterior: as its run recorded it, else by class (a hand-built model)."""
    recorded = model.config.get("identity", {}).get("posterior")
    return f"posterior {recorded['name']!r}" if recorded else f"posterior {type(model.posterior).__name__}"


def _build(entry: Entry, model: VAE, options: dict[str, Any]) -> Sampler:
    label = f"sampler {entry.qualified_name!r}"
    accepted = component_options("sampler", entry.obj)
    unknown = sorted(set(options) - set(accepted)) if accepted is not None else []
    if unknown:
        raise BadOverrideError(f"{label} has no option {', '.join(map(repr, unknown))}; it accepts "
                               f"{', '.join(sorted(accepted)) or 'no options'}")
    context: dict[str, Any] = {"latent_dim": model.latent_dim}
    if "prior" in declared(entry.obj):
        context["prior"] = model.prior
    try:
        sampler = entry.obj(**context, **options)
    except (ValueError, TypeError) as exc:
        raise BadOverrideError(f"building {label} with options {options} for latent_dim {model.latent_dim} "
                               f"failed: {exc}") from exc
    check_type("sampler", label, sampler)
    reason = sampler.why_not(model.posterior.family, model.conditional)
    if reason is not None:
        raise CombinationError(f"{label} cannot be fitted to the codes of {posterior_label(model)}: {reason}")
    return sampler


def build_sampler(name: str, model: VAE, **options: Any) -> tuple[Sampler, dict[str, str]]:
    """The sampler registered as `name` for `model`, checked against its posterior, and what a run records of it
    (its plugin-qualified name, distribution and version)."""
    entry = get_registry().get("sampler", name)
    return _build(entry, model, options), identity_of("sampler", name)


def rebuild_sampler(identity: dict[str, str], model: VAE, options: dict[str, Any]) -> Sampler:
    """The sampler a run recorded, from the distribution that made it (never another plugin's of that name)."""
    return _build(get_registry().get("sampler", recorded_provider("sampler", identity)), model, options)
