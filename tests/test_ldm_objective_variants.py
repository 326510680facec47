"""The latent-diffusion variants kl-f4, kl-f8 and vq-f8: listed with their papers, trained through vaezoo.fit and
from the command line (sample, reconstruct, reload), and resumed after SIGKILL to the very weights of an
uninterrupted run, with the patch discriminator stepping from its start step on."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import vaezoo
from vaezoo.runs.checkpoint import checkpoints
from vaezoo.runs.directory import read_metrics
from vaezoo.training.config import TrainConfig
from vaezoo.training.trainer import resume, train

VARIANTS = ["kl-f4", "kl-f8", "vq-f8"]
STAGES = {"kl-f4": 3, "kl-f8": 4, "vq-f8": 4}


def tiny(name: str) -> dict[str, object]:
    """The variant's stages with 4 channels each, a 4-channel discriminator and a briefly trained perceptual
    network."""
    channels = [4] * STAGES[name]
    return {"encoder.block_out_channels": channels, "decoder.block_out_channels": channels,
            "encoder.norm_num_groups": 2, "decoder.norm_num_groups": 2, "objective.discriminator_channels": 4,
            "objective.perceptual_steps": 10, "objective.discriminator_start": 3}


def flags(name: str) -> list[str]:
    return [a for k, v in tiny(name).items() for a in ("--set", f"{k}={json.dumps(v)}")]


def test_listed_with_their_papers():
    for name in VARIANTS:
        spec = vaezoo.get_model_spec(name)
        assert "Rombach et al., 2022" in spec.description and spec.recipe.objective == "ldm", name
        assert spec.recipe.encoder == spec.recipe.decoder == "ldm"
    assert "Esser et al., 2021" in vaezoo.get_model_spec("vq-f8").description
    assert vaezoo.get_model_spec("vq-f8").recipe.posterior == "vq"
    assert vaezoo.list_models(tags=["ldm"]) == ["autoencoder-kl", "kl-f4", "kl-f8", "vq-f8"]


@pytest.mark.parametrize("name", VARIANTS)
def test_trains_through_fit_and_reloads(tmp_path, name):
    torch.manual_seed(0)
    model = vaezoo.create_model(name, input_shape=(3, 16, 16), **tiny(name))
    grid = model.encoder.latent_grid
    assert grid == ((3, 4, 4) if name == "kl-f4" else (4, 2, 2)) and model.latent_dim == grid[0] * grid[1] * grid[2]
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(24, 3, 16, 16, generator=g), torch.arange(24) % 3
    discriminator = [p.detach().clone() for p in model.objective.adversary().parameters()]
    run = vaezoo.fit(model, (x[:16], y[:16]), (x[16:], y[16:]), epochs=2, batch_size=4, out=tmp_path / "run")
    assert [m["epoch"] for m in run.metrics] == [1, 2]
    assert all(torch.isfinite(torch.tensor(m["val_loss"])) for m in run.metrics)
    assert any(not torch.equal(a, p) for a, p in zip(discriminator, model.objective.adversary().parameters()))
    loaded = vaezoo.load_model(run.dir)
    model.eval()
    torch.testing.assert_close(loaded.posterior_mean(x[:4]), model.posterior_mean(x[:4]))
    assert loaded.sample(2).shape == (2, 3, 16, 16) and loaded.reconstruct(x[:2]).shape == (2, 3, 16, 16)


@pytest.mark.parametrize("name", VARIANTS)
def test_trains_evaluates_samples_and_reconstructs_from_the_command_line(tmp_path, name, monkeypatch, capsys):
    from vaezoo.cli.main import main

    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(["train", name, "--dataset", "digits", "--limit", "200", "--epochs", "1", "--batch-size", "50",
                 "--quiet", "--out", str(run), *flags(name)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--nll-samples", "2", "--nll-examples", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 < result["reconstruction"]["ssim"] <= 1 and result["reconstruction"]["psnr"] > 0
    assert ("kl_per_channel" in result["reconstruction"]) == (name != "vq-f8")
    for command in (["sample", "--n", "4"], ["reconstruct"]):
        out = tmp_path / f"{command[0]}.png"
        assert main([command[0], str(run), "--out", str(out), *command[1:]]) == 0
        assert Image.open(out).size[0] > 0
    said = json.loads((run / "config.json").read_text())["objective"]["perceptual"]
    assert said.startswith("vaezoo FeatureNet")


def config(name: str, out: Path, epochs: int = 1) -> TrainConfig:
    """An epoch of 20 steps on digits, checkpointed every 3 steps."""
    return TrainConfig(variant=name, dataset="digits", out=str(out), limit=600, epochs=epochs, batch_size=30,
                       checkpoint_every=3, seed=5, overrides=tiny(name))


@pytest.mark.parametrize("name", VARIANTS)
def test_sigkill_then_resume_ends_with_identical_weights(tmp_path, name, monkeypatch):
    """Killed by SIGKILL at a checkpoint picked at random (after the discriminator started) and resumed: the
    same weights and metrics as a run never killed. The uninterrupted run and the resume run in this process
    (one thread, as the killed one), to keep the test short."""
    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path / "cache"))
    train(config(name, tmp_path / "whole"), progress=False)
    target = random.Random(name).randrange(4, 19)
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    victim = subprocess.Popen(
        [sys.executable, "-m", "vaezoo", "train", name, "--dataset", "digits", "--limit", "600", "--epochs", "1",
         "--batch-size", "30", "--checkpoint-every", "3", "--seed", "5", "--quiet", "--out", str(killed),
         *flags(name)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while victim.poll() is None and time.monotonic() < deadline:
        found = checkpoints(killed)
        if found and int(found[-1].stem.split("-")[1]) >= target:
            victim.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    assert victim.wait(timeout=60) == -signal.SIGKILL, f"the run finished before it was killed ({victim.stderr.read()})"
    resume(str(killed), progress=False)
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(killed / "model.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("objective.discriminator") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs (killed at step >= {target})"
    timeless = lambda run: [{k: v for k, v in m.items() if k != "seconds"} for m in read_metrics(run)]  # noqa: E731
    assert timeless(killed) == timeless(tmp_path / "whole")
