"""diffusers' AutoencoderKL directory (config.json + diffusion_pytorch_model.safetensors): read into the
`autoencoder-kl` variant's ldm parts, and written from a model made of them.

The ldm parts name their submodules as diffusers does, so weights map key for key (quant_conv lives in vaezoo's
encoder, post_quant_conv in its decoder). Every config key is either mapped, kept for the way back
(scaling_factor, shift_factor, force_upcast: the encoder's `diffusers` option) or refused by name; weights
that are missing, extra or of the wrong shape are refused naming the key. Only safetensors are read: never a
pickle (.bin), which would run code from the file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from vaezoo.atomic import atomic_write, atomic_write_text
from vaezoo.components.ldm.networks import KEPT_SETTINGS, LDMDecoder, LDMEncoder
from vaezoo.components.likelihoods.location_scale import LocationScale
from vaezoo.components.posteriors.gaussian import GaussianPosterior
from vaezoo.core import VAE
from vaezoo.errors import RunDirError, VaezooError
from vaezoo.registry.factory import create_model
from vaezoo.runtime.finite import first_nonfinite

CONFIG = "config.json"
WEIGHTS = "diffusion_pytorch_model.safetensors"
CLASS_NAME = "AutoencoderKL"
VARIANT = "autoencoder-kl"
DOWN_BLOCK, UP_BLOCK = "DownEncoderBlock2D", "UpDecoderBlock2D"
#: Keys diffusers writes about the file rather than the model.
METADATA = ("_class_name", "_diffusers_version", "_name_or_path", "_use_default_values")
#: AutoencoderKL's settings with diffusers' defaults (used where config.json leaves one out).
DEFAULTS: dict[str, Any] = {
    "in_channels": 3, "out_channels": 3, "down_block_types": [DOWN_BLOCK], "up_block_types": [UP_BLOCK],
    "block_out_channels": [64], "layers_per_block": 1, "act_fn": "silu", "latent_channels": 4,
    "norm_num_groups": 32, "sample_size": 32, "latents_mean": None, "latents_std": None,
    "use_quant_conv": True, "use_post_quant_conv": True, "mid_block_add_attention": True, **KEPT_SETTINGS,
}
#: config key -> the ldm option it sets on both the encoder and the decoder.
SHARED = {
    "block_out_channels": "block_out_channels", "layers_per_block": "layers_per_block",
    "latent_channels": "latent_channels", "norm_num_groups": "norm_num_groups", "act_fn": "act_fn",
    "mid_block_add_attention": "mid_attention",
}
#: The activations diffusers' AutoencoderKL builds by name (and vaezoo has).
ACTIVATIONS = ("silu", "swish", "gelu", "relu")
#: The attention weights' names in checkpoints written before diffusers renamed them.
OLD_ATTENTION = {".query.": ".to_q.", ".key.": ".to_k.", ".value.": ".to_v.", ".proj_attn.": ".to_out.0."}


def is_diffusers_dir(path: str | os.PathLike[str]) -> bool:
    """True when `path` holds a diffusers config.json (a `_class_name` key) rather than a vaezoo run's."""
    try:
        config = json.loads((Path(path) / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "_class_name" in config


def _refuse(where: Path, message: str) -> RunDirError:
    return RunDirError(f"{where}: {message}")


def model_overrides(config: dict[str, Any], where: Path) -> tuple[tuple[int, int, int], dict[str, Any]]:
    """(input_shape, create_model overrides) for an AutoencoderKL config; a key vaezoo cannot map is refused."""
    if config.get("_class_name") != CLASS_NAME:
        raise _refuse(where, f"config.json's _class_name is {config.get('_class_name')!r}; vaezoo loads "
                             f"{CLASS_NAME} directories only")
    unknown = sorted(set(config) - set(DEFAULTS) - set(METADATA))
    if unknown:
        raise _refuse(where, f"config.json's key {unknown[0]!r} is not an {CLASS_NAME} setting vaezoo can map")
    c = {**DEFAULTS, **{k: v for k, v in config.items() if k not in METADATA}}
    stages = c["block_out_channels"]
    if not isinstance(stages, list) or not stages:
        raise _refuse(where, f"config.json's block_out_channels must be a non-empty list, got {stages!r}")
    for key, kind in (("down_block_types", DOWN_BLOCK), ("up_block_types", UP_BLOCK)):
        types = c[key]
        if not isinstance(types, list) or len(types) != len(stages):
            raise _refuse(where, f"config.json's {key} must list one block type per entry of block_out_channels "
                                 f"({len(stages)}), got {types!r}")
        for i, block in enumerate(types):
            if block != kind:
                raise _refuse(where, f"config.json's {key}[{i}] is {block!r}: vaezoo's ldm parts have {kind} "
                                     "blocks only")
    if c["out_channels"] != c["in_channels"]:
        raise _refuse(where, f"config.json's out_channels ({c['out_channels']}) differs from in_channels "
                             f"({c['in_channels']}); vaezoo's decoder gives images of the input's channels")
    for key in ("latents_mean", "latents_std"):
        if c[key] is not None:
            raise _refuse(where, f"config.json's {key} is set: vaezoo does not keep per-channel latent statistics")
    size = c["sample_size"]
    height, width = (size, size) if isinstance(size, int) else (tuple(size) if isinstance(size, list) and len(size) == 2
                                                                 else (None, None))
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in (height, width, c["in_channels"])):
        raise _refuse(where, f"config.json's sample_size and in_channels must be positive ints, got "
                             f"{size!r} and {c['in_channels']!r}")
    shared = {option: c[key] for key, option in SHARED.items()}
    kept = {key: c[key] for key in KEPT_SETTINGS}
    overrides = {
        "encoder": {**shared, "quant_conv": c["use_quant_conv"], "diffusers": kept},
        "decoder": {**shared, "post_quant_conv": c["use_post_quant_conv"]},
    }
    return (c["in_channels"], height, width), overrides


def to_vaezoo_key(key: str) -> str | None:
    """The vaezoo state-dict key of a diffusers weight, or None when it belongs to no ldm part."""
    if key.startswith(("quant_conv.", "post_quant_conv.")):
        return ("encoder." if key.startswith("quant_conv.") else "decoder.") + key
    if not key.startswith(("encoder.", "decoder.")):
        return None
    if ".attentions." in key:
        for old, new in OLD_ATTENTION.items():
            key = key.replace(old, new)
    return key


def to_diffusers_key(key: str) -> str:
    """The diffusers key of an ldm part's weight (vaezoo's encoder.quant_conv is diffusers' quant_conv)."""
    for part, conv in (("encoder.", "quant_conv."), ("decoder.", "post_quant_conv.")):
        if key.startswith(part + conv):
            return key[len(part):]
    return key


def _weights_file(where: Path) -> Path:
    path = where / WEIGHTS
    if path.is_file():
        return path
    others = sorted(p.name for p in where.glob("diffusion_pytorch_model*"))
    if any(name.endswith(".bin") for name in others):
        raise _refuse(where, f"has {', '.join(others)} but no {WEIGHTS}: vaezoo never reads pickled weights (.bin "
                             "files run code when loaded); convert them to safetensors with diffusers first")
    found = f" (found {', '.join(others)}; rename the one you mean to {WEIGHTS})" if others else ""
    raise _refuse(where, f"has no {WEIGHTS}{found}")


def load_diffusers(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> VAE:
    """The `autoencoder-kl` VAE of a diffusers AutoencoderKL directory, with its weights (see the module)."""
    where = Path(path)
    try:
        config = json.loads((where / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _refuse(where, f"cannot read {CONFIG}: {exc}") from exc
    shape, overrides = model_overrides(config, where)
    try:
        model = create_model(VARIANT, input_shape=shape, **overrides)
    except VaezooError as exc:
        raise _refuse(where, f"config.json does not map to vaezoo's ldm parts: {exc}") from exc
    weights_file = _weights_file(where)
    try:
        tensors = load_file(weights_file)
    except (SafetensorError, OSError) as exc:
        raise _refuse(where, f"{WEIGHTS} is not a readable safetensors file: {exc}") from exc
    expected = {k: v for k, v in model.state_dict().items() if k.startswith(("encoder.", "decoder."))}
    state: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        mapped = to_vaezoo_key(key)
        if mapped is None or mapped not in expected:
            raise _refuse(where, f"{WEIGHTS} holds the weight {key!r}, for which the architecture in config.json "
                                 "has no place")
        if tensor.dim() == 4 and tuple(tensor.shape[2:]) == (1, 1) and expected[mapped].dim() == 2:
            tensor = tensor[:, :, 0, 0]  # attention projections stored as 1x1 convolutions by older checkpoints
        if tuple(tensor.shape) != tuple(expected[mapped].shape):
            raise _refuse(where, f"{WEIGHTS}'s weight {key!r} is shaped {list(tensor.shape)}; the architecture in "
                                 f"config.json needs {list(expected[mapped].shape)}")
        state[mapped] = tensor.to(expected[mapped].dtype)
    missing = sorted(set(expected) - set(state))
    if missing:
        raise _refuse(where, f"{WEIGHTS} has no weight {to_diffusers_key(missing[0])!r}, which the architecture in "
                             "config.json needs")
    bad = first_nonfinite(state)
    if bad is not None:
        raise _refuse(where, f"{WEIGHTS} holds NaN or infinity in {to_diffusers_key(bad)!r}")
    model.load_state_dict(state, strict=False)
    return model.to(device).eval()


def diffusers_config(model: VAE) -> dict[str, Any]:
    """The AutoencoderKL config.json of a VAE made of vaezoo's ldm parts, or a refusal naming the part that an
    AutoencoderKL cannot hold."""
    parts = {
        "encoder": (isinstance(model.encoder, LDMEncoder), "the ldm encoder"),
        "decoder": (isinstance(model.decoder, LDMDecoder), "the ldm decoder"),
        "posterior": (isinstance(model.posterior, GaussianPosterior), "the Gaussian posterior"),
        "prior": (model.prior.is_standard_normal, "the standard-normal prior"),
        "likelihood": (isinstance(model.likelihood, LocationScale),
                       "a likelihood whose mean is the decoder's output (gaussian, laplace)"),
    }
    for kind, (ok, needed) in parts.items():
        if not ok:
            raise VaezooError(f"an {CLASS_NAME} holds {needed}; this model's {kind} is "
                              f"{type(getattr(model, kind)).__name__}, so it cannot be exported to diffusers")
    enc, dec = model.encoder.settings, model.decoder.settings
    for key, option in SHARED.items():
        if enc[option] != dec[option]:
            raise VaezooError(f"an {CLASS_NAME} has one {key} for its encoder and decoder; this model's encoder has "
                              f"{option}={enc[option]!r} and its decoder {dec[option]!r}")
    if enc["act_fn"] not in ACTIVATIONS:
        raise VaezooError(f"this model's act_fn is {enc['act_fn']!r}, which diffusers' {CLASS_NAME} does not build; "
                          f"it builds {', '.join(ACTIVATIONS)}")
    channels, height, width = model.input_shape
    return {
        "_class_name": CLASS_NAME,
        "in_channels": channels, "out_channels": channels,
        "down_block_types": [DOWN_BLOCK] * len(enc["block_out_channels"]),
        "up_block_types": [UP_BLOCK] * len(enc["block_out_channels"]),
        **{key: enc[option] for key, option in SHARED.items()},
        "sample_size": height if height == width else [height, width],
        "latents_mean": None, "latents_std": None,
        "use_quant_conv": enc["quant_conv"], "use_post_quant_conv": dec["post_quant_conv"],
        **{**KEPT_SETTINGS, "scaling_factor": 1.0, **model.encoder.diffusers},
    }


def write_diffusers(model: VAE, out: str | os.PathLike[str]) -> Path:
    """Write `model` as a diffusers AutoencoderKL directory at `out`, which must be new or empty (nothing there
    is overwritten); each file is written atomically."""
    config = diffusers_config(model)
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise RunDirError(f"{target} already exists and is not an empty folder; export into a new folder")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create {target}: {exc.strerror or exc}") from exc
    tensors = {to_diffusers_key(k): v.detach().to("cpu").contiguous()
               for k, v in model.state_dict().items() if k.startswith(("encoder.", "decoder."))}
    data = save(tensors, metadata={"format": "pt"})
    atomic_write(target / WEIGHTS, lambda f: f.write(data))
    atomic_write_text(target / CONFIG, json.dumps(config, indent=2) + "\n")
    return target
