"""Tiled encoding and decoding: the blending is exact for local functions, one tile is the one-pass result,
and on an ldm model tiles agree with the one pass within a tolerance that shrinks as the overlap grows."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import vaezoo
from vaezoo.components.ldm.tiling import blend_tiles, tile_starts, tiled_decode, tiled_encode, tiled_reconstruct
from vaezoo.errors import BadOverrideError, NotAvailableError


def ldm(**overrides) -> vaezoo.VAE:
    torch.manual_seed(0)
    return vaezoo.create_model("autoencoder-kl", input_shape=(3, 32, 32), block_out_channels=[8, 16],
                               norm_num_groups=4, **overrides).eval()


def test_tiles_cover_the_image_and_end_at_its_edge():
    assert tile_starts(100, 32, 8) == [0, 24, 48, 68]
    assert tile_starts(32, 32, 8) == [0] and tile_starts(20, 32, 8) == [0]


@pytest.mark.parametrize("scale, run", [
    (1.0, lambda t: (2 * t + 1, t.sin())),  # pointwise: any tiling gives the one-pass result
    (0.5, lambda t: (F.avg_pool2d(t, 2),)),  # local and aligned with the tiles, like a latent grid
    (2.0, lambda t: (F.interpolate(t, scale_factor=2.0, mode="nearest"),)),
])
def test_blending_is_exact_for_functions_that_see_no_neighbours(scale, run):
    x = torch.rand(2, 3, 40, 56)
    for tile, overlap in ((16, 4), (16, 8), (24, 0)):
        for got, expected in zip(blend_tiles(run, x, tile, overlap, scale), run(x)):
            torch.testing.assert_close(got, expected)


def test_one_tile_is_the_one_pass_result():
    model = ldm()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        mu, logvar = model.encoder.spatial(x)
        torch.testing.assert_close(tiled_encode(model.encoder, x, 32)[1], logvar)
        torch.testing.assert_close(tiled_decode(model.decoder, mu, 64), model.decoder.spatial(mu))


def relative_errors(model: vaezoo.VAE, overlaps: tuple[int, ...]) -> list[tuple[float, float]]:
    """Mean |tiled - one pass| / std of the one pass, encoding and decoding a 128x128 image in 64-pixel tiles."""
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        mu = model.encoder.spatial(x)[0]
        full = model.decoder.spatial(mu)
    return [(float((tiled_encode(model.encoder, x, 64, overlap)[0] - mu).abs().mean() / mu.std()),
             float((tiled_decode(model.decoder, mu, 64, overlap) - full).abs().mean() / full.std()))
            for overlap in overlaps]


def test_on_a_local_model_overlapping_tiles_agree_with_the_one_pass():
    """A smooth, local model: the ldm networks with their GroupNorms taken out (no attention either), so that a
    tile differs from the one pass only at its borders, which the overlap blends away."""
    model = ldm(mid_attention=False)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.GroupNorm):
                setattr(module, name, torch.nn.Identity())
    without, half = relative_errors(model, (0, 32))
    assert half[0] < 0.01 and half[1] < 0.015, half
    assert without[0] > 3 * half[0] and without[1] > 3 * half[1], (without, half)


def test_with_groupnorm_tiles_stay_close_and_closer_with_more_overlap():
    """GroupNorm normalizes each tile by its own statistics (as in diffusers' tiled decoding), so the full ldm
    agrees with the one pass less closely; the overlap still helps."""
    errors = relative_errors(ldm(mid_attention=False), (0, 16, 32))
    assert errors[-1][0] < 0.06 and errors[-1][1] < 0.2, errors
    assert errors[0][0] > errors[1][0] > errors[2][0] and errors[0][1] > errors[1][1] > errors[2][1], errors


def test_tiled_reconstruct_takes_images_larger_than_the_model_was_built_for():
    model = ldm()
    assert tiled_reconstruct(model, torch.rand(1, 3, 96, 64), 32).shape == (1, 3, 96, 64)
    with pytest.raises(BadOverrideError, match="multiple of the downsampling factor 2, got 31"):
        tiled_reconstruct(model, torch.rand(1, 3, 96, 64), 31)
    with pytest.raises(BadOverrideError, match=r"overlap must be a multiple of 2 in \[0, tile\), got 32"):
        tiled_reconstruct(model, torch.rand(1, 3, 96, 64), 32, overlap=32)
    vq = ldm(posterior="vq", prior="codebook", **{"prior.code_dim": 4})
    with pytest.raises(NotAvailableError, match="Gaussian posterior's mean; this model's posterior is VQPosterior"):
        tiled_reconstruct(vq, torch.rand(1, 3, 64, 64), 32)


def test_reconstruct_tiles_from_the_command_line(tmp_path, capsys):
    from vaezoo.cli.main import main

    run = tmp_path / "run"
    assert main(["train", "autoencoder-kl", "--dataset", "digits", "--epochs", "1", "--limit", "64", "--quiet",
                 "--set", "block_out_channels=[4,4]", "--set", "norm_num_groups=2", "--out", str(run)]) == 0
    assert main(["reconstruct", str(run), "--tile", "4", "--overlap", "2", "--n", "4",
                 "--out", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").is_file()
    assert main(["reconstruct", str(run), "--tile", "3", "--out", str(tmp_path / "bad.png")]) == 2
    assert "the tile must be a positive multiple of the downsampling factor 2, got 3" in capsys.readouterr().err
