"""How a run continues (`resume`, `vaezoo train --resume`): its recorded settings, read once, with the settings
given. A resumed run keeps what it computes; only the RESUMABLE_CHANGES may differ, and every other setting given
differently is refused, all of them in one error."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from vaezoo.errors import RunDirError, SettingError, VaezooError, literal
from vaezoo.registry.factory import recorded_provider
from vaezoo.runs.directory import CONFIG, IN_MEMORY, read_config, recorded_dataset, run_data_dir
from vaezoo.training.config import TrainConfig

#: Settings that a resumed run may change: they decide where and how it runs, not what it computes.
RESUMABLE_CHANGES = ("epochs", "device", "data_dir", "checkpoint_every", "workers")
#: the changes worth a word to the user: where the run now trains and how often it checkpoints
NOTICED = ("device", "checkpoint_every")


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells one version of a file from another: its modification time, size and inode (None: no file)."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size, status.st_ino


@dataclass
class ResumePlan:
    """A run about to continue: its config.json as read, the settings it continues with (checked, the device
    included) and the changes given."""

    run: Path
    saved: dict[str, Any]  # config.json, as read
    config: TrainConfig  # the run's settings with the changes given
    epochs: int | None  # the epochs given (None: the run's)
    changes: dict[str, Any]  # the other RESUMABLE_CHANGES given
    data_dir: str | None  # the data directory given, absolute
    stamp: tuple[int, int, int] | None  # config.json's when it was read

    @property
    def notices(self) -> list[tuple[str, Any, Any]]:
        """(setting, value given, the run's) for each NOTICED setting given that differs from the run's."""
        before = self.saved.get("train", {})
        return [(key, self.changes[key], before.get(key)) for key in NOTICED
                if key in self.changes and self.changes[key] != before.get(key)]

    def check_unchanged(self) -> None:
        """RunDirError unless config.json is still the file that was read (checked once the run is locked: another
        process may have continued the run in between)."""
        if _stamp(self.run / CONFIG) != self.stamp:
            raise RunDirError(f"{self.run / CONFIG} changed while the run was being resumed (another process "
                              "continued or changed it); nothing was done: resume it again")


def _conflicts(given: dict[str, Any], saved: dict[str, Any], config: TrainConfig) -> list[tuple[str, Any, Any]]:
    """(setting, the run's value, the value given) for each setting given that a resumed run keeps and that
    differs from the run's."""
    recorded = {**config.record(), "variant": saved["variant"], "dataset": saved["dataset"],
                "latent_dim": saved["latent_dim"], "overrides": saved["overrides"]}
    conflicts = []
    for key, value in given.items():
        if key in ("out", *RESUMABLE_CHANGES) or value is None:
            continue
        held = recorded.get(key)
        if key == "variant":  # "vae-mlp" names the run's "vaezoo:vae-mlp" too
            value, held = value.rpartition(":")[2], held.rpartition(":")[2]
        if value != held:
            conflicts.append((key, held, value))
    return conflicts


def plan_resume(run_dir: str | os.PathLike[str], epochs: int | None = None, **settings: Any) -> ResumePlan:
    """How the run in `run_dir` continues: its recorded settings (config.json, read once) with `epochs` and the
    other RESUMABLE_CHANGES in `settings`. Any other setting (a TrainConfig field; None: not given) must be the
    run's: those given differently are one SettingError naming each with both values. The variant, its parts and
    the dataset come from the distributions that made the run (or the error says what to install)."""
    run = Path(run_dir)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise VaezooError(f"{', '.join(unknown)} {'is not a setting' if len(unknown) == 1 else 'are not settings'} "
                          "of a run; a resumed run keeps its settings and may change "
                          f"{', '.join(RESUMABLE_CHANGES)}")
    stamp = _stamp(run / CONFIG)  # before reading: a file replaced after this is told from the one read
    saved = read_config(run)
    if saved["dataset"] == IN_MEMORY:
        raise VaezooError(f"{run} was trained by vaezoo.fit on data in memory, which a run directory does not hold; "
                          "it cannot be resumed by name: load it with vaezoo.load_model and fit it again")
    config = TrainConfig.from_dict(saved["train"])
    conflicts = _conflicts(settings, saved, config)
    if conflicts:
        described = "; ".join(f"{{{i}}} (the run has {literal(repr(held))}, not {literal(repr(value))})"
                              for i, (_, held, value) in enumerate(conflicts))
        raise SettingError(f"{literal(run)} continues with its own settings, which differ: {described}. Leave those "
                           "out, or train a new run into another directory", *(key for key, _, _ in conflicts))
    changes = {key: settings[key] for key in RESUMABLE_CHANGES
               if key != "epochs" and settings.get(key) is not None}
    data_dir = changes.get("data_dir")
    if isinstance(data_dir, str):  # resolved once, here, against the working directory
        data_dir = changes["data_dir"] = os.path.abspath(data_dir)
    for kind, recorded in saved.get("identity", {}).items():
        try:
            provider = recorded_provider(kind, recorded)
        except VaezooError as exc:
            raise RunDirError(f"cannot resume {run}: {exc}") from None
        if kind == "variant":
            config.variant = provider
    config.dataset = recorded_dataset(saved)
    if epochs is not None:
        config.epochs = epochs
    for key, value in changes.items():
        setattr(config, key, value)
    config.data_dir = run_data_dir(run, saved, data_dir)
    config.validate()
    return ResumePlan(run, saved, config, epochs, changes, data_dir, stamp)
