"""Which implementation of reparameterize runs: the compiled kernels of vaezoo._C where built, else the reference."""
from __future__ import annotations

import importlib
import os

import torch

BACKENDS = ("auto", "fused", "reference")
ENV_VAR = "VAEZOO_BACKEND"
_OP = "vaezoo::reparameterize_fwd"


def _load_extension() -> str | None:
    """Import vaezoo._C, which registers the operators; return why it could not be, or None."""
    try:
        importlib.import_module("vaezoo._C")
    except ImportError as err:
        return f"vaezoo._C could not be imported ({err}); reinstall vaezoo with a C++ compiler to build it"
    return None


LOAD_ERROR = _load_extension()
FUSED_DEVICE_TYPES = frozenset(
    key.lower()
    for key in ("CPU", "CUDA")
    if LOAD_ERROR is None and torch._C._dispatch_has_kernel_for_dispatch_key(_OP, key)
)


def backends() -> dict[str, list[str]]:
    """Usable backends per device type present here, e.g. {"cpu": ["fused", "reference"]}."""
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return {d: ["fused", "reference"] if d in FUSED_DEVICE_TYPES else ["reference"] for d in devices}


def use_fused(backend: str, device_type: str) -> bool:
    """Whether a call with this backend argument on this device type runs the fused kernels.

    backend="auto" defers to $VAEZOO_BACKEND when set, and then means: fused wherever it is built.
    """
    choice = (os.environ.get(ENV_VAR) or backend) if backend == "auto" else backend
    if choice == "reference":
        return False
    if choice == "auto":
        return device_type in FUSED_DEVICE_TYPES
    if choice == "fused":
        if device_type not in FUSED_DEVICE_TYPES:
            why = LOAD_ERROR or f"this build of vaezoo._C has kernels for {sorted(FUSED_DEVICE_TYPES)} only"
            raise RuntimeError(f"backend='fused' was asked for on device type {device_type!r}, but it is not built: {why}")
        return True
    source = f"${ENV_VAR}" if backend == "auto" else "backend"
    raise ValueError(f"{source} must be one of {', '.join(BACKENDS)}, got {choice!r}")
