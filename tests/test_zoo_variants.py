"""Every variant of the zoo: it is listed, builds for several input shapes, and its loss falls on digits."""
from __future__ import annotations

import json
import math
import re

import pytest
import torch

import vaezoo
from vaezoo.analysis.evaluate import METRIC_NEEDS, elbo
from vaezoo.cli.main import main
from vaezoo.data.datasets import load_dataset
from vaezoo.data.held_out import held_out_set
from vaezoo.errors import BadOverrideError
from vaezoo.runs.directory import read_metrics

ZOO = [
    "vae-mlp", "vae-conv", "vae-resnet", "beta-vae-mlp", "beta-vae-conv", "beta-tcvae-conv", "info-vae-mlp",
    "wae-mmd-conv", "iwae-mlp", "vamp-vae-mlp", "mog-vae-mlp", "hvae-mlp", "cvae-mlp", "cvae-conv",
    "gaussian-vae-conv", "factor-vae-conv", "aae-conv", "vae-gan-conv", "svae-mlp", "gumbel-vae-mlp",
    "joint-vae-conv", "vq-vae-conv", "vq-vae-mlp", "iaf-vae-mlp", "dip-vae-conv", "dip-vae-ii-conv", "miwae-mlp",
    "piwae-mlp", "ciwae-mlp", "autoencoder-kl", "kl-f4", "kl-f8", "vq-f8", "ae-mlp", "ae-conv", "rae-conv",
    "rae-gp-conv", "planar-vae-mlp", "radial-vae-mlp", "hamiltonian-vae-mlp", "pvae-mlp", "beta-vae-capacity-conv",
    "joint-vae-capacity-conv", "swae-conv", "vae-msssim-conv", "dfc-vae-conv",
]
#: Variants that must name their paper in `vaezoo list`.
WITH_PAPER = [
    "vae-mlp", "beta-vae-mlp", "beta-tcvae-conv", "info-vae-mlp", "iwae-mlp", "vamp-vae-mlp", "hvae-mlp", "cvae-mlp",
    "factor-vae-conv", "aae-conv", "vae-gan-conv", "svae-mlp", "gumbel-vae-mlp", "joint-vae-conv", "vq-vae-conv",
    "vq-vae-mlp", "iaf-vae-mlp", "dip-vae-conv", "dip-vae-ii-conv", "miwae-mlp", "piwae-mlp", "ciwae-mlp",
    "autoencoder-kl", "kl-f4", "kl-f8", "vq-f8", "rae-conv", "rae-gp-conv", "planar-vae-mlp", "radial-vae-mlp",
    "hamiltonian-vae-mlp", "pvae-mlp", "beta-vae-capacity-conv", "joint-vae-capacity-conv", "swae-conv",
    "vae-msssim-conv", "dfc-vae-conv",
]

#: Small networks per encoder/decoder kind, so a short run is quick.
TINY = {
    "mlp": {"hidden_dims": [64]},
    "conv": {"channels": [8, 16], "hidden": 64},
    "resnet": {"channels": [8, 16], "blocks": 1, "hidden": 64},
    "ldm": {"block_out_channels": [8, 16], "norm_num_groups": 4},
}


def tiny(name: str) -> dict[str, dict[str, object]]:
    recipe = vaezoo.get_model_spec(name).recipe
    overrides: dict[str, dict[str, object]] = {
        "encoder": dict(TINY[recipe.encoder]),
        "decoder": {**TINY[recipe.decoder], **({"channels": [16, 8]} if recipe.decoder in ("conv", "resnet") else {})},
    }
    if recipe.prior == "vamp":
        overrides["prior"] = {"components": 20}
    if recipe.prior == "ladder":
        overrides["prior"] = {"hidden": 32}
    if recipe.posterior == "iaf":
        overrides["posterior"] = {"hidden_dims": [32], "context": 8}
    if recipe.objective in ("factor", "aae"):
        overrides["objective"] = {"hidden_dims": [32]}
    if recipe.objective == "vae-gan":
        overrides["objective"] = {"channels": [8], "hidden": 32}
    if recipe.objective == "ldm":  # its domain perceptual network trained briefly
        overrides["objective"] = {"discriminator_channels": 8, "perceptual_steps": 50}
    if recipe.objective == "dfc":  # famA branch: its feature network trained briefly
        overrides["objective"] = {"feature_steps": 50}
    return overrides


