"""`pretrained:VARIANT/DATASET`: the run directories that installed distributions ship as weights, found
through the registry and verified against their SHA-256 before anything reads them.

Every place that takes a run directory resolves it here first (vaezoo.runs.directory), so the command line
only passes the text on. A shipped run is read-only: it lives inside an installed distribution.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

from vaezoo.errors import BadOverrideError, RunDirError, UnknownNameError
from vaezoo.registry.catalog import Entry
from vaezoo.registry.discovery import get_registry
from vaezoo.registry.factory import create_model as build_model
from vaezoo.registry.weights import split_name

PREFIX = "pretrained:"
INSTALL_HINT = "pip install ./plugins/vaezoo-weights (the weights distribution), or another that ships weights"


def is_pretrained(run: object) -> bool:
    """Whether `run` names shipped weights (pretrained:VARIANT/DATASET) rather than a run directory."""
    return isinstance(run, str) and run.startswith(PREFIX)


def weights_entry(name: str) -> Entry:
    """The registered weights VARIANT/DATASET (or PLUGIN:VARIANT/DATASET); UnknownNameError with the close
    matches, or with what to install when no distribution ships weights."""
    registry = get_registry()
    try:
        split_name(name.rpartition(":")[2])
    except ValueError:
        raise UnknownNameError(f"{PREFIX}{name}: name pretrained weights as {PREFIX}VARIANT/DATASET, e.g. "
                               f"{PREFIX}vae-conv/fashion-mnist (see `vaezoo list --pretrained`)") from None
    try:
        return registry.get("weights", name)
    except UnknownNameError:
        known = registry.names("weights")
        if not known:
            raise UnknownNameError(f"no pretrained weights are installed, so {PREFIX}{name} is unknown: "
                                   f"{INSTALL_HINT}") from None
        close = difflib.get_close_matches(name.rpartition(":")[2], known, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(PREFIX + c for c in close)}?" if close else ""
        raise UnknownNameError(f"no pretrained weights {PREFIX}{name}.{hint} Installed: {', '.join(known)} "
                               "(`vaezoo list --pretrained`).") from None


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def verified_run(name: str) -> Path:
    """The shipped run directory of `name` (VARIANT/DATASET), once its model.safetensors matches the SHA-256
    its distribution registered and its config.json records that variant and dataset; RunDirError otherwise."""
    entry = weights_entry(name)
    weights = entry.obj
    label = f"{PREFIX}{entry.name} (plugin {entry.plugin})"
    path = weights.files / "model.safetensors"
    try:
        actual = file_sha256(path)
    except OSError as exc:
        raise RunDirError(f"{label}: cannot read {path}: {exc.strerror or exc}; reinstall the distribution") from None
    if actual != weights.sha256:
        raise RunDirError(f"{label}: {path} has SHA-256 {actual[:12]}..., not the registered {weights.sha256[:12]}...; "
                          "the file was changed or damaged: reinstall the distribution")
    variant, dataset = split_name(entry.name)
    try:
        config = json.loads((weights.files / "config.json").read_text(encoding="utf-8"))
        recorded = (str(config["variant"]).rpartition(":")[2], str(config["dataset"]).rpartition(":")[2])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{label}: its config.json is unreadable ({type(exc).__name__}); reinstall the "
                          "distribution") from None
    if recorded != (variant, dataset):
        raise RunDirError(f"{label}: its config.json records {recorded[0]}/{recorded[1]}, not {variant}/{dataset}; "
                          "the distribution is broken: report it to its authors")
    return weights.files


def resolve_run(run: str | os.PathLike[str]) -> Path:
    """The directory of a run: `run` itself, or for pretrained:VARIANT/DATASET the verified shipped one."""
    return verified_run(run[len(PREFIX):]) if is_pretrained(run) else Path(run)


def refuse_writes(run: str | os.PathLike[str], what: str) -> None:
    """RunDirError when `run` names shipped weights, which are read-only: `what` says what would be written."""
    if is_pretrained(run):
        place = verified_run(run[len(PREFIX):])
        raise RunDirError(f"{run} is read-only (installed in {place}), and {what}; copy that directory to a "
                          "folder of yours and give its path instead")


def create_model(name: str, input_shape: Sequence[int] | None = None, latent_dim: int | None = None,
                 num_classes: int | None = None, *, pretrained: str | None = None, **overrides: Any):
    """`vaezoo.create_model`: the variant `name` built as vaezoo.registry.factory.create_model builds it, or,
    with `pretrained=DATASET`, loaded from the weights shipped as `name`/DATASET (in eval mode, on the CPU;
    those weights fix the architecture, so shapes and overrides are refused beside them)."""
    from vaezoo.runs.directory import load_model

    if pretrained is None:
        return build_model(name, input_shape, latent_dim, num_classes, **overrides)
    given = [k for k, v in (("input_shape", input_shape), ("latent_dim", latent_dim), ("num_classes", num_classes))
             if v is not None] + sorted(overrides)
    if given:
        raise BadOverrideError(f"pretrained={pretrained!r} loads {name}/{pretrained} as it was trained, so "
                               f"{', '.join(given)} cannot be set too; drop them, or build without pretrained=")
    if not isinstance(pretrained, str):
        raise BadOverrideError(f"pretrained must be a dataset name such as 'fashion-mnist', got {pretrained!r}")
    return load_model(f"{PREFIX}{name}/{pretrained}")


def pretrained_records(pattern: str = "*") -> list[dict[str, Any]]:
    """Every installed weights entry whose VARIANT/DATASET matches the fnmatch `pattern`, as plain data: name,
    plugin, variant, dataset, metrics, reference figures and their protocol, SHA-256, command and files."""
    registry = get_registry()
    records = []
    for name in registry.names("weights", pattern):
        entry = registry.get("weights", name)
        weights = entry.obj
        variant, dataset = split_name(entry.name)
        records.append({
            "name": f"{PREFIX}{name}", "plugin": entry.plugin, "variant": variant, "dataset": dataset,
            "description": entry.description, "metrics": weights.metrics, "reference": weights.reference,
            "protocol": weights.protocol, "sha256": weights.sha256, "command": weights.command,
            "files": str(weights.files),
        })
    return records
