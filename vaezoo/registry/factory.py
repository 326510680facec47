"""Pick architectures by name: list variants and components, show a recipe, build a VAE with overrides, and
rebuild the VAE a run recorded from the same distributions' parts."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Sequence

from vaezoo.core import VAE
from vaezoo.errors import BadOverrideError, CombinationError
from vaezoo.registry.catalog import Entry, PluginRecord
from vaezoo.registry.contract import check_combination, check_type, declared, dry_run
from vaezoo.registry.discovery import get_registry
from vaezoo.registry.hookspecs import CONTEXT, OPTIONAL_CONTEXT
from vaezoo.registry.spec import KINDS, VariantSpec

#: The order in which parts are built: each may need what is built before it.
BUILD_ORDER = ("likelihood", "posterior", "encoder", "decoder", "prior", "objective")


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
    """Component names of `kind` (encoder, posterior, decoder, prior, likelihood, objective, sampler) matching
    `pattern`."""
    if kind not in (*KINDS, "sampler"):
        raise BadOverrideError(f"unknown component kind {kind!r}; expected one of: {', '.join((*KINDS, 'sampler'))}")
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
    context = CONTEXT[kind] + OPTIONAL_CONTEXT[kind]
    return {
        p.name: p.default
        for p in params
        if p.name not in context and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def resolve(
    name: str, overrides: dict[str, Any], pinned: dict[str, str] | None = None
) -> tuple[dict[str, Entry], dict[str, dict[str, Any]]]:
    """Apply overrides to a variant: the chosen component entry and its options, per kind.

    An override is `kind=NAME` (swap that part; its recipe options are dropped), `kind={...}` or
    `kind.option=value` (one part's option), or a bare `option=value` (every part that accepts it). `pinned`
    names the exact (plugin-qualified) part of some kinds, as a run recorded them.
    """
    registry = get_registry()
    recipe = get_model_spec(name).recipe
    chosen = {kind: recipe.component(kind) for kind in KINDS}
    options = {kind: dict(recipe.options.get(kind, {})) for kind in KINDS}
    for kind in KINDS:
        value = overrides.get(kind)
        if isinstance(value, str):
            chosen[kind], options[kind] = value, {}
    chosen.update(pinned or {})
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


def _context(kind: str, factory: Any, available: dict[str, Any]) -> dict[str, Any]:
    """The context for one factory: its kind's required context, and the optional context it declares."""
    names = declared(factory)
    return {k: available[k] for k in CONTEXT[kind]} | {
        k: available[k] for k in OPTIONAL_CONTEXT[kind] if k in names and k in available
    }


def _identity(entry: Entry, plugins: dict[str, PluginRecord]) -> dict[str, str]:
    record = plugins[entry.plugin]
    return {"name": entry.qualified_name, "distribution": record.distribution, "version": record.version}


def _build(
    name: str, input_shape: Sequence[int] | None, latent_dim: int | None, num_classes: int | None,
    overrides: dict[str, Any], pinned: dict[str, str] | None = None,
) -> VAE:
    """Build, check and wire the parts of variant `name` (see create_model)."""
    variant = get_registry().get("variant", name)
    recipe: VariantSpec = variant.obj
    shape = _input_shape(input_shape if input_shape is not None else recipe.input_shape)
    if latent_dim is not None and (isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1):
        raise BadOverrideError(f"latent_dim must be a positive int, got {latent_dim!r}")
    classes = recipe.num_classes if num_classes is None else num_classes
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 0:
        raise BadOverrideError(f"num_classes must be a non-negative int, got {num_classes!r}")
    entries, options = resolve(name, overrides, pinned)
    labels = {kind: f"{kind} {entries[kind].qualified_name!r}" for kind in KINDS}
    dim = _latent_dim(name, entries, options, labels, shape, recipe.latent_dim if latent_dim is None else latent_dim,
                      latent_dim is not None)
    if classes:
        for kind in ("encoder", "decoder"):
            if "num_classes" not in declared(entries[kind].obj):
                raise CombinationError(
                    f"variant {name!r} is conditional ({classes} classes), but {labels[kind]} takes no labels "
                    "(its factory has no num_classes parameter)"
                )
    available: dict[str, Any] = {"input_shape": shape, "latent_dim": dim}
    if classes:
        available["num_classes"] = classes
    parts: dict[str, Any] = {}
    for kind in BUILD_ORDER:
        factory = entries[kind].obj
        try:
            parts[kind] = factory(**_context(kind, factory, available), **options[kind])
        except (ValueError, TypeError) as exc:
            raise BadOverrideError(
                f"variant {name!r}: building {labels[kind]} with options {options[kind]} for input_shape "
                f"{shape} and latent_dim {dim} failed: {exc}"
            ) from exc
        check_type(kind, labels[kind], parts[kind])
        if kind == "likelihood":
            available["output_shape"] = parts[kind].param_shape()
        elif kind == "posterior":
            available["output_dims"] = parts[kind].param_dims()
            serves = getattr(entries["encoder"].obj, "posterior_mismatch", None)
            reason = serves(parts[kind].param_dims(), dim) if serves is not None else None
            if reason is not None:
                raise CombinationError(f"{labels['encoder']} cannot give {labels['posterior']} its parameters: {reason}")
        elif kind == "encoder":
            available["encoder"] = parts[kind]
    encoder_dims = "output_dims" in declared(entries["encoder"].obj)
    if not encoder_dims and parts["posterior"].param_dims() != (dim, dim):
        raise CombinationError(
            f"{labels['posterior']} reads tensors of sizes {parts['posterior'].param_dims()} from the encoder, but "
            f"{labels['encoder']} returns (mu, logvar) of {dim} each (its factory has no output_dims parameter)"
        )
    check_combination(labels, parts, classes, declared(entries["prior"].obj))
    dry_run(labels, parts, shape, dim, classes)
    plugins = get_registry().plugins
    config = {
        "variant": variant.qualified_name, "input_shape": list(shape), "latent_dim": dim, "num_classes": classes,
        "overrides": overrides, "identity": {"variant": _identity(variant, plugins)}
        | {kind: _identity(entries[kind], plugins) for kind in KINDS},
    }
    return VAE(
        parts["encoder"], parts["decoder"], parts["prior"], parts["likelihood"], parts["objective"],
        posterior=parts["posterior"], input_shape=shape, latent_dim=dim, num_classes=classes, config=config,
    )


def _latent_dim(name: str, entries: dict[str, Entry], options: dict[str, dict[str, Any]], labels: dict[str, str],
                shape: tuple[int, ...], dim: int, asked: bool) -> int:
    """The latent_dim to build with: the one asked for (or the recipe's), unless the encoder or the decoder
    fixes it from the input shape (`latent_dim_for`: spatial latents of C x h x w numbers); a latent_dim asked
    for that disagrees with it is refused."""
    for kind in ("encoder", "decoder"):
        derive = getattr(entries[kind].obj, "latent_dim_for", None)
        if derive is None:
            continue
        try:
            fixed = derive(shape, options[kind])
        except (ValueError, TypeError) as exc:
            raise BadOverrideError(f"variant {name!r}: {labels[kind]} with options {options[kind]}: {exc}") from exc
        if asked and fixed != dim:
            raise BadOverrideError(
                f"variant {name!r}: {labels[kind]} sets latent_dim from the input shape {list(shape)} and its "
                f"options to {fixed}, not {dim}; leave latent_dim out and change its latent_channels instead"
            )
        return fixed
    return dim


def default_latent_dim(name: str) -> int:
    """The latent_dim create_model(name) builds with for the variant's default input shape: the recipe's, or the
    one its spatial encoder or decoder sets (see _latent_dim)."""
    recipe = get_model_spec(name).recipe
    entries, options = resolve(name, {})
    labels = {kind: f"{kind} {entries[kind].qualified_name!r}" for kind in KINDS}
    return _latent_dim(name, entries, options, labels, tuple(recipe.input_shape), recipe.latent_dim, False)


def _input_shape(value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise BadOverrideError(f"input_shape must be a sequence of positive sizes like (1, 28, 28), got {value!r}")
    if not value or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in value):
        raise BadOverrideError(f"input_shape must be positive sizes like (1, 28, 28), got {value!r}")
    return tuple(value)


def create_model(
    name: str,
    input_shape: Sequence[int] | None = None,
    latent_dim: int | None = None,
    num_classes: int | None = None,
    **overrides: Any,
) -> VAE:
    """Build the variant `name` for inputs of `input_shape`, with `overrides` applied (see `resolve`).

    `num_classes` (default: the recipe's) > 0 builds a conditional VAE, whose encoder and decoder take labels.
    This is the one place where parts meet: the likelihood fixes the decoder's output shape, the posterior the
    encoder's, and a prior that declares `input_shape`, `encoder` or `num_classes` gets them (the encoder is
    shared, not copied). Parts that break the plugin contract, or cannot work together, are refused here with
    a `CombinationError` that names them and says why.
    """
    return _build(name, input_shape, latent_dim, num_classes, overrides)


def rebuild(config: dict[str, Any]) -> VAE:
    """The VAE a run's config describes, built from the parts of the very distributions that made it.

    A part whose distribution is not installed, is blocked or failed to load, or no longer offers the part, is
    refused with what to install or unblock; no other plugin's part of the same name is ever substituted.
    """
    identity = config["identity"]
    pinned = {kind: _provider_name(kind, identity[kind]) for kind in KINDS if kind in identity}
    return _build(
        _provider_name("variant", identity["variant"]), config["input_shape"], config["latent_dim"],
        config.get("num_classes", 0), config["overrides"], pinned,
    )


def _provider_name(kind: str, recorded: dict[str, str]) -> str:
    """The plugin-qualified name under which the recorded distribution offers the recorded part today."""
    registry = get_registry()
    bare = recorded["name"].rpartition(":")[2]
    dist, version = recorded["distribution"], recorded["version"]
    records = [r for r in registry.plugins.values() if r.distribution == dist]
    if not records:
        raise CombinationError(
            f"the run's {kind} {recorded['name']!r} comes from the distribution {dist} {version}, which is not "
            f"installed: pip install '{dist}=={version}'"
        )
    active = [r for r in records if r.status == "active"]
    for record in active:
        if (kind, bare) in {(k, n) for k, names in record.contributed.items() for n in names}:
            return f"{record.name}:{bare}"
    blocked = [r for r in records if r.status == "blocked"]
    if blocked:
        raise CombinationError(
            f"the run's {kind} {recorded['name']!r} comes from plugin {blocked[0].name!r} ({dist}), which is "
            f"installed but blocked by VAEZOO_DISABLE_PLUGINS; remove {blocked[0].name} from that variable"
        )
    failed = [r for r in records if r.status == "failed"]
    if failed:
        raise CombinationError(
            f"the run's {kind} {recorded['name']!r} comes from plugin {failed[0].name!r} ({dist}), which failed "
            f"to load: {failed[0].error}"
        )
    have = ", ".join(f"{r.distribution} {r.version}" for r in records)
    raise CombinationError(
        f"the run's {kind} {recorded['name']!r} was made with {dist} {version}; the installed {have} no longer "
        f"offers it: pip install '{dist}=={version}'"
    )


def identity_of(kind: str, name: str) -> dict[str, str]:
    """What a run records of the `kind` registered as `name` (a dataset, say): its plugin-qualified name and the
    distribution and version that provide it."""
    registry = get_registry()
    return _identity(registry.get(kind, name), registry.plugins)


def recorded_provider(kind: str, recorded: dict[str, str]) -> str:
    """The plugin-qualified name under which the recorded distribution offers the recorded `kind` today; a
    CombinationError says what to install or unblock when it does not (never another plugin's of that name)."""
    return _provider_name(kind, recorded)
