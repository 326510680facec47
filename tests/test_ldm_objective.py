"""The latent-diffusion autoencoder objective: its loss against a direct computation, the adaptive weight as the
ratio of gradient norms, the discriminator's start step through the trainer's adversary mechanism, the hinge
losses' closed forms, and which perceptual network runs (LPIPS behind its guard, else vaezoo's domain features,
said in config.json), with exact resume."""
from __future__ import annotations

import json
import sys

import pytest
import torch
from safetensors.torch import load_file

import vaezoo
from vaezoo.components.objectives import perceptual as perceptual_module
from vaezoo.components.objectives.ldm import last_layer
from vaezoo.components.objectives.patch_discriminator import (
    PatchDiscriminator, hinge_discriminator_loss, hinge_generator_loss,
)
from vaezoo.components.objectives.perceptual import PerceptualDistance, lpips_missing
from vaezoo.errors import DataError
from vaezoo.training.config import TrainConfig
from vaezoo.training.trainer import resume, train

SHAPE = (3, 16, 16)
SMALL = {"encoder.channels": [4], "encoder.hidden": 16, "decoder.channels": [4], "decoder.hidden": 16,
         "likelihood": "gaussian", "objective": "ldm", "objective.discriminator_channels": 4,
         "objective.discriminator_layers": 2, "objective.perceptual_steps": 5}


def model(**options):
    torch.manual_seed(0)
    return vaezoo.create_model("vae-conv", input_shape=SHAPE, latent_dim=4,
                               **{**SMALL, **{f"objective.{k}": v for k, v in options.items()}})


def labelled(n: int = 24):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, *SHAPE, generator=g), torch.arange(n) % 3


def test_hinge_losses_have_their_closed_forms():
    assert float(hinge_discriminator_loss(torch.full((2, 1, 3, 3), 2.0), torch.full((2, 1, 3, 3), -2.0))) == 0.0
    assert float(hinge_discriminator_loss(torch.zeros(2, 1, 3, 3), torch.zeros(2, 1, 3, 3))) == 1.0
    # real at 0.5 costs 0.5 each, fake at 0 costs 1: (0.5 + 1) / 2
    assert float(hinge_discriminator_loss(torch.full((1, 1, 2, 2), 0.5), torch.zeros(1, 1, 2, 2))) == 0.75
    fake = torch.tensor([[[[1.0, 3.0]]], [[[-2.0, 0.0]]]])
    torch.testing.assert_close(hinge_generator_loss(fake), torch.tensor([-2.0, 1.0]))


def test_patch_discriminator_gives_a_logit_per_patch_and_refuses_small_images():
    d = PatchDiscriminator((3, 32, 32), channels=4, layers=3)
    assert d(torch.rand(2, 3, 32, 32)).shape == (2, 1, 2, 2)  # 32 -> 16 -> 8 -> 4 -> 3 -> 2
    assert PatchDiscriminator((1, 24, 24), 4, 3)(torch.rand(1, 1, 24, 24)).shape == (1, 1, 1, 1)
    with pytest.raises(ValueError, match="at least 24 pixels a side, got 23x23: lower discriminator_layers"):
        PatchDiscriminator((1, 23, 23), 4, 3)
    # unless given, as many layers as fit (up to 3): every image of 6 pixels a side or more has logits
    for side, layers in ((6, 1), (11, 1), (12, 2), (23, 2), (24, 3), (64, 3)):
        d = PatchDiscriminator((1, side, side), 4)
        assert sum(isinstance(m, torch.nn.GroupNorm) for m in d.modules()) == layers, side
        assert d(torch.rand(1, 1, side, side)).numel() >= 1


def test_loss_is_l1_plus_perceptual_plus_kl_before_the_discriminator_starts():
    m = model(discriminator_start=5, kl_weight=0.01, perceptual_weight=0.5)
    x, _ = labelled(4)
    m.objective.step = 4
    assert m.objective.adversary_steps == 0
    torch.manual_seed(3)
    out = m(x)
    torch.manual_seed(3)
    q = m.encode(x)
    z = m.posterior.draw(q, m.prior).z
    x_hat = m.decode(z)
    pixels = 3 * 16 * 16
    # the L1 of LDM's LPIPSWithDiscriminator: on images in [-1, 1], summed over pixels, averaged over the batch
    l1 = ((2 * x_hat - 1) - (2 * x - 1)).abs().flatten(1).sum(1)
    expected = (l1 + 0.5 * pixels * m.objective.perceptual(x_hat, x)).mean() + 0.01 * out.kl.mean()
    torch.testing.assert_close(out.loss, expected)
    assert torch.equal(out.terms["generator"], torch.zeros(4))
    m.objective.step = 5
    assert m.objective.adversary_steps == 1
    assert m(x).terms["generator"].abs().sum() > 0


