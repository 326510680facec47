"""Plugin discovery on pluggy: built-in plugins first, then each `vaezoo` entry point loaded on its own.

A plugin that fails to import, fails hook validation or raises inside a hook is recorded, reported with one
warning and skipped; VAEZOO_STRICT_PLUGINS=1 makes such failures errors. VAEZOO_DISABLE_PLUGINS=a,b blocks
plugins by entry-point or distribution name. An entry-point name that several distributions use is qualified
as NAME@DISTRIBUTION for every one of them, so no plugin's identity depends on the order of the environment.
"""
from __future__ import annotations

import difflib
import importlib
import inspect
import os
import warnings
from importlib.metadata import EntryPoint, entry_points

import pluggy

from vaezoo._version import __version__
from vaezoo.errors import PluginError
from vaezoo.registry import hookspecs
from vaezoo.registry.catalog import PluginRecord, Registry, register_callback

ENTRY_POINT_GROUP = "vaezoo"
BUILTIN_PLUGIN = "vaezoo"
BUILTIN_MODULES = (
    "vaezoo.components.encoders",
    "vaezoo.components.posteriors",
    "vaezoo.components.decoders",
    "vaezoo.components.ldm",
    "vaezoo.components.priors",
    "vaezoo.components.likelihoods",
    "vaezoo.components.objectives",
    "vaezoo.components.variants",
    "vaezoo.components.samplers",
    "vaezoo.data.builtin",
)
HOOKS = {
    "encoder": "vaezoo_register_encoders",
    "posterior": "vaezoo_register_posteriors",
    "decoder": "vaezoo_register_decoders",
    "prior": "vaezoo_register_priors",
    "likelihood": "vaezoo_register_likelihoods",
    "objective": "vaezoo_register_objectives",
    "variant": "vaezoo_register_variants",
    "dataset": "vaezoo_register_datasets",
    "sampler": "vaezoo_register_samplers",
    "weights": "vaezoo_register_weights",
}


class PluginWarning(UserWarning):
    """A third-party plugin failed and was skipped."""


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _disabled() -> set[str]:
    return {p.strip() for p in os.environ.get("VAEZOO_DISABLE_PLUGINS", "").split(",") if p.strip()}


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _fail(record: PluginRecord, registry: Registry, exc: BaseException, stage: str, strict: bool) -> None:
    record.status = "failed"
    record.error = f"{stage}: {_describe(exc)}"
    record.contributed = {}
    registry.remove_plugin(record.name)
    message = (
        f"vaezoo plugin {record.name!r} (distribution {record.distribution} {record.version}) failed and was "
        f"skipped: {record.error}. Set VAEZOO_DISABLE_PLUGINS={record.name} to silence this."
    )
    if strict:
        raise PluginError(message) from exc
    warnings.warn(message, PluginWarning, stacklevel=3)


def _entry_point_record(ep: EntryPoint) -> PluginRecord:
    dist = getattr(ep, "dist", None)
    return PluginRecord(
        name=ep.name,
        distribution=dist.name if dist is not None else "?",
        version=dist.version if dist is not None else "?",
        status="active",
    )


def _check_hook_functions(plugin: object) -> None:
    """Refuse hook functions with a misspelt name (naming the close match) or an argument not called register."""
    marker = f"{ENTRY_POINT_GROUP}_impl"
    for attr in dir(plugin):
        function = getattr(plugin, attr, None)
        if not callable(function) or getattr(function, marker, None) is None:
            continue
        if attr not in HOOKS.values():
            close = difflib.get_close_matches(attr, HOOKS.values(), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else f"; the hooks are {', '.join(HOOKS.values())}"
            raise ValueError(f"{attr} is not a vaezoo hook{hint}")
        argnames = list(inspect.signature(function).parameters)
        if argnames != ["register"]:
            raise ValueError(f"{attr}({', '.join(argnames)}): a vaezoo hook takes exactly one argument, named register")


def _register(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Register one imported plugin with `pm`, refusing hookimpls that break the contract."""
    if ":" in name:
        raise ValueError(f"plugin name {name!r} may not contain ':' (it separates plugin and part in plugin:name)")
    _check_hook_functions(plugin)
    pm.register(plugin, name=name)  # checks each hookimpl's arguments against its hookspec
    pm.check_pending()  # hookimpls named after no hookspec
    for caller in pm.get_hookcallers(plugin) or []:
        if any(i.plugin_name == name and (i.hookwrapper or i.wrapper) for i in caller.get_hookimpls()):
            raise ValueError(f"{caller.name}: vaezoo hooks take plain hookimpls, not wrappers")


def _run_hooks(pm: pluggy.PluginManager, registry: Registry, records: dict[str, PluginRecord], strict: bool) -> None:
    """Call every plugin's hooks one plugin at a time, so a failure is charged to the plugin that raised."""
    owner = {name: (BUILTIN_PLUGIN if name in BUILTIN_MODULES else name) for name, _ in pm.list_name_plugin()}
    for kind, hook_name in HOOKS.items():
        for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
            record = records[owner[impl.plugin_name]]
            if record.status != "active":
                continue
            register = register_callback(registry, kind, record.name, record)
            try:
                impl.function(*[register for _ in impl.argnames])
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - any failure inside a plugin is isolated
                if record.builtin:
                    raise
                _fail(record, registry, exc, f"{hook_name} raised", strict)


def build_registry() -> Registry:
    """Discover built-in and installed plugins and collect what they register."""
    strict = _flag("VAEZOO_STRICT_PLUGINS")
    disabled = _disabled()
    registry = Registry()
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    records: dict[str, PluginRecord] = {
        BUILTIN_PLUGIN: PluginRecord(BUILTIN_PLUGIN, "vaezoo", __version__, "active", builtin=True)
    }
    for module_name in BUILTIN_MODULES:
        pm.register(importlib.import_module(module_name), name=module_name)

    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, _entry_point_record(ep).distribution))
    shared = {ep.name for ep in found if ep.name == BUILTIN_PLUGIN or sum(e.name == ep.name for e in found) > 1}
    for ep in found:
        record = _entry_point_record(ep)
        if ep.name in shared:
            record.name = f"{ep.name}@{record.distribution}"
        records[record.name] = record
        if {ep.name, record.name, record.distribution} & disabled:
            record.status = "blocked"
            continue
        try:
            plugin = ep.load()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a broken plugin must not take the zoo down
            _fail(record, registry, exc, "import failed", strict)
            continue
        try:
            _register(pm, plugin, record.name)
        except (Exception, SystemExit) as exc:  # noqa: BLE001
            if pm.get_plugin(record.name) is plugin:  # not another plugin that holds the same name
                pm.unregister(name=record.name)
            _fail(record, registry, exc, "hook validation failed", strict)

    _run_hooks(pm, registry, records, strict)
    registry.pin_recipes()
    registry.plugins = records
    return registry


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = build_registry()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the registry so the next lookup discovers plugins again (after installing one, in tests)."""
    global _REGISTRY
    _REGISTRY = None
