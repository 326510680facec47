"""The run directory: config.json, metrics.jsonl and model.safetensors, written safely and read back.

A new run is written only into an empty (or new) directory, under an exclusive lock held for the whole run
(vaezoo.runs.lock). A run directory read back is input like any other: its config is checked field by field,
its weights against their checksum and for NaN or infinity, the data it names is read only where that
resolves inside the run directory, and nothing in it is unpickled unless the caller says it trusts the run.
"""
from __future__ import annotations

import io
import json
import math
import os
import platform
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from vaezoo._version import __version__
from vaezoo.atomic import atomic_write, atomic_write_text
from vaezoo.core import VAE
from vaezoo.errors import DataError, RunDirError, UnknownNameError, VaezooError
from vaezoo.runs import architecture
from vaezoo.runs.diffusers_format import is_diffusers_dir, load_diffusers
from vaezoo.runs.lock import LOCK_FILE, RunLock, lock_run_dir
from vaezoo.runs.pretrained import is_pretrained, refuse_writes, resolve_run
from vaezoo.runs.sealed import seal, unseal
from vaezoo.runtime.finite import NON_FINITE, first_nonfinite, mark_nonfinite, require_finite

CONFIG = "config.json"
METRICS = "metrics.jsonl"
WEIGHTS = "model.safetensors"
ARCHITECTURE = "model.pt"  # a hand-built model's pickled modules: loaded only when the caller trusts the run
ARCHITECTURE_RECORD = "architecture.safetensors"  # a hand-built model's modules recorded without pickle
HAND_BUILT = "hand-built"  # the variant name config.json records for one
IN_MEMORY = "in-memory"  # the dataset name config.json records for data that vaezoo.fit was given
#: 2: model.safetensors carries a checksum (runs of format 1 load without one, with a warning).
FORMAT_VERSION = 2
SEALED_SINCE = 2


def _existing_dir(run: Path) -> None:
    if run.exists() and not run.is_dir():
        raise RunDirError(f"{run} is a file, not a directory; choose another --out")


def claim_new_run_dir(path: str | os.PathLike[str]) -> RunLock:
    """Create `path` for a new run and lock it; refuse a directory that holds anything, naming what is there."""
    run = Path(path)
    _existing_dir(run)
    try:
        run.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot write the run directory {run}: {exc.strerror or exc}; choose a writable --out") from exc
    _refuse_contents(run)  # before locking, so that a refused directory is left exactly as it was
    lock = lock_run_dir(run)
    try:
        _refuse_contents(run)  # again under the lock: another writer may have started in between
    except RunDirError:
        lock.release()
        raise
    return lock


def _refuse_contents(run: Path) -> None:
    """RunDirError naming what `run` holds, unless it holds nothing (but a lock file)."""
    held = sorted(p.name + ("/" if p.is_dir() else "") for p in run.iterdir() if p.name != LOCK_FILE)
    if CONFIG in held:
        raise RunDirError(
            f"{run} already holds a run; add --resume to continue it, or choose another --out (delete {run} "
            "to start over)"
        )
    if held:
        shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
        raise RunDirError(f"{run} is not empty (it holds {shown}); a new run needs an empty or new --out directory")


def locate_run(run: str | os.PathLike[str]) -> Path:
    """The local directory of a run reference: a path as given, hf://ORG/NAME from the Hugging Face cache
    (downloaded there first when it is not; vaezoo.runs.hub), or pretrained:VARIANT/DATASET, the verified
    directory of shipped weights (vaezoo.runs.pretrained)."""
    from vaezoo.runs import hub

    if hub.is_hub_reference(run):
        return hub.hub_run(run)
    return resolve_run(run)


@dataclass(frozen=True, eq=False)
class SavedRun:
    """A run located once (hf://ORG/NAME and pretrained:VARIANT/DATASET resolved) with its config.json read and
    checked once: what load_model, load_run_data and the steps after them are handed in place of a path, so that
    none of them reads the file again. It is a path (its directory) wherever one is asked for; `reference` is the
    run as it was named."""

    reference: str
    path: Path
    config: dict[str, Any]

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)