def test_l2_is_squared_on_the_papers_pixel_scale():
    m = model(reconstruction="l2")
    x_hat, x = torch.full((1, *SHAPE), 0.75), torch.full((1, *SHAPE), 0.25)
    # 0.75 and 0.25 are 0.5 and -0.5 in [-1, 1]: a squared distance of 1 per pixel
    torch.testing.assert_close(m.objective.distance(x_hat, x), torch.tensor([3.0 * 16 * 16]))


def test_adaptive_weight_balances_the_gradient_norms_at_the_decoders_last_layer():
    """With the adaptive weight, the GAN term pulls on the last layer adversarial_weight times as hard as the
    reconstruction terms do (up to the 1e-4 in the denominator), whatever the discriminator's scale; at the
    freshly initialized discriminator's tiny gradients the weight stops at its clamp, 1e4."""
    for scale in (1.0, 300.0, 3000.0):
        m = model(adversarial_weight=0.5, kl_weight=0.0)
        with torch.no_grad():
            m.objective.discriminator.net[-1].weight.mul_(scale)
        x, _ = labelled(4)
        out = m(x)
        layer = last_layer(m.decoder)
        assert layer is m.decoder.convs[-1].weight
        nll = (out.terms["pixel_distance"] + 3 * 16 * 16 * out.terms["perceptual"]).mean()
        (g_rec,) = torch.autograd.grad(nll, layer, retain_graph=True)
        (g_all,) = torch.autograd.grad(out.loss, layer, retain_graph=True)
        g_gan = g_all - g_rec
        weight = float(out.terms["adaptive_weight"])
        unweighted = g_gan.norm() / (0.5 * weight)  # the generator loss's own gradient norm
        assert weight == pytest.approx(min(float(g_rec.norm() / (unweighted + 1e-4)), 1e4), rel=1e-4), scale
        if scale == 1.0:
            assert weight == 1e4
        else:
            assert float(g_gan.norm() / g_rec.norm()) == pytest.approx(0.5, rel=1e-3), scale
    fixed = model(adaptive=False, adversarial_weight=0.5)
    out = fixed(x)
    assert float(out.terms["adaptive_weight"]) == 1.0


def test_outside_autograd_the_last_adaptive_weight_is_used():
    m = model()
    x, _ = labelled(4)
    weight = m(x).terms["adaptive_weight"]
    with torch.no_grad():
        assert torch.equal(m(x).terms["adaptive_weight"], weight)


def test_the_trainer_steps_the_discriminator_only_from_its_start_step():
    x, y = labelled(16)
    never = model(discriminator_start=10**6)
    before = [p.detach().clone() for p in never.objective.adversary().parameters()]
    vaezoo.fit(never, (x, y), epochs=1, batch_size=4)
    assert all(torch.equal(a, p) for a, p in zip(before, never.objective.adversary().parameters()))
    started = model(discriminator_start=2)
    before = [p.detach().clone() for p in started.objective.adversary().parameters()]
    vaezoo.fit(started, (x, y), epochs=1, batch_size=4)
    assert any(not torch.equal(a, p) for a, p in zip(before, started.objective.adversary().parameters()))


