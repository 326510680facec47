"""diffusers' AutoencoderKL in and out: directories diffusers itself saves load into vaezoo's ldm parts and
encode (mean, log-variance) and decode as diffusers does on the same weights, to 1e-5; vaezoo's exports load
in diffusers and agree the same way. Small configurations, built here: nothing is downloaded."""
from __future__ import annotations

import json
import warnings

import pytest
import torch

import vaezoo
from vaezoo.cli.main import main
from vaezoo.components.ldm.networks import flatten_latent
from vaezoo.runs.diffusers_format import write_diffusers
from vaezoo.runs.export import export

diffusers = pytest.importorskip("diffusers")

TOLERANCE = dict(atol=1e-5, rtol=0)
#: name -> (AutoencoderKL settings, input [C, H, W]). The second differs in every mapped setting: three stages,
#: two blocks per stage, 2 latent channels, no mid-block attention, no post_quant_conv, a non-square size, and
#: the kept settings of SDXL-like and SD3-like models.
CONFIGS = {
    "sd-like": (dict(block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4,
                     sample_size=16), (3, 16, 16)),
    "no-attention": (dict(block_out_channels=(8, 8, 16), layers_per_block=2, latent_channels=2, norm_num_groups=8,
                          in_channels=1, out_channels=1, sample_size=[16, 24], mid_block_add_attention=False,
                          use_post_quant_conv=False, scaling_factor=0.13025, shift_factor=0.0609,
                          force_upcast=False), (1, 16, 24)),
}


def autoencoder_kl(settings: dict) -> "diffusers.AutoencoderKL":
    """A diffusers AutoencoderKL with weights moved off their initial values (so every weight matters)."""
    torch.manual_seed(0)
    stages = len(settings["block_out_channels"])
    model = diffusers.AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * stages,
                                    up_block_types=("UpDecoderBlock2D",) * stages, **settings)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def from_pretrained(path) -> "diffusers.AutoencoderKL":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # diffusers' advice to install accelerate
        return diffusers.AutoencoderKL.from_pretrained(path).eval()


@torch.no_grad()
def assert_same_networks(ours: vaezoo.VAE, theirs, shape) -> None:
    """Encoding and decoding agree: vaezoo's [0, 1] pixels are diffusers' 2x - 1, its output (y + 1) / 2."""
    x = torch.rand(2, *shape)
    posterior = theirs.encode(2 * x - 1).latent_dist
    mu, logvar = ours.encoder.spatial(x)
    torch.testing.assert_close(mu, posterior.mean, **TOLERANCE)
    torch.testing.assert_close(logvar, posterior.logvar, **TOLERANCE)
    flat_mu, flat_logvar = ours.encode(x)  # the VAE's codes are the same numbers, position by position
    torch.testing.assert_close(flat_mu, flatten_latent(posterior.mean), **TOLERANCE)
    torch.testing.assert_close(flat_logvar, flatten_latent(posterior.logvar), **TOLERANCE)
    z = torch.randn_like(posterior.mean)
    expected = (theirs.decode(z).sample + 1) / 2
    torch.testing.assert_close(ours.decoder.spatial(z), expected, **TOLERANCE)
    torch.testing.assert_close(ours.decode(flatten_latent(z)), expected, **TOLERANCE)


@pytest.mark.parametrize("name", CONFIGS)
def test_a_directory_diffusers_saves_loads_and_computes_what_diffusers_computes(tmp_path, name):
    settings, shape = CONFIGS[name]
    theirs = autoencoder_kl(settings)
    theirs.save_pretrained(tmp_path / "vae")
    ours = vaezoo.load_model(tmp_path / "vae")
    assert ours.input_shape == shape and ours.config["variant"] == "vaezoo:autoencoder-kl"
    assert_same_networks(ours, theirs, shape)
    # the settings that do not change the networks are kept for the way back
    kept = {k: theirs.config[k] for k in ("scaling_factor", "shift_factor", "force_upcast")}
    assert ours.encoder.diffusers == kept


