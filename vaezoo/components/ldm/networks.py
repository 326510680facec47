"""The `ldm` encoder and decoder: Stable Diffusion's AutoencoderKL networks as vaezoo parts.

Their latents are spatial, C x h x w with h = H / f, w = W / f (f = 2 ** (stages - 1)). Inside a VAE the code
of each example is the flat vector of those C * h * w numbers laid out position by position (channels last),
so every posterior and prior works on it unchanged: the Gaussian posterior's fused operator sums the KL over
C x h x w, and the VQ posterior with code_dim = latent_channels quantizes one C-vector per position. The
`spatial` methods take and give [B, C, h, w] tensors at any input size the downsampling divides (tiling and
diffusers use them). Pixels: vaezoo's images are in [0, 1]; the networks see 2x - 1 and their output y is
returned as (y + 1) / 2, as a diffusers pipeline's image processor does around the same networks.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from vaezoo.components import layers
from vaezoo.components.layers import image_shape, positive_int, positive_ints
from vaezoo.components.ldm.blocks import Downsample, MidBlock, Stage, Upsample, group_norm
from vaezoo.errors import DataError

CHANNELS = (32, 64, 128)
LATENT_CHANNELS = 4
#: The second of two parameter tensors is a log-variance, clamped as diffusers' DiagonalGaussianDistribution does.
LOGVAR_RANGE = (-30.0, 20.0)


def factor(block_out_channels: Sequence[int]) -> int:
    """The total downsampling: every stage but the last halves H and W."""
    return 2 ** (len(block_out_channels) - 1)


def nearby_sizes(size: int, f: int) -> str:
    """The multiples of f closest to `size`, as a user would type them."""
    below, above = (size // f) * f, (size // f + 1) * f
    return f"{below} or {above}" if below else str(above)


def check_divisible(height: int, width: int, f: int, what: str) -> None:
    """Refuse an H x W that the downsampling factor f does not divide, naming the sizes that would work."""
    bad = [(name, s) for name, s in (("height", height), ("width", width)) if s % f]
    if bad:
        hint = "; ".join(f"{name} {s} -> {nearby_sizes(s, f)}" for name, s in bad)
        raise DataError(
            f"{what} downsamples by {f}: image height and width must be multiples of {f}, got {height}x{width} "
            f"({hint})"
        )


def latent_grid(input_shape: Sequence[int], block_out_channels: Sequence[int], latent_channels: int
                ) -> tuple[int, int, int]:
    """(C, h, w) of the latents for inputs of `input_shape` [C, H, W]; ValueError naming sizes that would work."""
    _, height, width = image_shape("ldm encoder/decoder", input_shape)
    channels = positive_ints("block_out_channels", block_out_channels)
    f = factor(channels)
    try:
        check_divisible(height, width, f, f"the ldm autoencoder with {len(channels)} stages")
    except DataError as exc:
        raise ValueError(str(exc)) from None
    return positive_int("latent_channels", latent_channels), height // f, width // f


def flatten_latent(spatial: torch.Tensor) -> torch.Tensor:
    """[B, C, h, w] -> [B, h*w*C], position by position (one C-vector per position, for per-position VQ)."""
    return spatial.permute(0, 2, 3, 1).flatten(1)


def unflatten_latent(flat: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """[B, h*w*C] -> [B, C, h, w]: the inverse of flatten_latent."""
    c, h, w = grid
    return flat.reshape(flat.shape[0], h, w, c).permute(0, 3, 1, 2)


def corner_latents(height: int, width: int) -> tuple[int, int]:
    """The latent grid a composition probe runs the ldm networks on, for a built grid of height x width: two
    positions a side where there are two, so that a GroupNorm of one channel per group has more than one value
    exactly when it has at the built size (a single value is an error), and the probe costs the same whatever
    the image size."""
    return min(height, 2), min(width, 2)


def cover(tensor: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """tensor [B, C, a, b] repeated over, and cut to, height x width (a composition probe's corner laid over
    the whole grid: its shape is forward's, its values are only the corner's)."""
    a, b = tensor.shape[-2:]
    return tensor.repeat(1, 1, -(-height // a), -(-width // b))[..., :height, :width]


#: diffusers' AutoencoderKL settings that do not change the networks, with diffusers' defaults: how a latent
#: diffusion model scales and shifts these latents, and whether a half-precision pipeline runs them in float32.
KEPT_SETTINGS = {"scaling_factor": 0.18215, "shift_factor": None, "force_upcast": True}


def kept_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """The encoder's `diffusers` option checked: only KEPT_SETTINGS' keys, with values of their types. vaezoo
    keeps them (in the run's config, through this option) so that an export hands them back unchanged."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(KEPT_SETTINGS))
    if unknown:
        raise ValueError(f"diffusers settings {unknown} are not kept by vaezoo; it keeps {', '.join(KEPT_SETTINGS)}")
    for key in ("scaling_factor", "shift_factor"):
        value = settings.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"diffusers setting {key} must be a number{' or null' if key == 'shift_factor' else ''}, "
                             f"got {value!r}")
    if not isinstance(settings.get("force_upcast", True), bool):
        raise ValueError(f"diffusers setting force_upcast must be true or false, got {settings['force_upcast']!r}")
    if settings.get("scaling_factor", 1.0) is None:
        raise ValueError("diffusers setting scaling_factor must be a number, got null")
    return settings