def open_saved_run(run: str | os.PathLike[str]) -> SavedRun:
    """The run `run` located and its config.json read (read_config's checks); a SavedRun is returned as it is."""
    if isinstance(run, SavedRun):
        return run
    path = locate_run(run)
    return SavedRun(run if isinstance(run, str) else os.fspath(run), path, read_config(path))


def read_only_origin(run: SavedRun) -> str | None:
    """What `run` is when vaezoo never writes into it: shipped weights (pretrained:VARIANT/DATASET) or a run
    downloaded from the Hugging Face Hub (its cache); None for a directory of the user's."""
    from vaezoo.runs.hub import in_hub_cache

    if is_pretrained(run.reference):
        return "shipped weights"
    return "a run downloaded from the Hugging Face Hub" if in_hub_cache(run.path) else None


def claim_run_dir(path: str | os.PathLike[str], busy: str | None = None) -> RunLock:
    """Lock the existing run directory `path` to continue the run in it (or, with `busy` saying what to do
    while another process holds it, to write an evaluation into it). Shipped weights (read-only) and a run
    downloaded from the Hub (its directory is the Hugging Face cache's) are refused."""
    from vaezoo.runs.hub import in_hub_cache

    refuse_writes(path, "this writes into the run directory")
    path = locate_run(path)
    run = Path(path)
    if in_hub_cache(run):
        raise RunDirError(f"{run} is a run downloaded from the Hugging Face Hub into its cache, which vaezoo does "
                          "not write into; copy it to a directory of your own (cp -rL) and use that")
    _existing_dir(run)
    if not run.is_dir():
        raise RunDirError(f"{run} does not exist: there is no run to resume; train without --resume to start one")
    return lock_run_dir(run) if busy is None else lock_run_dir(run, busy)


def versions() -> dict[str, str]:
    """The software versions recorded with every run."""
    return {"vaezoo": __version__, "torch": torch.__version__, "python": platform.python_version()}


def write_config(run: Path, config: dict[str, Any]) -> None:
    """Write config.json; a dataset loaded by name is recorded with its plugin, distribution and version (as
    every part of the model is), unless the record already holds them (a resumed run keeps its own)."""
    from vaezoo.registry.factory import identity_of

    if config.get("dataset") not in (None, IN_MEMORY) and "dataset_identity" not in config:
        config = {**config, "dataset_identity": identity_of("dataset", config["dataset"])}
    record = {"format": FORMAT_VERSION, **config, "versions": versions()}
    atomic_write_text(run / CONFIG, json.dumps(record, indent=2, sort_keys=True) + "\n")


