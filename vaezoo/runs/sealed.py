"""safetensors files sealed with a SHA-256 of their tensors and of the JSON stored beside them, so that a file
damaged or changed on disk is found when it is read (checkpoints, model weights, architecture records).

The seal detects damage, not forgery: whoever can rewrite the file can recompute it. What keeps a hostile file
from running code is that none of these files is ever unpickled.
"""
from __future__ import annotations

import hashlib
import json

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

RECORD = "vaezoo"  # the metadata key of the JSON stored beside the tensors
SEAL = "sha256"  # the metadata key of the checksum


def digest(tensors: dict[str, torch.Tensor], extra: str) -> str:
    """SHA-256 of every tensor (name, dtype, shape, bytes) and of the JSON `extra` stored beside them."""
    sha = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name]
        sha.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        sha.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    sha.update(b"\0" + extra.encode())
    return sha.hexdigest()


def seal(tensors: dict[str, torch.Tensor], extra: str = "{}") -> bytes:
    """safetensors bytes of `tensors` (on the CPU) with the JSON text `extra` and their checksum in the metadata."""
    tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    return save(tensors, metadata={RECORD: extra, SEAL: digest(tensors, extra)})


def unseal(data: bytes) -> tuple[dict[str, torch.Tensor], str | None]:
    """The tensors of safetensors bytes and the JSON text stored beside them, checked against the seal; the JSON
    is None for a file that carries no seal (written before seals were). ValueError when the bytes are not a
    safetensors file, or when the seal does not match ("checksum mismatch")."""
    try:
        tensors = load(data)
        header_len = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8 : 8 + header_len]).get("__metadata__") or {}
    except (SafetensorError, ValueError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a readable safetensors file: {exc}") from exc
    if SEAL not in metadata and RECORD not in metadata:
        return tensors, None
    extra = metadata.get(RECORD)
    if not isinstance(extra, str) or metadata.get(SEAL) != digest(tensors, extra):
        raise ValueError("checksum mismatch: the file was changed or damaged after vaezoo wrote it")
    return tensors, extra
