"""What `vaezoo list` and `vaezoo show` print, as data for the Python API too: the registered entries of a kind
with their plugins, and a variant's recipe with, per part, its provider and the options it takes."""
from __future__ import annotations

import inspect
from typing import Any

from vaezoo.registry.discovery import get_registry
from vaezoo.registry.factory import component_options, default_latent_dim, get_model_spec
from vaezoo.registry.spec import KINDS


def list_entries(kind: str = "variant", pattern: str = "*") -> list[dict[str, str]]:
    """The registered entries of `kind` whose names match `pattern` (fnmatch, natural order): name, kind, the
    plugin that gave it and its description."""
    registry = get_registry()
    rows = []
    for name in registry.names(kind, pattern):
        entry = registry.get(kind, name)
        rows.append({"name": name, "kind": kind, "plugin": entry.plugin, "description": entry.description})
    return rows


def describe_variant(name: str) -> dict[str, Any]:
    """A variant's recipe with, per part, its provider, description and the options it takes (the part's
    defaults, under the variant's own)."""
    spec = get_model_spec(name)
    registry = get_registry()
    parts = {}
    for kind in KINDS:
        entry = registry.get(kind, spec.recipe.component(kind))
        accepted = component_options(kind, entry.obj)
        defaults = {k: (None if v is inspect.Parameter.empty else v) for k, v in (accepted or {}).items()}
        parts[kind] = {
            "name": entry.name,
            "plugin": entry.plugin,
            "description": entry.description,
            "options": {**defaults, **spec.recipe.options.get(kind, {})},
        }
    return {
        "name": spec.name,
        "plugin": spec.plugin,
        "description": spec.description,
        "tags": list(spec.tags),
        "latent_dim": default_latent_dim(name),
        "input_shape": list(spec.recipe.input_shape),
        "parts": parts,
    }