def _is_count(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


#: config.json's fields: (check, what a good value is); `train` and its parts are checked in _check_train.
CONFIG_FIELDS: dict[str, tuple[Any, str]] = {
    "variant": (lambda v: isinstance(v, str) and bool(v), "a variant name"),
    "dataset": (lambda v: isinstance(v, str) and bool(v), "a dataset name"),
    "input_shape": (lambda v: isinstance(v, list) and bool(v) and all(_is_count(s, 1) for s in v),
                    "a list of positive sizes"),
    "latent_dim": (lambda v: _is_count(v, 1), "a positive integer"),
    "overrides": (lambda v: isinstance(v, dict), "an object of KEY: VALUE overrides"),
    "train": (lambda v: isinstance(v, dict), "an object of training settings"),
}
OPTIONAL_FIELDS: dict[str, tuple[Any, str]] = {
    "identity": (lambda v: isinstance(v, dict) and all(isinstance(i, dict) for i in v.values()),
                 "an object of part records"),
    "num_classes": (lambda v: v is None or _is_count(v, 0), "a non-negative integer"),
    "plugins": (lambda v: isinstance(v, dict) and all(isinstance(i, dict) for i in v.values()),
                "an object of plugin records"),
    "architecture": (lambda v: v in (ARCHITECTURE_RECORD, ARCHITECTURE),  # its pairing is checked in read_config
                     f"{ARCHITECTURE_RECORD!r} or {ARCHITECTURE!r}"),
    "dataset_identity": (lambda v: isinstance(v, dict) and all(isinstance(v.get(k), str) and v[k]
                                                               for k in ("name", "distribution", "version")),
                         "an object of the dataset's name, distribution and version"),
}
TRAIN_REQUIRED: dict[str, tuple[Any, str]] = {
    key: (lambda v: isinstance(v, str) and bool(v), "a name") for key in ("variant", "dataset", "out")
}
TRAIN_FIELDS: dict[str, tuple[Any, str]] = {
    "data_dir": (lambda v: v is None or isinstance(v, str), "a path or null"),
    "data_options": (lambda v: isinstance(v, dict), "an object"),
    "binarize": (lambda v: isinstance(v, str), "a binarization mode"),
    "overrides": (lambda v: isinstance(v, dict), "an object of KEY: VALUE overrides"),
}


def _check_fields(path: Path, record: dict[str, Any], fields: dict[str, tuple[Any, str]], required: bool,
                  prefix: str = "") -> None:
    for name, (ok, what) in fields.items():
        if name not in record:
            if required:
                raise RunDirError(f"{path} lacks {prefix}{name!r}; it is not a complete vaezoo run config")
            continue
        if not ok(record[name]):
            shown = repr(record[name])
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise RunDirError(f"{path}: {prefix}{name} must be {what}, got {shown}; restore the file or train again")


def read_config(run: str | os.PathLike[str]) -> dict[str, Any]:
    """config.json of the run `run` (a directory, or a reference that locate_run resolves: hf://ORG/NAME,
    pretrained:VARIANT/DATASET), checked field by field; RunDirError names what is wrong."""
    run = locate_run(run)
    path = run / CONFIG
    if not run.is_dir():
        what = "does not exist" if not run.exists() else "is a file"
        raise RunDirError(f"{run} {what}; give a run directory written by `vaezoo train`")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{run} is not a vaezoo run directory: {CONFIG} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path} is corrupt: {exc}") from exc
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror or exc}; it must be the run's JSON config file") from exc
    if not isinstance(config, dict) or not _is_count(config.get("format"), 0):
        raise RunDirError(f"{path} is not a vaezoo run config (no format number)")
    if config["format"] > FORMAT_VERSION:
        raise RunDirError(
            f"{path} was written in run format {config['format']} by a newer vaezoo; this vaezoo "
            f"{__version__} reads format {FORMAT_VERSION} and older. Upgrade vaezoo to load it."
        )
    _check_fields(path, config, CONFIG_FIELDS, required=True)
    _check_fields(path, config, OPTIONAL_FIELDS, required=False)
    _check_fields(path, config["train"], TRAIN_REQUIRED, required=True, prefix="train.")
    _check_fields(path, config["train"], TRAIN_FIELDS, required=False, prefix="train.")
    if "architecture" in config and (config["variant"] != HAND_BUILT or "identity" in config):
        raise RunDirError(f"{path} records the variant {config['variant']!r} and also a hand-built model's "
                          f"{config['architecture']}; a run has one or the other: restore the file or train again")
    return config


def _metrics_line(metrics: dict[str, Any]) -> str:
    """One line of metrics.jsonl: valid JSON, with a NaN or an infinity written as "non-finite"."""
    return json.dumps(mark_nonfinite(metrics)[0], sort_keys=True, allow_nan=False) + "\n"


