"""A hand-built model's architecture recorded without pickle, and rebuilt from that record.

The record is the tree of the model's modules: each module's class by import path, its plain attributes as
JSON (numbers, strings, lists, tuples, dicts, and references to other modules of the tree), which of its
parameters and buffers exist, and its children. Rebuilding imports each named module and takes the named
class only when it is an nn.Module subclass (code the user installed, never code from the file), makes the
instance without calling its constructor and hands its __setstate__ the recorded attributes, as unpickling
does; parameters and buffers come from model.safetensors, the few buffers that a state dict leaves out from the
record's own tensors. A model this cannot describe exactly (an attribute that is not plain data, hooks, tied
weights, a class that cannot be imported by its name, custom pickling) raises NotRecordable, naming the first
such part.
"""
from __future__ import annotations

import importlib
import json
import math
import re
import sys
from typing import Any

import torch
from torch import nn

#: What nn.Module.__init__ puts in every module's __dict__: rebuilt by it, never recorded.
MODULE_INTERNALS = frozenset(nn.Module().__dict__)
#: Methods that change what pickling saves; a class that overrides one is not described by its __dict__. (Its
#: own __setstate__ is fine: rebuilding calls it with the __dict__, as unpickling does.)
PICKLING = ("__getstate__", "__reduce__", "__reduce_ex__", "__getnewargs__", "__getnewargs_ex__")
SCALARS = (type(None), bool, int, str)
TAGS = ("tuple", "dict", "module", "float")
DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


#: Packages whose modules a record may name without the caller's say-so (their import runs no code of the run's).
IMPORTABLE = ("vaezoo", "torch")


class NotImported(ImportError):
    """A record names a class of a module that is not imported; importing it would run that module's code."""

    def __init__(self, module: str) -> None:
        super().__init__(module)
        self.module = module


def may_import(module: str, imports: tuple[str, ...]) -> bool:
    """Whether rebuilding may import `module`: already imported, a public module of vaezoo or torch, or one of
    (or inside one of) the modules the caller named in `imports`."""
    if module in sys.modules:
        return True
    if any(module == name or module.startswith(f"{name}.") for name in imports):
        return True
    parts = module.split(".")
    return parts[0] in IMPORTABLE and not any(part.startswith("_") for part in parts)


class NotRecordable(ValueError):
    """The model holds something that a JSON record cannot describe exactly (the message names it)."""


def _class_path(cls: type, where: str) -> str:
    """module:qualname of `cls`, checked to import back to the very same class."""
    module, qualname = cls.__module__, cls.__qualname__
    found = _resolve(module, qualname) if DOTTED.match(module) and DOTTED.match(qualname) else None
    if found is not cls:
        raise NotRecordable(f"{where} is a {qualname} that cannot be imported by its name from {module} "
                            "(a class defined inside a function, or made at run time)")
    for name in PICKLING:
        if getattr(cls, name, None) is not getattr(nn.Module, name, None):
            raise NotRecordable(f"{where} ({qualname}) defines its own pickling ({name})")
    if any(vars(k).get("__slots__") for k in cls.__mro__):  # slots hold values outside __dict__
        raise NotRecordable(f"{where} ({qualname}) has __slots__")
    return f"{module}:{qualname}"


def _plain_name(name: Any) -> bool:
    """A name that torch allows for a child, parameter or buffer (and that a record may give an attribute)."""
    return isinstance(name, str) and bool(name) and "." not in name


def _resolve(module: str, qualname: str) -> Any:
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    return found


