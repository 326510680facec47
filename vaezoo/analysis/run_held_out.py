"""A run's held-out set: the one every score and picture of a run is made on, binarized as the run recorded
(config.json's train.binarize), whoever asks (`vaezoo eval`, the pictures, the quality benchmark)."""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from vaezoo.core import VAE
from vaezoo.data.held_out import HeldOut, held_out_set
from vaezoo.data.splits import Splits
from vaezoo.runs import directory
from vaezoo.runtime.devices import check_device


def recorded_binarize(run_dir: str | os.PathLike[str]) -> str:
    """The binarize setting the run at `run_dir` (or a SavedRun) trained with ("auto" for runs that predate
    recording it)."""
    return directory.open_saved_run(run_dir).config.get("train", {}).get("binarize", "auto")


def run_held_out(run_dir: str | os.PathLike[str], model: VAE, data: Splits) -> HeldOut:
    """The held-out set of `data` that the run at `run_dir` (or a SavedRun; whose trained model is `model`) is
    scored on."""
    return held_out_set(data, model, recorded_binarize(run_dir))


def load_run_held_out(
    run_dir: str | os.PathLike[str], model: VAE, data_dir: str | None = None
) -> tuple[Splits, HeldOut]:
    """The dataset the run was trained on (from `data_dir` or where the run read it; nothing read yet but what
    its loader keeps in memory) and the run's held-out set of it."""
    run = directory.open_saved_run(run_dir)  # its config read once, for the data and the binarization
    data = directory.load_run_data(run, data_dir)
    return data, run_held_out(run, model, data)


def open_run(
    run_dir: str | os.PathLike[str], device: str = "cpu", *, data_dir: str | None = None, trust_pickle: bool = False,
    imports: Sequence[str] = (), seed: int | None = None, held_out: bool = True,
) -> tuple[VAE, HeldOut | None]:
    """The trained model of the run at `run_dir` on `device` and (unless `held_out` is False) its held-out set,
    nothing of it read yet. The device is checked first, and the run's data found before the model is loaded: a
    run whose data cannot be read is refused unloaded. torch is seeded with `seed` when given, after loading, so
    that what is drawn next repeats. `trust_pickle` and `imports` are load_model's."""
    check_device(device)
    run = directory.open_saved_run(run_dir)  # hf://ORG/NAME, pretrained:VARIANT/DATASET resolved, config read: once
    data = directory.load_run_data(run, data_dir) if held_out else None
    model = directory.load_model(run, device=device, trust_pickle=trust_pickle, imports=imports)
    if seed is not None:
        torch.manual_seed(seed)
    return model, None if data is None else run_held_out(run, model, data)
