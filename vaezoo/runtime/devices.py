"""The --device argument: checked once, the same way for every command."""
from __future__ import annotations

import torch

from vaezoo.errors import VaezooError


def check_device(device: str) -> torch.device:
    """`device` as a torch.device when it names cpu or a CUDA GPU present here; VaezooError otherwise."""
    if not isinstance(device, str) or not (device in ("cpu", "cuda") or device.startswith("cuda:")):
        raise VaezooError(f"device must be cpu, cuda or cuda:N, got {device!r}")
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise VaezooError(f"device must be cpu, cuda or cuda:N, got {device!r}") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise VaezooError(f"device {device} was asked for, but PyTorch sees no CUDA GPU here; use --device cpu")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise VaezooError(f"device {device} was asked for, but there are {torch.cuda.device_count()} GPUs here")
    return parsed