def append_metrics(run: Path, metrics: dict[str, Any]) -> None:
    """Add one epoch's line to metrics.jsonl; a write that fails part-way (a full disk) is cut back off, so the
    file stays whole lines and the run resumes."""
    try:
        with open(run / METRICS, "ab") as f:
            start = f.seek(0, os.SEEK_END)
            try:
                f.write(_metrics_line(metrics).encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            except OSError:
                f.truncate(start)
                raise
    except OSError as exc:
        raise RunDirError(f"cannot write {run / METRICS}: {exc.strerror or exc}") from exc


def rewrite_metrics(run: Path, metrics: list[dict[str, Any]]) -> None:
    """Replace metrics.jsonl atomically (used when a resumed run redoes epochs)."""
    atomic_write_text(run / METRICS, "".join(_metrics_line(m) for m in metrics))


def read_metrics(run: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of metrics.jsonl, a value written as "non-finite" read back as NaN."""
    path = locate_run(run) / METRICS
    if not path.exists():
        return []
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path} is unreadable or corrupt: {exc}") from exc
    if not all(isinstance(r, dict) and _is_count(r.get("epoch"), 1) for r in records):
        raise RunDirError(f"{path} is corrupt: every line must be an object with a positive epoch")
    return [{k: math.nan if v == NON_FINITE else v for k, v in r.items()} for r in records]


def save_weights(run: Path, model: VAE) -> None:
    """Write the model's weights to model.safetensors atomically, sealed with their checksum."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    require_finite(tensors, WEIGHTS)
    data = seal(tensors)
    atomic_write(run / WEIGHTS, lambda f: f.write(data))


def read_weights(run: Path, config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of RUN/model.safetensors, checked against their checksum and for NaN or infinity.

    A run of format 2 or later must carry the checksum (a file without one was replaced); the weights of an
    older run, written before there was one, load with a warning that their bytes cannot be verified: refusing
    them would strand every run trained before, and the checksum detects damage, not forgery."""
    path = run / WEIGHTS
    try:
        tensors, record = unseal(path.read_bytes())
    except FileNotFoundError:
        raise RunDirError(f"{run} holds no trained weights: {WEIGHTS} is missing") from None
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise RunDirError(f"{path} is corrupt or was changed ({exc}); restore it from a copy or train again") from None
    if record is None:
        if config["format"] >= SEALED_SINCE:
            raise RunDirError(f"{path} carries no checksum, which every run of format {config['format']} has: it "
                              "was replaced after vaezoo wrote it; restore it from a copy or train again")
        warnings.warn(f"{path} was written by an older vaezoo, before weights carried a checksum: its bytes "
                      "cannot be verified", stacklevel=3)
    bad = first_nonfinite(tensors)
    if bad is not None:
        raise RunDirError(f"{path} holds NaN or infinity in {bad}: the run is damaged; restore it or train again")
    return tensors


def model_record(model: VAE) -> dict[str, Any]:
    """What config.json records of a model: its recipe when it was built by name, else its shapes and the file
    that save_architecture writes (a model assembled by hand from parts)."""
    if model.config.get("identity"):
        return dict(model.config)
    return {"variant": HAND_BUILT, "input_shape": list(model.input_shape), "latent_dim": model.latent_dim,
            "num_classes": model.num_classes, "overrides": {}, "architecture": ARCHITECTURE_RECORD}


def save_architecture(run: Path, model: VAE) -> str:
    """Record a hand-built model's modules in the run so that load_model can rebuild it (its classes must be
    importable where it is loaded), and return the file's name: architecture.safetensors, without pickle; or,
    when the model holds what that record cannot describe, model.pt, a pickle, said in a warning because it
    loads only with trust_pickle=True. Refused up front when the model does not pickle either."""
    try:
        tree, extra = architecture.record(model)
    except architecture.NotRecordable as why:
        return _pickle_architecture(run, model, str(why))
    data = seal(extra, json.dumps(tree, allow_nan=False))
    atomic_write(run / ARCHITECTURE_RECORD, lambda f: f.write(data))
    return ARCHITECTURE_RECORD


def _pickle_architecture(run: Path, model: VAE, why: str) -> str:
    buffer = io.BytesIO()
    try:
        torch.save(model, buffer)
    except Exception as exc:  # pickling raises many types: a lambda, a local class, an open file...
        raise VaezooError(f"this hand-built model cannot be saved to a run directory: {why}, and it does not pickle "
                          f"either ({type(exc).__name__}: {exc}); make its parts module-level classes holding plain "
                          "data, or fit it without out=") from None
    atomic_write(run / ARCHITECTURE, lambda f: f.write(buffer.getvalue()))
    warnings.warn(f"the hand-built model cannot be recorded without pickle ({why}); it is saved as a pickle in "
                  f"{run / ARCHITECTURE}, which loads only with vaezoo.load_model(run, trust_pickle=True) or "
                  "--trust-pickle", stacklevel=4)
    return ARCHITECTURE


def _rebuild_architecture(run: Path, state: dict[str, torch.Tensor], imports: tuple[str, ...]) -> VAE:
    """The hand-built model recorded in RUN/architecture.safetensors, its weights from `state`."""
    path = run / ARCHITECTURE_RECORD
    try:
        extra, tree = unseal(path.read_bytes())
        if tree is None:
            raise ValueError("it carries no checksum")
        bad = first_nonfinite(extra)
        if bad is not None:
            raise ValueError(f"its buffer {bad} holds NaN or infinity")
        return architecture.rebuild(json.loads(tree), state, extra, VAE, imports)
    except architecture.NotImported as exc:
        raise RunDirError(
            f"the hand-built model of {run} is made of classes from the module {exc.module}, which is not imported; "
            f"importing it runs its code, so vaezoo does so only when asked: import {exc.module} first, or pass "
            f"imports=[{exc.module!r}] to vaezoo.load_model (--import {exc.module} on the command line)") from None
    except FileNotFoundError:
        raise RunDirError(f"{run} holds a hand-built model but its {ARCHITECTURE_RECORD} is missing") from None
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ImportError as exc:
        raise RunDirError(f"cannot rebuild the hand-built model of {run}: {exc}; import or install the module that "
                          "defines its parts first") from None
    except (ValueError, TypeError, RecursionError) as exc:
        raise RunDirError(f"{path} is corrupt or was changed ({exc}); restore it from a copy or train again") from None
    except Exception as exc:  # a part's own __new__ or __setstate__ may raise anything
        raise RunDirError(f"cannot rebuild the hand-built model of {run}: one of its classes raised "
                          f"{type(exc).__name__}: {exc}") from None


def _load_architecture(run: Path, trust_pickle: bool) -> VAE:
    """The hand-built model pickled in RUN/model.pt, refused unless the caller trusts the run (unpickling runs
    whatever code the file holds)."""
    if not trust_pickle:
        raise RunDirError(
            f"{run} holds a hand-built model saved as a pickle ({ARCHITECTURE}), and unpickling runs any code the "
            "file holds; if you trust where the run came from, load it with vaezoo.load_model(run, "
            "trust_pickle=True) or add --trust-pickle"
        )
    try:
        model = torch.load(run / ARCHITECTURE, weights_only=False)
    except FileNotFoundError:
        raise RunDirError(f"{run} holds a hand-built model but its {ARCHITECTURE} is missing") from None
    except (AttributeError, ModuleNotFoundError) as exc:
        raise RunDirError(f"cannot rebuild the hand-built model of {run}: {exc}; import or install the module that "
                          "defines its parts first") from None
    except Exception as exc:  # a damaged pickle raises many types
        raise RunDirError(f"{run / ARCHITECTURE} is corrupt: {exc}") from None
    if not isinstance(model, VAE):
        raise RunDirError(f"{run / ARCHITECTURE} does not hold a vaezoo VAE but a {type(model).__name__}")
    return model


def load_model(run_dir: str | os.PathLike[str], device: str | torch.device = "cpu", *,
               trust_pickle: bool = False, imports: Sequence[str] = ()) -> VAE:
    """The trained VAE saved in `run_dir` (a run directory, or `hf://ORG/NAME[@REVISION]`: a run published on the
    Hugging Face Hub, read through the local cache), rebuilt from its config and loaded from safetensors.

    The parts come from the distributions the run recorded; when one is missing, blocked or changed, the error
    says what to install or unblock (never another plugin's part of the same name). A hand-built model saved as
    a pickle is unpickled only with `trust_pickle=True`: unpickling runs whatever code the file holds. The
    weights are checked against their checksum and for NaN or infinity before the model is built. A hand-built
    model recorded without pickle names the modules of its classes; one that is not imported yet is imported
    only when it is vaezoo's or torch's, or named in `imports` (importing a module runs its code). A diffusers
    AutoencoderKL directory loads as the `autoencoder-kl` variant (vaezoo.runs.diffusers_format). `run_dir` may
    also name shipped weights, pretrained:VARIANT/DATASET (vaezoo.runs.pretrained), or be a SavedRun (its config
    as read when it was opened).
    """
    if isinstance(run_dir, SavedRun):  # a vaezoo run, its config read when it was opened
        run, config = run_dir.path, run_dir.config
    else:
        run = locate_run(run_dir)
        if is_diffusers_dir(run):
            return load_diffusers(run, device)
        config = read_config(run)
    state = read_weights(run, config)
    try:
        if config.get("architecture") == ARCHITECTURE_RECORD:
            model = _rebuild_architecture(run, state, tuple(imports))
        elif config.get("architecture") == ARCHITECTURE:
            model = _load_architecture(run, trust_pickle)
        else:
            model = rebuild_recorded(config)
    except RunDirError:
        raise
    except VaezooError as exc:
        raise RunDirError(f"cannot rebuild the model of {run_dir}: {exc}") from exc
    path = run / WEIGHTS
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise RunDirError(f"{path} does not fit variant {config['variant']!r}: {exc}") from exc
    return model.to(device).eval()


def rebuild_recorded(config: dict[str, Any]) -> VAE:
    """The model of a run config; runs written before parts were recorded by distribution name their plugins."""
    from vaezoo.registry.factory import create_model, rebuild

    if "identity" in config:
        return rebuild(config)
    try:
        return create_model(
            config["variant"], input_shape=config["input_shape"], latent_dim=config["latent_dim"],
            num_classes=config.get("num_classes", 0), **config["overrides"],
        )
    except UnknownNameError:
        needed = ", ".join(
            f"{info['distribution']}=={info['version']} (plugin {name})"
            for name, info in config.get("plugins", {}).items() if name != "vaezoo"
        )
        raise RunDirError(
            f"the run's variant {config['variant']!r} is not registered here"
            + (f"; the run was made with {needed}: pip install it" if needed else "")
        ) from None


def run_data_dir(run_dir: str | os.PathLike[str], config: dict[str, Any], data_dir: str | None) -> str | None:
    """Where to read a run's data: `data_dir` when the user gave one, else the run's own record of it when that
    resolves inside the run directory (a run directory from someone else must not make vaezoo open arbitrary
    paths), else the dataset's default location when the run used it."""
    if data_dir is not None:
        return data_dir
    saved = config.get("train", {}).get("data_dir")
    if saved is None:
        return None
    run = Path(run_dir).resolve()
    place = Path(saved) if Path(saved).is_absolute() else run / saved
    if place.resolve().is_relative_to(run):
        return str(place)
    raise DataError(
        f"{run_dir} was trained on {config['dataset']} data from {saved}, outside the run directory; vaezoo does not "
        "open paths that a run directory names: pass --data-dir to say where the data is"
    )


def recorded_dataset(config: dict[str, Any]) -> str:
    """The name to load a run's dataset by: the plugin-qualified name under which the distribution that gave it
    offers it today (a dataset of the same name from another plugin is never used), or, for runs recorded before
    datasets were identities, the name it recorded."""
    from vaezoo.registry.factory import recorded_provider

    if "dataset_identity" not in config:
        return config["dataset"]
    try:
        return recorded_provider("dataset", config["dataset_identity"])
    except VaezooError as exc:
        raise DataError(str(exc)) from None


def load_run_data(run_dir: str | os.PathLike[str], data_dir: str | None = None):
    """The dataset a run (a reference, or a SavedRun) was trained on: from `data_dir`, or from where the run read
    it (see run_data_dir); a conditional run's labels are checked against its classes."""
    from vaezoo.data.datasets import check_labels, load_dataset

    run = open_saved_run(run_dir)
    run_dir, config = run.path, run.config
    if config["dataset"] == IN_MEMORY:
        raise RunDirError(f"{run_dir} was trained by vaezoo.fit on data in memory, which a run directory does not "
                          "hold; evaluate or draw it from Python (vaezoo.load_model) with that data")
    train = config.get("train", {})
    data = load_dataset(recorded_dataset(config), run_data_dir(run_dir, config, data_dir), limit=train.get("limit"),
                        **train.get("data_options", {}))
    if config.get("num_classes"):
        check_labels(data, config["num_classes"])
    return data
