"""The registries of components, variants and datasets, who provided each entry, and name lookup with helpful errors."""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from vaezoo.errors import AmbiguousNameError, UnknownNameError
from vaezoo.registry.hookspecs import CONTEXT
from vaezoo.registry.spec import KINDS, VariantSpec
from vaezoo.registry.weights import PretrainedWeights, split_name

ALL_KINDS = (*KINDS, "variant", "dataset", "sampler", "weights")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class Entry:
    """One registered part or variant and the plugin that gave it."""

    kind: str
    name: str
    obj: Any  # a factory for components, a VariantSpec for variants, a loader for datasets, PretrainedWeights
    plugin: str
    description: str = ""
    tags: tuple[str, ...] = ()

    @property
    def qualified_name(self) -> str:
        return f"{self.plugin}:{self.name}"


@dataclass
class PluginRecord:
    """What discovery knows of one plugin: where it came from, whether it works, and what it gave."""

    name: str
    distribution: str
    version: str
    status: str  # "active", "failed" or "blocked"
    builtin: bool = False
    error: str | None = None
    contributed: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "builtin": self.builtin,
            "error": self.error,
            "contributed": self.contributed,
        }


def natural_key(text: str) -> list[Any]:
    """Sort key that orders 'vae-2' before 'vae-10'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _check_kind(kind: str) -> None:
    if kind not in ALL_KINDS:
        raise UnknownNameError(f"unknown kind {kind!r}; expected one of: {', '.join(ALL_KINDS)}")


class Registry:
    """Every entry of every kind, keyed by (kind, name), with all providers of a name kept side by side."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], list[Entry]] = {}
        self.plugins: dict[str, PluginRecord] = {}

    def add(self, entry: Entry) -> None:
        _check_kind(entry.kind)
        if entry.kind == "weights":
            split_name(entry.name)
        elif not isinstance(entry.name, str) or not NAME_PATTERN.match(entry.name):
            raise ValueError(
                f"{entry.kind} name {entry.name!r} is not valid: use lower-case letters, digits, '.', '_' and '-'"
            )
        providers = self._entries.setdefault((entry.kind, entry.name), [])
        if any(e.plugin == entry.plugin for e in providers):
            raise ValueError(f"plugin {entry.plugin!r} registered {entry.kind} {entry.name!r} twice")
        providers.append(entry)

    def remove_plugin(self, plugin: str) -> None:
        """Forget everything `plugin` registered (used when it fails half-way)."""
        for key in list(self._entries):
            kept = [e for e in self._entries[key] if e.plugin != plugin]
            if kept:
                self._entries[key] = kept
            else:
                del self._entries[key]

    def pin_recipes(self) -> None:
        """Point a variant's bare part names at its own plugin's part when other plugins give the same name.

        So a plugin that happens to reuse a name (say encoder "mlp") never breaks another plugin's variants:
        a recipe means its own plugin's part first; any other clashing bare name still fails on use.
        """
        for key, providers in self._entries.items():
            if key[0] == "variant":
                self._entries[key] = [self._pinned(entry) for entry in providers]

    def _pinned(self, variant: Entry) -> Entry:
        recipe: VariantSpec = variant.obj
        pins = {}
        for kind in KINDS:
            name = recipe.component(kind)
            providers = self._entries.get((kind, name), [])
            if len(providers) > 1 and any(e.plugin == variant.plugin for e in providers):
                pins[kind] = f"{variant.plugin}:{name}"
        return dataclasses.replace(variant, obj=dataclasses.replace(recipe, **pins)) if pins else variant

    def entries(self, kind: str) -> list[Entry]:
        _check_kind(kind)
        found = [e for (k, _), providers in self._entries.items() if k == kind for e in providers]
        return sorted(found, key=lambda e: (natural_key(e.name), e.plugin))

    def names(self, kind: str, pattern: str = "*") -> list[str]:
        """Names of `kind` matching the fnmatch `pattern`; a clashing name is listed once per provider."""
        result = []
        for entry in self.entries(kind):
            clash = len(self._entries[(kind, entry.name)]) > 1
            shown = entry.qualified_name if clash else entry.name
            if fnmatch.fnmatchcase(entry.name, pattern) or fnmatch.fnmatchcase(shown, pattern):
                result.append(shown)
        return result

    def get(self, kind: str, name: str) -> Entry:
        """Look `name` (or `plugin:name`) up, with close matches on a miss and all providers on a clash."""
        _check_kind(kind)
        if not isinstance(name, str):
            raise UnknownNameError(f"{kind} name must be a string, got {type(name).__name__}")
        plugin, _, bare = name.rpartition(":")
        providers = self._entries.get((kind, bare), [])
        if plugin:
            providers = [e for e in providers if e.plugin == plugin]
        if not providers:
            raise UnknownNameError(self._unknown_message(kind, name))
        if len(providers) > 1:
            options = ", ".join(e.qualified_name for e in providers)
            raise AmbiguousNameError(
                f"{kind} {name!r} is provided by {len(providers)} plugins "
                f"({', '.join(e.plugin for e in providers)}); pick one with plugin:name, one of: {options}"
            )
        return providers[0]

    def _unknown_message(self, kind: str, name: str) -> str:
        known = sorted({n for (k, n) in self._entries if k == kind}, key=natural_key)
        close = difflib.get_close_matches(name.rpartition(":")[2], known, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        listing = f" Known {kind}s: {', '.join(known)}." if known else f" No {kind}s are registered."
        return f"unknown {kind} {name!r}.{hint}{listing}"


def check_factory(kind: str, name: str, factory: Callable[..., Any]) -> None:
    """Refuse a factory whose signature cannot take its kind's context by name (see hookspecs.CONTEXT)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no introspectable signature: the build-time checks still apply
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    takes = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    missing = [c for c in CONTEXT[kind] if c not in takes]
    if missing:
        call = ", ".join(f"{c}=..." for c in CONTEXT[kind]) + ", **options"
        raise TypeError(
            f"{kind} {name!r}: its factory {getattr(factory, '__qualname__', factory)}{inspect.signature(factory)} "
            f"does not name {', '.join(missing)}; vaezoo calls {kind} factories as factory({call}), by keyword"
        )


def register_callback(registry: Registry, kind: str, plugin: str, record: PluginRecord) -> Callable[..., None]:
    """The `register` function handed to one plugin's hook for one kind."""

    def register(name: str, obj: Any, description: str | None = None, tags: tuple[str, ...] | list[str] = ()) -> None:
        if kind == "variant":
            obj = VariantSpec.coerce(obj)
        elif kind == "weights":
            obj = PretrainedWeights.coerce(obj)
        elif not callable(obj):
            role = "loader" if kind == "dataset" else "factory"
            raise TypeError(f"{kind} {name!r}: the {role} must be callable, got {type(obj).__name__}")
        else:
            check_factory(kind, name, obj)
        text = description if description is not None else (getattr(obj, "__doc__", None) or "")
        summary = text.strip().splitlines()[0] if text.strip() and kind not in ("variant", "weights") else (description or "")
        registry.add(Entry(kind, name, obj, plugin, summary, tuple(tags)))
        record.contributed.setdefault(kind, []).append(name)

    return register