@pytest.mark.parametrize("name", CONFIGS)
def test_an_export_loads_in_diffusers_and_computes_what_vaezoo_computes(tmp_path, name):
    settings, shape = CONFIGS[name]
    autoencoder_kl(settings).save_pretrained(tmp_path / "vae")
    ours = vaezoo.load_model(tmp_path / "vae")
    with torch.no_grad():  # weights of vaezoo's own, not diffusers' that it read
        for p in ours.parameters():
            p.mul_(0.9)
    write_diffusers(ours, tmp_path / "export")
    theirs = from_pretrained(tmp_path / "export")
    assert_same_networks(ours, theirs, shape)
    written = json.loads((tmp_path / "export" / "config.json").read_text())
    original = json.loads((tmp_path / "vae" / "config.json").read_text())
    assert {k: v for k, v in written.items() if not k.startswith("_")} == {
        k: v for k, v in original.items() if not k.startswith("_")}


def test_a_run_trained_by_vaezoo_exports_from_the_command_line(tmp_path, capsys):
    torch.manual_seed(0)
    model = vaezoo.create_model("autoencoder-kl", input_shape=(3, 8, 8), block_out_channels=[8, 8],
                                norm_num_groups=4, latent_channels=2)
    vaezoo.fit(model, torch.rand(8, 3, 8, 8), epochs=1, batch_size=4, out=tmp_path / "run")
    assert main(["export", str(tmp_path / "run"), "--format", "diffusers", "--out", str(tmp_path / "dir")]) == 0
    assert "wrote" in capsys.readouterr().out
    ours = vaezoo.load_model(tmp_path / "run")
    theirs = from_pretrained(tmp_path / "dir")
    assert theirs.config.scaling_factor == 1.0  # a vaezoo-trained model's latents are N(0, I)-regularized
    assert_same_networks(ours, theirs, (3, 8, 8))
    # nothing is written over: a second export into the same folder is refused, the first left as it was
    before = (tmp_path / "dir" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert main(["export", str(tmp_path / "run"), "--format", "diffusers", "--out", str(tmp_path / "dir")]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "dir" / "diffusion_pytorch_model.safetensors").read_bytes() == before


def test_a_loaded_diffusers_model_fine_tunes_into_a_run_and_goes_back_with_its_settings(tmp_path):
    settings, shape = CONFIGS["no-attention"]
    autoencoder_kl(settings).save_pretrained(tmp_path / "vae")
    model = vaezoo.load_model(tmp_path / "vae").train()
    before = model.decoder.conv_out.weight.detach().clone()
    vaezoo.fit(model, torch.rand(8, *shape), epochs=1, batch_size=4, out=tmp_path / "run")
    assert not torch.equal(model.decoder.conv_out.weight, before)
    export(tmp_path / "run", tmp_path / "back")
    theirs = from_pretrained(tmp_path / "back")
    assert theirs.config.scaling_factor == 0.13025 and theirs.config.shift_factor == 0.0609
    assert_same_networks(vaezoo.load_model(tmp_path / "run"), theirs, shape)


def test_half_precision_weights_and_the_old_attention_names_load(tmp_path):
    """SD-family VAEs are often shared in float16, and checkpoints written before diffusers renamed the
    attention weights call them query/key/value/proj_attn, sometimes as 1x1 convolutions."""
    from safetensors.torch import load_file, save_file

    settings, shape = CONFIGS["sd-like"]
    theirs = autoencoder_kl(settings).half()
    theirs.save_pretrained(tmp_path / "vae")
    weights = tmp_path / "vae" / "diffusion_pytorch_model.safetensors"
    new_names = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}
    old = {}
    for key, tensor in load_file(weights).items():
        for new, former in new_names.items():
            if new in key:
                key = key.replace(new, former)
                tensor = tensor[:, :, None, None] if tensor.dim() == 2 else tensor
        old[key] = tensor
    assert any(".query." in k for k in old)
    save_file(old, weights)
    ours = vaezoo.load_model(tmp_path / "vae")
    assert all(p.dtype == torch.float32 for p in ours.parameters())
    assert_same_networks(ours, theirs.float(), shape)
