"""Export a trained model to another library's format: `vaezoo export RUN --format diffusers --out DIR`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from vaezoo.errors import BadOverrideError
from vaezoo.runs.diffusers_format import write_diffusers
from vaezoo.runs.directory import load_model

#: format name -> what it writes
FORMATS = {"diffusers": "a diffusers AutoencoderKL directory (config.json + diffusion_pytorch_model.safetensors)"}


def export(run_dir: str | os.PathLike[str], out: str | os.PathLike[str], format: str = "diffusers", *,
           trust_pickle: bool = False, imports: Sequence[str] = ()) -> Path:
    """Write the model of `run_dir` (a vaezoo run, or a directory load_model reads) to `out` in `format`."""
    if format not in FORMATS:
        raise BadOverrideError(f"unknown export format {format!r}; expected one of: {', '.join(FORMATS)}")
    model = load_model(run_dir, trust_pickle=trust_pickle, imports=imports)
    return write_diffusers(model, out)
