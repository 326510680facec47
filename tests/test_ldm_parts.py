"""The ldm encoder and decoder inside vaezoo: spatial latents laid out position by position, the Gaussian KL
over C x h x w, VQ per position, the input sizes they take (and refuse at the first batch), and the latent-space
tools on their codes."""
from __future__ import annotations

import pytest
import torch

import vaezoo
from vaezoo.analysis import explore
from vaezoo.components.ldm.networks import LDMDecoder, LDMEncoder, flatten_latent, unflatten_latent
from vaezoo.errors import BadOverrideError, CombinationError, DataError

SMALL = {"block_out_channels": [8, 16], "norm_num_groups": 4, "latent_channels": 3}


def small(shape=(3, 16, 24), **overrides) -> vaezoo.VAE:
    torch.manual_seed(0)
    return vaezoo.create_model("autoencoder-kl", input_shape=shape, **{**SMALL, **overrides})


def test_codes_are_the_latent_maps_position_by_position():
    model = small().eval()
    assert model.latent_dim == 3 * 8 * 12 and model.encoder.latent_grid == (3, 8, 12)
    x = torch.rand(2, 3, 16, 24)
    mu, logvar = model.encoder.spatial(x)
    assert mu.shape == (2, 3, 8, 12)
    flat_mu, flat_logvar = model.encode(x)
    # channels last: the C numbers of one position are neighbours in the code
    assert torch.equal(flat_mu.view(2, 8, 12, 3)[:, 4, 5], mu[:, :, 4, 5])
    assert torch.equal(unflatten_latent(flat_mu, (3, 8, 12)), mu) and torch.equal(flatten_latent(mu), flat_mu)
    torch.testing.assert_close(model.decode(flat_mu), model.decoder.spatial(mu))


def test_the_gaussian_kl_is_the_fused_operators_sum_over_channels_height_and_width():
    model = small()
    x = torch.rand(4, 3, 16, 24)
    out = model(x)
    mu, logvar = model.encoder.spatial(x)
    expected = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=(1, 2, 3))
    torch.testing.assert_close(out.kl, expected)


def test_vq_quantizes_one_vector_per_position():
    model = small(posterior="vq", prior="codebook", **{"prior.code_dim": 3, "prior.codes": 5}).eval()
    x = torch.rand(2, 3, 16, 24)
    (z_e,) = model.encoder.spatial(x)
    codebook = model.prior.embedding  # [5, 3]
    vectors = z_e.permute(0, 2, 3, 1)  # [B, h, w, C]: one vector per position
    nearest = ((vectors[..., None, :] - codebook) ** 2).sum(-1).argmin(-1)
    expected = codebook[nearest].permute(0, 3, 1, 2)
    assert torch.equal(unflatten_latent(model.posterior_mean(x), (3, 8, 12)), expected)


def test_any_size_the_downsampling_divides_builds_and_others_are_refused_with_the_sizes_that_work():
    assert small((1, 8, 40)).sample(2).shape == (2, 1, 8, 40)
    with pytest.raises(BadOverrideError, match=r"multiples of 2, got 15x24 \(height 15 -> 14 or 16\)"):
        small((3, 15, 24))
    model = small()
    with pytest.raises(DataError, match=r"got 15x24 \(height 15 -> 14 or 16\)"):
        model(torch.rand(2, 3, 15, 24))  # at the first batch
    with pytest.raises(DataError, match="built for 16x24 images .* got 32x32: build the model with input_shape"):
        model(torch.rand(2, 3, 32, 32))
    # the networks themselves take any size f divides
    mu, _ = model.encoder.spatial(torch.rand(1, 3, 32, 48))
    assert mu.shape == (1, 3, 16, 24) and model.decoder.spatial(mu).shape == (1, 3, 32, 48)


def test_latent_dim_is_the_latent_maps_size_and_another_is_refused():
    assert small().latent_dim == vaezoo.create_model(
        "autoencoder-kl", input_shape=(3, 16, 24), latent_dim=288, **SMALL).latent_dim
    with pytest.raises(BadOverrideError, match="sets latent_dim from the input shape .* to 288, not 16"):
        vaezoo.create_model("autoencoder-kl", input_shape=(3, 16, 24), latent_dim=16, **SMALL)


def test_the_latent_space_tools_walk_spatial_codes():
    model = small().eval()
    x = torch.rand(3, 3, 16, 24)
    assert explore.interpolate(model, x[:1], x[1:2], steps=4).shape == (4, 3, 16, 24)
    assert explore.arithmetic(model, x[:1], x[1:2], x[2:3]).shape == (4, 3, 16, 24)  # a, b, c, a - b + c
    assert explore.traverse(model, x, steps=3, dims=[0, 287]).shape == (6, 3, 16, 24)
    assert model.sample(2, temperature=0.5).shape == (2, 3, 16, 24)