def test_lpips_is_not_here_and_auto_falls_back_to_domain_features_said_in_the_config(tmp_path):
    assert lpips_missing() == "the 'lpips' package is not installed"
    with pytest.raises(ValueError, match="perceptual='lpips' cannot run here: the 'lpips' package is not installed"):
        PerceptualDistance(SHAPE, "lpips")
    m = model()
    assert m.objective.perceptual.source == "domain"
    x, y = labelled()
    vaezoo.fit(m, (x[:16], y[:16]), (x[16:], y[16:]), epochs=1, batch_size=8, out=tmp_path / "run")
    said = json.loads((tmp_path / "run" / "config.json").read_text())["objective"]
    assert said["perceptual"].startswith("vaezoo FeatureNet trained on this dataset's class labels")
    assert "LPIPS was not used because the 'lpips' package is not installed" in said["perceptual"]
    assert said["perceptual_network"]["training_steps"] == 5
    assert "vaezoo FeatureNet" in (tmp_path / "run" / "report.html").read_text()
    # the trained network's convolutions are the ones the distance runs on, and they are saved with the model
    saved = load_file(tmp_path / "run" / "model.safetensors")
    assert torch.equal(saved["objective.perceptual.domain.convs.0.weight"],
                       m.objective.perceptual.domain.convs[0].weight.detach().cpu())
    assert not torch.equal(saved["objective.perceptual.domain.convs.0.weight"],
                           model().objective.perceptual.domain.convs[0].weight.detach())


def test_domain_features_need_class_labels():
    with pytest.raises(DataError, match="give labelled data .* or set objective.perceptual=none"):
        vaezoo.fit(model(), labelled()[0], epochs=1, batch_size=8)
    vaezoo.fit(model(perceptual="none"), labelled()[0], epochs=1, batch_size=8)  # no network: no labels needed


def test_the_lpips_path_runs_when_its_package_and_weights_are_present(tmp_path, monkeypatch):
    """A stand-in `lpips` package and backbone file: the guard finds them, the distance runs the package's
    network on [-1, 1] inputs (grey images as RGB), and its weights stay out of the model's state."""
    site = tmp_path / "site"
    (site / "lpips" / "weights" / "v0.1").mkdir(parents=True)
    (site / "lpips" / "weights" / "v0.1" / "alex.pth").write_bytes(b"")
    (site / "torchvision").mkdir()
    (site / "torchvision" / "__init__.py").write_text("")
    (site / "lpips" / "__init__.py").write_text(
        "import torch\n"
        "class LPIPS(torch.nn.Module):\n"
        "    seen = []\n"
        "    def __init__(self, net, verbose):\n"
        "        super().__init__(); self.w = torch.nn.Parameter(torch.ones(1))\n"
        "    def forward(self, a, b):\n"
        "        LPIPS.seen.append((a.shape, float(a.min()), float(a.max())))\n"
        "        return ((a - b) ** 2).mean((1, 2, 3), keepdim=True) * self.w\n")
    monkeypatch.syspath_prepend(str(site))
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    assert lpips_missing() == f"the alex backbone's ImageNet weights are not in {hub / 'checkpoints'}"
    (hub / "checkpoints").mkdir(parents=True)
    (hub / "checkpoints" / "alexnet-owt-7be5be79.pth").write_bytes(b"")
    assert lpips_missing() is None
    try:
        d = PerceptualDistance((1, 8, 8), "auto")
        assert d.source == "lpips" and d.describe()["perceptual"].startswith("LPIPS v0.1 (alex")
        assert not list(d.state_dict())
        x, t = torch.zeros(2, 1, 8, 8), torch.ones(2, 1, 8, 8)
        torch.testing.assert_close(d(x, t), torch.full((2,), 4.0))
        shape, low, high = sys.modules["lpips"].LPIPS.seen[-1]
        assert tuple(shape) == (2, 3, 8, 8) and (low, high) == (-1.0, -1.0)
    finally:
        for name in ("lpips", "torchvision"):
            sys.modules.pop(name, None)
    assert perceptual_module.CHOICES == ("auto", "lpips", "domain", "none")


def test_resume_continues_exactly(tmp_path, monkeypatch):
    """Two epochs straight, and one epoch then a resume to two: the same weights, discriminator and perceptual
    network included (the discriminator starts within the first epoch). The first run trains the feature
    network and the others find it cached: neither way may change what training draws."""
    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path / "cache"))
    def config(out: str, epochs: int) -> TrainConfig:
        overrides = {**{k: v for k, v in SMALL.items() if k != "likelihood"}, "objective.discriminator_layers": 1,
                     "objective.discriminator_start": 1}
        return TrainConfig(variant="vae-conv", dataset="digits", out=str(tmp_path / out), epochs=epochs,
                           batch_size=256, limit=600, overrides=overrides, latent_dim=4, checkpoint_every=2)
    train(config("whole", 2), progress=False)
    train(config("cut", 1), progress=False)
    resume(str(tmp_path / "cut"), progress=False, epochs=2)
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys() and any("discriminator" in k for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