def labels_for(model: vaezoo.VAE, n: int) -> torch.Tensor | None:
    return torch.arange(n) % model.num_classes if model.conditional else None


def test_every_variant_is_listed_and_the_new_ones_with_their_paper():
    assert set(ZOO) <= set(vaezoo.list_models())
    assert set(vaezoo.list_models()) - set(ZOO) <= {"flow-vae-mlp"}  # a new built-in variant joins ZOO
    assert len(vaezoo.list_models()) >= 27
    for name in WITH_PAPER:
        assert re.search(r"\([^()]*(19|20)\d\d\)$", vaezoo.get_model_spec(name).description), name


def tiny_flags(name: str) -> list[str]:
    """tiny(name) as --set flags."""
    return [arg for kind, options in tiny(name).items() for key, value in options.items()
            for arg in ("--set", f"{kind}.{key}={json.dumps(value)}")]


@pytest.mark.parametrize("name", ZOO)
def test_every_variant_trains_then_evaluates_from_the_command_line(capsys, tmp_path, name):
    run = tmp_path / "run"
    code = main(["train", name, "--dataset", "digits", "--epochs", "1", "--out", str(run), "--quiet", *tiny_flags(name)])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["eval", str(run), "--nll-samples", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    model = vaezoo.load_model(run)
    for metric, feature in METRIC_NEEDS.items():
        reason = model.posterior.why_not(feature, model.prior)
        assert (metric in result) == (reason is None) and result["unavailable"].get(metric) == reason
    numbers = [result[k] for k in ("elbo", "recon", "kl", "nll", "bits_per_dim") if k in result]
    assert numbers and all(math.isfinite(v) for v in numbers)
    if "nll" in result:  # 5 importance samples bound log p(x) about as tightly as one, or more
        assert result["nll"] <= -result["elbo"] + 1.0
    assert main(["eval", str(run), "--nll-samples", "5"]) == 0
    table = capsys.readouterr().out
    assert all(f"not available: {reason}" in table for reason in result["unavailable"].values())


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_variant_builds_and_runs_for_the_shape(name, shape):
    torch.manual_seed(0)
    if name in ("kl-f8", "vq-f8") and shape[1] % 8:  # refused, naming the sizes that would work
        with pytest.raises(BadOverrideError, match=r"multiples of 8, got 28x28 \(height 28 -> 24 or 32; width"):
            vaezoo.create_model(name, input_shape=shape)
        return
    model = vaezoo.create_model(name, input_shape=shape)
    x = torch.rand(3, *shape).bernoulli()
    y = labels_for(model, 3)
    out = model(x, y)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert out.recon.shape == out.kl.shape == (3,)
    assert model.sample(2).shape == (2, *shape)
    assert model.reconstruct(x, y).shape == x.shape
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", ZOO)
def test_loss_falls_on_digits(name):
    torch.manual_seed(0)
    data = load_dataset("digits")
    model = vaezoo.create_model(name, input_shape=data.input_shape, **tiny(name))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for step in range(60):
        index = torch.randint(len(data.train_x), (64,), generator=generator)
        x = data.train_x[index]
        x = torch.bernoulli(x, generator=generator) if model.likelihood.binary_data else x
        model.objective.step = model.posterior.step = step
        loss = model(x, data.train_y[index] if model.conditional else None).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert math.isfinite(loss.item()), f"{name}: loss became {loss.item()} at step {step}"
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.05 * abs(first), f"{name}: loss went from {first:.2f} to {last:.2f}"


@pytest.mark.parametrize("name, extra", [("cvae-mlp", []), ("hvae-mlp", []), ("vamp-vae-mlp", ["prior.components=10"])])
def test_trains_from_the_command_line_and_reloads(capsys, tmp_path, name, extra):
    run = tmp_path / "run"
    sets = [arg for item in ["encoder.hidden_dims=[32]", "decoder.hidden_dims=[32]", *extra] for arg in ("--set", item)]
    code = main(["train", name, "--dataset", "digits", "--epochs", "1", "--out", str(run), "--quiet", *sets])
    assert code == 0, capsys.readouterr().err
    metrics = read_metrics(run)
    assert math.isfinite(metrics[-1]["val_elbo"]) and metrics[-1]["val_bits_per_dim"] > 0
    model = vaezoo.load_model(run)
    held_out = held_out_set(load_dataset("digits"), model)  # labelled for a conditional model
    assert elbo(model, held_out)["elbo"] == pytest.approx(metrics[-1]["val_elbo"], rel=1e-5)
