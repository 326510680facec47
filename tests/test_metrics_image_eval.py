"""`vaezoo eval`'s reconstruction section: PSNR, SSIM, MS-SSIM, rFID and the KL per latent channel of a trained
kl-f4 run, against the metric functions applied by hand to the held-out images and their reconstructions; the
text, JSON, evaluation.json and report.html with full-size reconstructions."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import vaezoo
from vaezoo import metrics
from vaezoo.analysis.evaluate import elbo
from vaezoo.analysis.eval_extras import feature_network
from vaezoo.analysis.reconstruction import check_reconstruction, reconstruction_scores, ssim_window
from vaezoo.analysis.run_held_out import load_run_held_out
from vaezoo.cli.main import main
from vaezoo.errors import VaezooError
from vaezoo.training.config import TrainConfig
from vaezoo.training.trainer import train

TINY = {"encoder.block_out_channels": [4, 8, 8], "decoder.block_out_channels": [4, 8, 8],
        "encoder.norm_num_groups": 4, "decoder.norm_num_groups": 4, "objective.discriminator_channels": 4,
        "objective.perceptual_steps": 20}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("recon") / "run"
    config = TrainConfig(variant="kl-f4", dataset="digits", out=str(out), epochs=1, batch_size=64, limit=400,
                         overrides=TINY)
    return train(config, progress=False)


def test_ssim_window_fits_small_images():
    assert [ssim_window(s, s) for s in (5, 6, 8, 11, 12, 64)] == [5, 5, 7, 11, 11, 11]


def test_scores_match_the_metrics_applied_by_hand(run):
    model = vaezoo.load_model(run)
    data, held_out = load_run_held_out(run, model)
    result = reconstruction_scores(model, held_out, data, batch_size=100)
    x = torch.cat([held_out.read(np.arange(i, min(i + 100, len(held_out))), stored=True)[0]
                   for i in range(0, len(held_out), 100)])
    with torch.no_grad():
        recon = model.eval().reconstruct(x).clamp(0, 1)
    a, b = recon.double().numpy(), x.double().numpy()
    assert result["examples"] == len(x) == 297
    assert result["ssim_window"] == 7 and result["ms_ssim_scales"] == 1  # 8x8 digits
    assert result["psnr"] == pytest.approx(metrics.psnr(a, b).mean(), rel=1e-6)
    assert result["ssim"] == pytest.approx(metrics.ssim(a, b, window=7).mean(), rel=1e-6)
    assert result["ms_ssim"] == pytest.approx(metrics.ms_ssim(a, b, window=7).mean(), rel=1e-6)
    net = feature_network(data).net
    assert result["rfid"] == pytest.approx(metrics.fid(net.features(x).double().numpy(),
                                                       net.features(recon.float()).double().numpy()), rel=1e-6)
    # 3 latent channels on a 2x2 grid; their KL adds up to the analytic KL of the held-out ELBO
    assert len(result["kl_per_channel"]) == 3
    assert sum(result["kl_per_channel"]) == pytest.approx(elbo(model, held_out)["kl"], rel=1e-4)
    assert result["unavailable"] == {}


def test_eval_prints_and_writes_the_reconstruction_section(run, capsys):
    assert main(["eval", str(run), "--nll-samples", "2", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)["reconstruction"]
    assert "rfid" not in plain and not (run / "evaluation.json").exists()  # plain eval writes nothing
    assert main(["eval", str(run), "--nll-samples", "2", "--reconstruction"]) == 0
    text = capsys.readouterr().out
    assert f"PSNR {plain['psnr']:.2f} dB  SSIM {plain['ssim']:.4f}  MS-SSIM {plain['ms_ssim']:.4f}" in text
    assert "rFID" in text and "KL per latent channel" in text
    saved = json.loads((run / "evaluation.json").read_text())["reconstruction"]
    assert saved["psnr"] == pytest.approx(plain["psnr"]) and saved["epoch"] == 1 and "rfid" in saved
    picture = np.asarray(Image.open(run / "reconstructions_full.png"))
    assert picture.shape[0] < 40 and picture.shape[1] < 120  # 8 columns, 2 rows of 8x8 images: not enlarged
    report = (run / "report.html").read_text()
    assert 'class="full"' in report and "reconstructions_full.png" in report and "Reconstruction" in report
    assert "Perceptual distance in training: vaezoo FeatureNet" in report


def test_a_model_without_spatial_latents_or_images():
    flat = vaezoo.create_model("vae-conv", input_shape=(1, 8, 8), latent_dim=3)
    from vaezoo.analysis.reconstruction import kl_per_channel
    assert "not spatial" in kl_per_channel(flat, None)
    with pytest.raises(VaezooError, match=r"--reconstruction measures images: .*\(64,\)"):
        check_reconstruction(vaezoo.create_model("vae-mlp", input_shape=(64,), latent_dim=3))