def record(model: nn.Module) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON tree of `model`'s modules, and the buffers that its state dict leaves out (by dotted name)."""
    paths = {id(module): name for name, module in model.named_modules()}  # first place of each module
    extra: dict[str, torch.Tensor] = {}
    tensors: dict[int, str] = {}  # each parameter and buffer, by where it was first seen

    def value(v: Any, where: str) -> Any:
        if type(v) in SCALARS:
            return v
        if type(v) is float:
            return v if math.isfinite(v) else {"float": repr(v)}
        if type(v) is list:
            return [value(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if type(v) is tuple:
            return {"tuple": [value(x, f"{where}[{i}]") for i, x in enumerate(v)]}
        if type(v) is dict and all(type(k) is str for k in v):
            return {"dict": {k: value(x, f"{where}.{k}") for k, x in v.items()}}
        if isinstance(v, nn.Module) and id(v) in paths:
            return {"module": paths[id(v)]}
        raise NotRecordable(f"{where} is a {type(v).__name__}, which is not plain data")

    def node(module: nn.Module, path: str) -> dict[str, Any]:
        where = path or "the model"
        if paths[id(module)] != path:
            return {"module": paths[id(module)]}  # a module shared with an earlier place of the tree
        hooks = [k for k in MODULE_INTERNALS if "hook" in k and isinstance(module.__dict__[k], dict) and module.__dict__[k]]
        if hooks:
            raise NotRecordable(f"{where} has hooks ({', '.join(sorted(hooks))})")
        prefix = f"{path}." if path else ""
        for name, tensor in (*module._parameters.items(), *module._buffers.items()):
            if tensor is not None and tensors.setdefault(id(tensor), prefix + name) != prefix + name:
                raise NotRecordable(f"{prefix}{name} is tied to {tensors[id(tensor)]} (one tensor in two places)")
        odd = [k for k in module.__dict__ if not _plain_name(k)]
        if odd:
            raise NotRecordable(f"{where} has an attribute named {odd[0]!r}")
        buffers = {}
        for name, buffer in module._buffers.items():
            persistent = name not in module._non_persistent_buffers_set
            buffers[name] = None if buffer is None else {"persistent": persistent}
            if buffer is not None and not persistent:
                extra[prefix + name] = buffer
        return {
            "class": _class_path(type(module), where),
            "training": module.training,
            "attributes": {k: value(v, f"{prefix}{k}") for k, v in module.__dict__.items() if k not in MODULE_INTERNALS},
            "parameters": {k: None if p is None else {"requires_grad": p.requires_grad}
                           for k, p in module._parameters.items()},
            "buffers": buffers,
            "modules": {k: None if m is None else node(m, prefix + k) for k, m in module._modules.items()},
        }

    try:
        tree = node(model, "")
        json.dumps(tree, allow_nan=False)
    except RecursionError:
        raise NotRecordable("the model's modules nest too deeply") from None
    return tree, extra


def rebuild(tree: Any, state_dict: dict[str, torch.Tensor], extra: dict[str, torch.Tensor], root: type,
            imports: tuple[str, ...] = ()) -> nn.Module:
    """The module that `record` described, with its parameters and buffers from `state_dict` (model.safetensors)
    and `extra` (the record's own tensors). A module that is not imported yet is imported only when may_import
    allows it (else NotImported): a record chooses which module to import, and importing runs its code.
    ValueError names what is malformed; ImportError what is missing."""
    made: dict[str, tuple[nn.Module, dict[str, Any]]] = {}

    def make(record: Any, path: str) -> None:
        """Every module of the tree, made empty (pass one: so that references can be resolved in pass two)."""
        where = path or "the model"
        if not isinstance(record, dict) or not isinstance(record.get("class"), str):
            raise ValueError(f"{where} is not a module record")
        module_name, _, qualname = record["class"].partition(":")
        if not DOTTED.match(module_name) or not DOTTED.match(qualname):
            raise ValueError(f"{where} names the class {record['class']!r}, which is not an import path")
        for field, kind in (("attributes", dict), ("parameters", dict), ("buffers", dict), ("modules", dict),
                            ("training", bool)):
            if not isinstance(record.get(field), kind):
                raise ValueError(f"{where} lacks its {field}")
        if not may_import(module_name, imports):
            raise NotImported(module_name)
        cls = _resolve(module_name, qualname)
        if cls is None:
            raise ImportError(f"{qualname} is not found in {module_name} (the class of {where})")
        base = nn.Module if path else root
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise ValueError(f"{record['class']} (the class of {where}) is not a {base.__name__} class")
        made[path] = cls.__new__(cls), record
        for name, child in record["modules"].items():
            if not _plain_name(name):
                raise ValueError(f"{where} has a child named {name!r}")
            if child is not None and not (isinstance(child, dict) and set(child) == {"module"}):
                make(child, f"{path}.{name}" if path else name)

    def module_at(path: Any) -> nn.Module:
        if not isinstance(path, str) or path not in made:
            raise ValueError(f"a reference to the module {path!r}, which the record does not hold")
        return made[path][0]

    def decode(v: Any) -> Any:
        if type(v) in (*SCALARS, float):
            return v
        if type(v) is list:
            return [decode(x) for x in v]
        if type(v) is dict and len(v) == 1 and next(iter(v)) in TAGS:
            tag, inner = next(iter(v.items()))
            if tag == "float" and inner in ("nan", "inf", "-inf"):
                return float(inner)
            if tag == "module":
                return module_at(inner)
            if tag == "tuple" and type(inner) is list:
                return tuple(decode(x) for x in inner)
            if tag == "dict" and type(inner) is dict:
                return {k: decode(x) for k, x in inner.items()}
        raise ValueError(f"a value of unknown form {json.dumps(v)[:40]!r}")

    used: set[str] = set()

    def tensor(source: dict[str, torch.Tensor], key: str, what: str) -> torch.Tensor:
        if key not in source:
            raise ValueError(f"{what} {key!r} is missing")
        used.add(key)
        return source[key]

    def fill(module: nn.Module, record: dict[str, Any], path: str) -> None:
        """Pass two: the module's __dict__ (what nn.Module.__init__ makes, then its recorded attributes,
        parameters, buffers and children), handed to its __setstate__."""
        where, prefix = path or "the model", f"{path}." if path else ""
        fresh = nn.Module()
        state = dict(fresh.__dict__)
        state["training"] = record["training"]
        for name in (*record["parameters"], *record["buffers"], *record["modules"]):
            if not _plain_name(name):
                raise ValueError(f"{where} has a child or tensor named {name!r}")
        for name, p in record["parameters"].items():
            if p is not None and not (isinstance(p, dict) and isinstance(p.get("requires_grad"), bool)):
                raise ValueError(f"parameter {prefix}{name} is malformed")
            state["_parameters"][name] = None if p is None else nn.Parameter(
                tensor(state_dict, prefix + name, "parameter"), requires_grad=p["requires_grad"])
        for name, b in record["buffers"].items():
            if b is not None and not (isinstance(b, dict) and isinstance(b.get("persistent"), bool)):
                raise ValueError(f"buffer {prefix}{name} is malformed")
            persistent = b is None or b["persistent"]
            state["_buffers"][name] = None if b is None else tensor(
                state_dict if persistent else extra, prefix + name, "buffer")
            if not persistent:
                state["_non_persistent_buffers_set"].add(name)
        for name, child in record["modules"].items():
            if child is None:
                state["_modules"][name] = None
            elif isinstance(child, dict) and set(child) == {"module"}:
                state["_modules"][name] = module_at(child["module"])
            else:
                state["_modules"][name] = made[prefix + name][0]
        for name, v in record["attributes"].items():
            if not _plain_name(name) or name in MODULE_INTERNALS:
                raise ValueError(f"{where} has an attribute named {name!r}")
            state[name] = decode(v)
        module.__setstate__(state)

    try:
        make(tree, "")
        for path, (module, record) in list(made.items()):
            fill(module, record, path)
    except RecursionError:
        raise ValueError("its modules nest too deeply") from None
    unused = set(extra) - used  # the state dict's own keys are checked when it is loaded (strictly)
    if unused:
        raise ValueError(f"the tensors {', '.join(sorted(unused)[:3])} belong to no module of the record")
    return made[""][0]
