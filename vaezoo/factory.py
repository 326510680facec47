"""Pick architectures by name: list variants and components, show a recipe, build a VAE with overrides."""
from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass
from typing import Any, Sequence

from vaezoo.discovery import get_registry
from vaezoo.errors import BadOverrideError
from vaezoo.model import VAE
from vaezoo.registry import Entry
from vaezoo.spec import KINDS, VariantSpec

#: Parameters that vaezoo passes to every factory itself, positionally; users cannot override them.
CONTEXT_PARAMS = {
    "encoder": ("input_shape", "latent_dim"),
    "decoder": ("latent_dim", "output_shape"),
    "prior": ("latent_dim",),
    "likelihood": ("input_shape",),
    "objective": (),
}
#: Parameters that vaezoo passes by keyword, only to factories whose signature names them: `num_classes` to
#: the networks of a conditional VAE, the input shape and the VAE's (shared) encoder to priors that need them.
OPTIONAL_CONTEXT = {
    "encoder": ("num_classes",),
    "decoder": ("num_classes",),
    "prior": ("input_shape", "encoder"),
    "likelihood": (),
    "objective": (),
}


@dataclass(frozen=True)
class ModelSpec:
    """A variant's recipe as registered, and the plugin that gave it."""

    name: str
    plugin: str
    description: str
    tags: tuple[str, ...]
    recipe: VariantSpec


def list_models(pattern: str = "*", tags: Sequence[str] | None = None) -> list[str]:
    """Variant names matching the fnmatch `pattern` (and carrying every tag in `tags`), naturally sorted."""
    registry = get_registry()
    names = registry.names("variant", pattern)
    if tags:
        wanted = set(tags)
        names = [n for n in names if wanted <= set(registry.get("variant", n).tags)]
    return names


def list_components(kind: str, pattern: str = "*") -> list[str]:
    """Component names of `kind` (encoder, decoder, prior, likelihood, objective) matching `pattern`."""
    if kind not in KINDS:
        raise BadOverrideError(f"unknown component kind {kind!r}; expected one of: {', '.join(KINDS)}")
    return get_registry().names(kind, pattern)


def get_model_spec(name: str) -> ModelSpec:
    """The recipe registered under `name`, with the plugin that gave it."""
    entry = get_registry().get("variant", name)
    return ModelSpec(entry.name, entry.plugin, entry.description, entry.tags, entry.obj)


