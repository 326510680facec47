"""A run's held-out set: the one every score and picture of a run is made on, binarized as the run recorded
(config.json's train.binarize), whoever asks (`vaezoo eval`, the pictures, the quality benchmark)."""
from __future__ import annotations

import os

from vaezoo.core import VAE
from vaezoo.data.held_out import HeldOut, held_out_set
from vaezoo.data.splits import Splits
from vaezoo.runs.directory import load_run_data, read_config


def recorded_binarize(run_dir: str | os.PathLike[str]) -> str:
    """The binarize setting the run at `run_dir` trained with ("auto" for runs that predate recording it)."""
    return read_config(run_dir).get("train", {}).get("binarize", "auto")


def run_held_out(run_dir: str | os.PathLike[str], model: VAE, data: Splits) -> HeldOut:
    """The held-out set of `data` that the run at `run_dir` (whose trained model is `model`) is scored on."""
    return held_out_set(data, model, recorded_binarize(run_dir))


def load_run_held_out(
    run_dir: str | os.PathLike[str], model: VAE, data_dir: str | None = None
) -> tuple[Splits, HeldOut]:
    """The dataset the run was trained on (from `data_dir` or where the run read it; nothing read yet but what
    its loader keeps in memory) and the run's held-out set of it."""
    data = load_run_data(run_dir, data_dir)
    return data, run_held_out(run_dir, model, data)
