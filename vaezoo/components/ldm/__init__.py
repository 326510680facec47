"""Latent-diffusion autoencoder parts (Rombach et al., 2022): the `ldm` encoder and decoder, with spatial
latents, and the `autoencoder-kl` variant that diffusers' AutoencoderKL directories load into."""
from __future__ import annotations

from vaezoo.components.ldm.networks import LDMDecoder, LDMEncoder
from vaezoo.registry.hookspecs import Register, hookimpl
from vaezoo.registry.spec import VariantSpec

__all__ = ["LDMDecoder", "LDMEncoder"]

#: The variant a diffusers AutoencoderKL directory loads as: its networks, the Gaussian posterior (through the
#: fused operator) against N(0, I), Gaussian pixels and the ELBO.
AUTOENCODER_KL = VariantSpec(
    encoder="ldm", decoder="ldm", posterior="gaussian", prior="standard-normal", likelihood="gaussian",
    objective="elbo", input_shape=(3, 32, 32),
)


@hookimpl
def vaezoo_register_encoders(register: Register) -> None:
    register("ldm", LDMEncoder, description="latent-diffusion encoder: ResNet stages, mid-block attention, "
             "spatial latents (Rombach et al., 2022)")


@hookimpl
def vaezoo_register_decoders(register: Register) -> None:
    register("ldm", LDMDecoder, description="latent-diffusion decoder: mid-block attention, ResNet stages, "
             "nearest-neighbour upsampling (Rombach et al., 2022)")


@hookimpl
def vaezoo_register_variants(register: Register) -> None:
    register("autoencoder-kl", AUTOENCODER_KL,
             description="diffusers' AutoencoderKL networks (ldm encoder and decoder, spatial latents) with the "
             "ELBO; what a diffusers directory loads as (Rombach et al., 2022)", tags=("ldm",))