def component_options(kind: str, factory: Any) -> dict[str, Any] | None:
    """The options a factory accepts with their defaults (inspect.Parameter.empty if required); None for **kwargs."""
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    context = CONTEXT_PARAMS[kind] + OPTIONAL_CONTEXT[kind]
    return {
        p.name: p.default
        for p in params
        if p.name not in context and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def declared_context(factory: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The optional context values whose names `factory`'s signature declares."""
    params = inspect.signature(factory).parameters
    return {key: value for key, value in context.items() if key in params}


def resolve(name: str, overrides: dict[str, Any]) -> tuple[dict[str, Entry], dict[str, dict[str, Any]]]:
    """Apply overrides to a variant: the chosen component entry and its options, per kind.

    An override is `kind=NAME` (swap that part; its recipe options are dropped), `kind={...}` or
    `kind.option=value` (one part's option), or a bare `option=value` (every part that accepts it).
    """
    registry = get_registry()
    recipe = get_model_spec(name).recipe
    chosen = {kind: recipe.component(kind) for kind in KINDS}
    options = {kind: dict(recipe.options.get(kind, {})) for kind in KINDS}
    for kind in KINDS:
        value = overrides.get(kind)
        if isinstance(value, str):
            chosen[kind], options[kind] = value, {}
    entries = {kind: registry.get(kind, chosen[kind]) for kind in KINDS}
    accepted = {kind: component_options(kind, entries[kind].obj) for kind in KINDS}

    def reject(key: str, kinds: Sequence[str]) -> BadOverrideError:
        lines = "; ".join(
            f"{k} {entries[k].name!r} accepts {', '.join(sorted(accepted[k] or {})) or 'no options'}" for k in kinds
        )
        return BadOverrideError(f"variant {name!r}: no part accepts the override {key!r}. {lines}.")

    for key, value in overrides.items():
        if key in KINDS and isinstance(value, str):
            continue
        if key in KINDS:
            if not isinstance(value, dict):
                raise BadOverrideError(f"variant {name!r}: override {key!r} must be a component name or a dict")
            targets = [(key, k, v) for k, v in value.items()]
        elif "." in key:
            kind, _, option = key.partition(".")
            if kind not in KINDS:
                raise BadOverrideError(f"variant {name!r}: {key!r} names no part; use one of {', '.join(KINDS)}")
            targets = [(kind, option, value)]
        else:
            kinds = [k for k in KINDS if accepted[k] is None or key in accepted[k]]
            if not kinds:
                raise reject(key, KINDS)
            targets = [(k, key, value) for k in kinds]
        for kind, option, val in targets:
            if accepted[kind] is not None and option not in accepted[kind]:
                raise reject(f"{kind}.{option}", [kind])
            options[kind][option] = val
    return entries, options


def create_model(
    name: str,
    input_shape: Sequence[int] | None = None,
    latent_dim: int | None = None,
    num_classes: int | None = None,
    **overrides: Any,
) -> VAE:
    """Build the variant `name` for inputs of `input_shape`, with `overrides` applied (see `resolve`).

    `num_classes` (default: the recipe's) > 0 builds a conditional VAE, whose encoder and decoder take labels.
    This is the one place where parts meet: the likelihood fixes the decoder's output shape, and a prior that
    declares `input_shape` or `encoder` gets them (the encoder is shared, not copied).
    """
    recipe = get_model_spec(name).recipe
    shape = tuple(int(s) for s in (input_shape if input_shape is not None else recipe.input_shape))
    if not shape or any(s < 1 for s in shape):
        raise BadOverrideError(f"input_shape must be positive sizes like (1, 28, 28), got {input_shape!r}")
    dim = recipe.latent_dim if latent_dim is None else latent_dim
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise BadOverrideError(f"latent_dim must be a positive int, got {latent_dim!r}")
    classes = recipe.num_classes if num_classes is None else num_classes
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 0:
        raise BadOverrideError(f"num_classes must be a non-negative int, got {num_classes!r}")
    entries, options = resolve(name, overrides)
    labels = {"num_classes": classes} if classes else {}
    for kind in ("encoder", "decoder"):
        if labels and not declared_context(entries[kind].obj, labels):
            raise BadOverrideError(
                f"variant {name!r} is conditional ({classes} classes), but {kind} {entries[kind].name!r} "
                "takes no labels (its factory has no num_classes parameter)"
            )
    parts: dict[str, Any] = {}
    try:
        parts["likelihood"] = entries["likelihood"].obj(shape, **options["likelihood"])
        parts["encoder"] = entries["encoder"].obj(shape, dim, **labels, **options["encoder"])
        parts["decoder"] = entries["decoder"].obj(
            dim, parts["likelihood"].param_shape(), **labels, **options["decoder"]
        )
        prior_context = declared_context(entries["prior"].obj, {"input_shape": shape, "encoder": parts["encoder"]})
        parts["prior"] = entries["prior"].obj(dim, **prior_context, **options["prior"])
        parts["objective"] = entries["objective"].obj(**options["objective"])
    except (ValueError, TypeError) as exc:
        failed = next(k for k in ("likelihood", "encoder", "decoder", "prior", "objective") if k not in parts)
        raise BadOverrideError(
            f"variant {name!r}: building {failed} {entries[failed].name!r} with options "
            f"{options[failed]} for input_shape {shape} failed: {exc}"
        ) from exc
    plugins = get_registry().plugins
    providers = {entry.plugin for entry in entries.values()} | {get_model_spec(name).plugin}
    config = {
        "variant": name, "input_shape": list(shape), "latent_dim": dim, "num_classes": classes, "overrides": overrides,
        "plugins": {p: {"distribution": plugins[p].distribution, "version": plugins[p].version} for p in sorted(providers)},
    }
    return VAE(**parts, input_shape=shape, latent_dim=dim, num_classes=classes, config=config)