def shared_settings(block_out_channels: Sequence[int], layers_per_block: int, latent_channels: int,
                    norm_num_groups: int, act_fn: str, mid_attention: bool) -> dict[str, Any]:
    """The options an encoder and its decoder share, as plain values (an export checks that they agree)."""
    return {"block_out_channels": list(block_out_channels), "layers_per_block": layers_per_block,
            "latent_channels": latent_channels, "norm_num_groups": norm_num_groups, "act_fn": act_fn,
            "mid_attention": bool(mid_attention)}


def _activation_name(act_fn: str) -> str:
    name = "silu" if act_fn == "swish" else act_fn
    if name not in layers.ACTIVATIONS:
        raise ValueError(f"act_fn {act_fn!r} is not one vaezoo has; expected one of: {', '.join(layers.ACTIVATIONS)}")
    return name


class LDMEncoder(nn.Module):
    """conv_in, per stage `layers_per_block` ResNet blocks and a stride-2 downsampling (not after the last), a
    middle block with self-attention, GroupNorm, activation, conv_out to the posterior's parameters
    (len(output_dims) x latent_channels channels), then the 1x1 quant_conv."""

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int,
        block_out_channels: Sequence[int] = CHANNELS,
        layers_per_block: int = 1,
        latent_channels: int = LATENT_CHANNELS,
        norm_num_groups: int = 32,
        act_fn: str = "silu",
        mid_attention: bool = True,
        quant_conv: bool = True,
        diffusers: dict[str, Any] | None = None,
        *,
        output_dims: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.diffusers = kept_settings(diffusers)
        self.latent_grid = latent_grid(input_shape, block_out_channels, latent_channels)
        self.settings = {**shared_settings(block_out_channels, layers_per_block, latent_channels, norm_num_groups,
                                           act_fn, mid_attention), "quant_conv": bool(quant_conv)}
        self.input_size = tuple(input_shape[1:])
        channels = tuple(block_out_channels)
        self.factor = factor(channels)
        count, act = positive_int("layers_per_block", layers_per_block), _activation_name(act_fn)
        size = self.latent_grid[0] * self.latent_grid[1] * self.latent_grid[2]
        sizes = tuple(output_dims or (latent_dim, latent_dim))
        if size != latent_dim:
            raise ValueError(f"the ldm encoder's latents are latent_channels x h x w = {size} numbers, not "
                             f"latent_dim {latent_dim}")
        reason = self.posterior_mismatch(sizes, latent_dim)
        if reason is not None:
            raise ValueError(f"the ldm encoder cannot serve this posterior: {reason}")
        self.tensors = len(sizes)
        out = self.tensors * latent_channels
        self.conv_in = nn.Conv2d(input_shape[0], channels[0], kernel_size=3, padding=1)
        widths = (channels[0], *channels)
        self.down_blocks = nn.ModuleList(
            Stage(widths[i], widths[i + 1], count, norm_num_groups, act,
                  Downsample(widths[i + 1]) if i < len(channels) - 1 else None, "downsamplers")
            for i in range(len(channels))
        )
        self.mid_block = MidBlock(channels[-1], norm_num_groups, act, bool(mid_attention))
        self.conv_norm_out = group_norm(norm_num_groups, channels[-1])
        self.conv_act = layers.activation(act)
        self.conv_out = nn.Conv2d(channels[-1], out, kernel_size=3, padding=1)
        self.quant_conv = nn.Conv2d(out, out, kernel_size=1) if quant_conv else None

    @staticmethod
    def posterior_mismatch(param_dims: Sequence[int], latent_dim: int) -> str | None:
        """Why this encoder cannot give a posterior reading tensors of `param_dims`, or None: it gives each
        parameter as one tensor of latent_channels x h x w numbers (create_model refuses with this reason)."""
        if all(d == latent_dim for d in param_dims):
            return None
        return (f"it gives each parameter as latent_channels x h x w = {latent_dim} numbers, and the posterior "
                f"reads tensors of sizes {tuple(param_dims)}")

    @classmethod
    def latent_dim_for(cls, input_shape: Sequence[int], options: dict[str, Any]) -> int:
        """The latent_dim these options give for `input_shape`: C * h * w (create_model sets it from this)."""
        c, h, w = latent_grid(input_shape, options.get("block_out_channels", CHANNELS),
                              options.get("latent_channels", LATENT_CHANNELS))
        return c * h * w

    def spatial(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The posterior's parameters as [B, C, H/f, W/f] tensors, for x [B, C_in, H, W] of any size f divides."""
        check_divisible(x.shape[-2], x.shape[-1], self.factor, "this ldm encoder")
        h = self.conv_in(2.0 * x - 1.0)
        for stage in self.down_blocks:
            h = stage(h)
        h = self.conv_out(self.conv_act(self.conv_norm_out(self.mid_block(h))))
        if self.quant_conv is not None:
            h = self.quant_conv(h)
        params = h.chunk(self.tensors, dim=1)
        if self.tensors == 2:
            params = (params[0], params[1].clamp(*LOGVAR_RANGE))
        return params

    def composition_probe(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """forward(x)'s output shapes, for create_model's composition check (vaezoo.registry.contract), at a
        fraction of its cost. Only because these networks are fully convolutional: every layer runs on x's
        top-left corner_latents(...) x f pixels, and the latent maps that gives are repeated over the h x w
        grid of x's own size and laid out as forward lays them out. A corner that does not give its own latent
        grid size runs forward itself, so that the check reports what forward gives; so does an x of another
        size than the built one (which the build checked f divides)."""
        if tuple(x.shape[-2:]) != self.input_size or type(self).forward is not LDMEncoder.forward:
            return self(x)  # forward's refusal, naming the built size; or a subclass's own forward
        _, h, w = self.latent_grid
        rows, cols = corner_latents(h, w)
        params = self.spatial(x[..., :rows * self.factor, :cols * self.factor])
        if any(tuple(p.shape[-2:]) != (rows, cols) for p in params):
            return self(x)
        return tuple(flatten_latent(cover(p, h, w)) for p in params)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if tuple(x.shape[-2:]) != self.input_size:
            check_divisible(x.shape[-2], x.shape[-1], self.factor, "this ldm encoder")
            (height, width), (c, h, w) = self.input_size, self.latent_grid
            raise DataError(
                f"this ldm encoder was built for {height}x{width} images (latents {c}x{h}x{w}) and got "
                f"{x.shape[-2]}x{x.shape[-1]}: build the model with input_shape=({x.shape[-3]}, {x.shape[-2]}, "
                f"{x.shape[-1]}), or encode large images in tiles (vaezoo.components.ldm.tiling)"
            )
        return tuple(flatten_latent(p) for p in self.spatial(x))


class LDMDecoder(nn.Module):
    """post_quant_conv, conv_in, a middle block with self-attention, per stage (widest first)
    `layers_per_block + 1` ResNet blocks and a nearest-neighbour doubling (not after the last), GroupNorm,
    activation, conv_out to the likelihood's parameters."""

    def __init__(
        self,
        latent_dim: int,
        output_shape: Sequence[int],
        block_out_channels: Sequence[int] = CHANNELS,
        layers_per_block: int = 1,
        latent_channels: int = LATENT_CHANNELS,
        norm_num_groups: int = 32,
        act_fn: str = "silu",
        mid_attention: bool = True,
        post_quant_conv: bool = True,
    ) -> None:
        super().__init__()
        self.latent_grid = latent_grid(output_shape, block_out_channels, latent_channels)
        self.settings = {**shared_settings(block_out_channels, layers_per_block, latent_channels, norm_num_groups,
                                           act_fn, mid_attention), "post_quant_conv": bool(post_quant_conv)}
        size = self.latent_grid[0] * self.latent_grid[1] * self.latent_grid[2]
        if size != latent_dim:
            raise ValueError(
                f"the ldm decoder reads latents of latent_channels x h x w = {self.latent_grid[0]}x{self.latent_grid[1]}x"
                f"{self.latent_grid[2]} = {size} numbers, but latent_dim is {latent_dim}; give the encoder and the "
                "decoder the same latent_channels and number of stages"
            )
        channels = tuple(reversed(block_out_channels))
        self.factor = factor(channels)
        count, act = positive_int("layers_per_block", layers_per_block), _activation_name(act_fn)
        self.post_quant_conv = nn.Conv2d(latent_channels, latent_channels, kernel_size=1) if post_quant_conv else None
        self.conv_in = nn.Conv2d(latent_channels, channels[0], kernel_size=3, padding=1)
        self.mid_block = MidBlock(channels[0], norm_num_groups, act, bool(mid_attention))
        widths = (channels[0], *channels)
        self.up_blocks = nn.ModuleList(
            Stage(widths[i], widths[i + 1], count + 1, norm_num_groups, act,
                  Upsample(widths[i + 1]) if i < len(channels) - 1 else None, "upsamplers")
            for i in range(len(channels))
        )
        self.conv_norm_out = group_norm(norm_num_groups, channels[-1])
        self.conv_act = layers.activation(act)
        self.conv_out = nn.Conv2d(channels[-1], output_shape[0], kernel_size=3, padding=1)

    latent_dim_for = LDMEncoder.latent_dim_for

    def spatial(self, z: torch.Tensor) -> torch.Tensor:
        """The likelihood's parameters [B, C_out, h*f, w*f] for latents z [B, C, h, w] of any size."""
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        h = self.mid_block(self.conv_in(z))
        for stage in self.up_blocks:
            h = stage(h)
        y = self.conv_out(self.conv_act(self.conv_norm_out(h)))
        return (y + 1.0) / 2.0

    def _spatial_codes(self, z: torch.Tensor) -> torch.Tensor:
        """Flat codes [B, C*h*w] as the latent maps [B, C, h, w] they lay out, after checking their size."""
        c, h, w = self.latent_grid
        if z.dim() != 2 or z.shape[1] != c * h * w:
            raise DataError(
                f"this ldm decoder reads codes of {c}x{h}x{w} = {c * h * w} numbers laid out [B, {c * h * w}], got "
                f"{list(z.shape)}; decode spatial latents [B, C, h, w] with its spatial() method"
            )
        return unflatten_latent(z, self.latent_grid)

    def composition_probe(self, z: torch.Tensor) -> torch.Tensor:
        """forward(z)'s output shape, for create_model's composition check (vaezoo.registry.contract), at a
        fraction of its cost. Only because this network is fully convolutional: every layer runs on the
        top-left corner_latents(...) of z's latent maps, and the f-times larger patch that gives is repeated
        over the h*f x w*f image forward gives. A patch of another size runs forward itself, so that the check
        reports what forward gives. z's size is checked as forward checks it."""
        if type(self).forward is not LDMDecoder.forward:
            return self(z)  # a subclass's own forward
        codes = self._spatial_codes(z)
        _, h, w = self.latent_grid
        rows, cols = corner_latents(h, w)
        patch = self.spatial(codes[..., :rows, :cols])
        if tuple(patch.shape[-2:]) != (rows * self.factor, cols * self.factor):
            return self(z)
        return cover(patch, h * self.factor, w * self.factor)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.spatial(self._spatial_codes(z))