def test_show_gives_the_latent_dim_the_parts_set(capsys):
    import json

    from vaezoo.cli.main import main

    assert main(["show", "autoencoder-kl", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["latent_dim"] == 4 * 8 * 8  # 3 stages: 32x32 -> 4 x 8 x 8


def test_the_composition_check_runs_the_networks_on_one_corner_and_gets_forwards_shapes(monkeypatch):
    """create_model's check runs each ldm network once, on a corner of 2 x 2 latents (2f x 2f pixels), not at
    the full size (Stable Diffusion's VAE at 256 x 256: about 6 s of check before, 0.1 s after), and what that
    gives is shaped as forward's output; the sizes forward refuses are refused."""
    seen = []
    for cls in (LDMEncoder, LDMDecoder):
        real = cls.spatial
        monkeypatch.setattr(cls, "spatial", lambda self, x, real=real: seen.append(
            (type(self).__name__, tuple(x.shape))) or real(self, x))
    model = small().eval()  # f = 2, latents 3 x 8 x 12
    assert seen == [("LDMEncoder", (1, 3, 4, 4)), ("LDMDecoder", (1, 3, 2, 2))]
    x, z = torch.rand(1, 3, 16, 24), torch.randn(1, model.latent_dim)
    assert [p.shape for p in model.encoder.composition_probe(x)] == [p.shape for p in model.encoder(x)]
    assert model.decoder.composition_probe(z).shape == model.decoder(z).shape == (1, 3, 16, 24)
    with pytest.raises(DataError, match="was built for 16x24 images"):
        model.encoder.composition_probe(torch.rand(1, 3, 16, 16))
    with pytest.raises(DataError, match="this ldm encoder downsamples by 2: .* got 15x24"):
        model.encoder.composition_probe(torch.rand(1, 3, 15, 24))
    with pytest.raises(DataError, match="reads codes of 3x8x12 = 288 numbers"):
        model.decoder.composition_probe(torch.zeros(1, 5))


def _fails(*args):
    raise RuntimeError("a broken layer")


@pytest.mark.parametrize("cls, broken, message", [
    (LDMDecoder, lambda real: lambda self, z: real(self, z)[..., :-1, :],
     r"decoder 'vaezoo:ldm' returned \[1, 3, \d+, 24\] for one code; the likelihood reads its parameters shaped "
     r"\[1, 3, 16, 24\]"),
    (LDMDecoder, lambda real: lambda self, z: real(self, z)[:, :2], r"decoder 'vaezoo:ldm' returned \[1, 2, 16, 24\]"),
    (LDMEncoder, lambda real: lambda self, x: real(self, x)[:1], r"encoder 'vaezoo:ldm' returned \(\[1, 288\]\) for"),
    (LDMEncoder, lambda real: _fails, "encoder 'vaezoo:ldm' fails on one input of shape .*: RuntimeError: a broken"),
    (LDMDecoder, lambda real: _fails, "decoder 'vaezoo:ldm' fails on one code of 288 dimensions: RuntimeError"),
], ids=["decoder output a row short", "decoder output a channel short", "encoder one tensor short",
        "encoder layer fails", "decoder layer fails"])
def test_the_composition_check_still_refuses_ldm_networks_that_do_not_fit(monkeypatch, cls, broken, message):
    """The cheap check (above) still sees what the networks give: a network whose output does not fit the
    posterior or the likelihood, or whose layers fail, is refused when the model is built."""
    monkeypatch.setattr(cls, "spatial", broken(cls.spatial))
    with pytest.raises(CombinationError, match=message):
        small()


def test_the_cheap_check_refuses_what_forward_fails_on_and_builds_what_it_takes():
    """A GroupNorm of one channel per group fails on a single value: a 1 x 1 latent grid with such norms fails
    in forward, so the check refuses it; a 2 x 1 grid works, so it builds (the corner keeps 2 positions)."""
    one_per_group = {"block_out_channels": [4, 4], "norm_num_groups": 4, "latent_channels": 1}
    with pytest.raises(CombinationError, match="fails on one input of shape \\[3, 2, 2\\]: ValueError: Expected more"):
        vaezoo.create_model("autoencoder-kl", input_shape=(3, 2, 2), **one_per_group)
    model = vaezoo.create_model("autoencoder-kl", input_shape=(3, 4, 2), **one_per_group).eval()
    assert model.decode(model.encode(torch.rand(1, 3, 4, 2))[0]).shape == (1, 3, 4, 2)


def test_a_subclass_with_its_own_forward_is_checked_through_it():
    """The corner stands for forward only where forward is the ldm network's own."""
    class Cropping(LDMDecoder):
        def forward(self, z):
            return super().forward(z)[..., 1:, :]

    decoder = Cropping(3 * 8 * 12, (3, 16, 24), **SMALL).eval()
    assert decoder.composition_probe(torch.zeros(1, 3 * 8 * 12)).shape == (1, 3, 15, 24)
