"""The training loop: exact resume after SIGKILL, damaged checkpoints, the non-finite guard, early stopping,
binarization modes and the run's pictures and report."""
from __future__ import annotations

import copy
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from grids import assert_report_shows, assert_shows, read_cells
from PIL import Image
from safetensors.torch import load_file

import vaezoo
from vaezoo.analysis import explore
from vaezoo.analysis.evaluate import elbo
from vaezoo.cli.main import main as cli_main
from vaezoo.data.datasets import load_dataset
from vaezoo.data.held_out import held_out_set
from vaezoo.data.splits import to_model_input
from vaezoo.runs.checkpoint import checkpoints
from vaezoo.runs.directory import read_metrics
from vaezoo.training.trainer import NonFiniteError, TrainConfig, Trainer, resume, train

SMALL = {"encoder.hidden_dims": [32], "decoder.hidden_dims": [32]}


def structured_images(path: Path, n: int = 3000) -> Path:
    """n 16x16 images of random bars: enough steps per epoch for a kill to land mid-epoch."""
    rng = np.random.default_rng(0)
    x = np.zeros((n, 16, 16), np.float32)
    rows, cols = rng.integers(0, 16, n), rng.integers(0, 16, n)
    x[np.arange(n), rows, :] = 1.0
    x[np.arange(n), :, cols] = 0.7
    np.save(path, x)
    return path


def cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vaezoo", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


KILL_ARGS = ["train", "vae-mlp", "--dataset", "arrays", "--epochs", "3", "--batch-size", "32", "--checkpoint-every", "7",
             "--quiet", "--seed", "3", "--set", "encoder.hidden_dims=[64]", "--set", "decoder.hidden_dims=[64]"]
#: the seeds of the kill steps tried; VAEZOO_KILL_SEED=N replays the one of a failure (its message names it)
KILL_SEEDS = [int(os.environ["VAEZOO_KILL_SEED"])] if os.environ.get("VAEZOO_KILL_SEED") else [1, 2]


@pytest.fixture(scope="module")
def never_killed(tmp_path_factory) -> tuple[Path, Path]:
    """(the data, the run trained on it without interruption)."""
    tmp = tmp_path_factory.mktemp("kill")
    data = structured_images(tmp / "bars.npy")
    whole = cli(*KILL_ARGS, "--data-dir", str(data), "--out", str(tmp / "whole"), env=quiet_threads())
    assert whole.wait(timeout=600) == 0, whole.stderr.read()
    return data, tmp / "whole"


def quiet_threads() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize(("kill_seed", "workers"), [(seed, None) for seed in KILL_SEEDS] + [(KILL_SEEDS[0], 2)])
def test_sigkill_mid_epoch_then_resume_ends_with_identical_weights(tmp_path, never_killed, kill_seed, workers):
    """Also with DataLoader workers reading the killed and the resumed run (the uninterrupted one read without)."""
    data, whole = never_killed
    args = [*KILL_ARGS, "--data-dir", str(data), "--out", str(tmp_path / "killed")]
    args += [] if workers is None else ["--workers", str(workers)]
    killed_run = tmp_path / "killed"
    target = random.Random(kill_seed).randrange(20, 140)  # a step, mostly mid-epoch (85 steps/epoch)
    victim = cli(*args, env=quiet_threads())
    deadline = time.monotonic() + 300
    while victim.poll() is None and time.monotonic() < deadline:
        found = checkpoints(killed_run)
        if found and int(found[-1].stem.split("-")[1]) >= target:
            victim.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    why = f"kill seed {kill_seed} (replay: VAEZOO_KILL_SEED={kill_seed}), kill at the first checkpoint >= step {target}"
    assert victim.wait(timeout=60) == -signal.SIGKILL, f"the run finished before it could be killed; {why}"
    landed = checkpoints(killed_run)[-1].stem
    why += f", resumed from {landed}"
    resumed = cli(*args, "--resume", env=quiet_threads())
    assert resumed.wait(timeout=600) == 0, f"{why}: {resumed.stderr.read()}"

    a, b = load_file(whole / "model.safetensors"), load_file(killed_run / "model.safetensors")
    assert a.keys() == b.keys(), why
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs; {why}"
    assert [m["epoch"] for m in read_metrics(killed_run)] == [1, 2, 3], why
    timeless = lambda run: [{k: v for k, v in m.items() if k != "seconds"} for m in read_metrics(run)]  # noqa: E731
    assert timeless(killed_run) == timeless(whole), why


def small_config(tmp_path, **changes) -> TrainConfig:
    base = dict(variant="vae-mlp", dataset="digits", out=str(tmp_path / "run"), epochs=2, batch_size=64,
                overrides=dict(SMALL))
    return TrainConfig(**{**base, **changes})


def test_truncated_checkpoint_falls_back_to_the_one_before(tmp_path):
    config = small_config(tmp_path, epochs=2, checkpoint_every=5)
    run = train(config, progress=False)
    newest = checkpoints(run)[-1]
    newest.write_bytes(newest.read_bytes()[:-64])
    with pytest.warns(UserWarning, match="damaged"):
        resume(str(run), progress=False, epochs=3)
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2, 3]


def poisoned(step_to_poison: int):
    """Trainer.batch, but with NaN in the batch of one step."""
    original = Trainer.batch

    def batch(self, index, loaded):
        x, y, rows = original(self, index, loaded)
        if self.state.step == step_to_poison:
            x = x.clone()
            x[0, 0, 0, 0] = float("nan")
        return x, y, rows

    return batch


def test_nan_batch_is_skipped_and_never_reaches_the_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Trainer, "batch", poisoned(3))
    run = train(small_config(tmp_path), progress=True)
    assert "step 3: the loss went non-finite (in recon" in capsys.readouterr().err
    assert read_metrics(run)[-1]["skipped_steps"] == 1
    for name, value in load_file(run / "model.safetensors").items():
        assert torch.isfinite(value).all(), name


def test_nan_batch_stops_when_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(Trainer, "batch", poisoned(2))
    with pytest.raises(NonFiniteError, match="step 2: the loss went non-finite"):
        train(small_config(tmp_path, on_nonfinite="stop"), progress=False)


@pytest.mark.parametrize("patience", [1, 2])
def test_early_stopping_stops_once_patience_epochs_did_not_improve(tmp_path, patience):
    # lr so small that the held-out ELBO soon stops improving: the run stops long before its 10 epochs
    run = train(small_config(tmp_path, epochs=10, lr=1e-9, patience=patience, clip_grad=1.0), progress=False)
    elbos = [m["val_elbo"] for m in read_metrics(run)]
    assert len(elbos) < 10, f"no early stop: {elbos}"
    best_at = max(range(len(elbos)), key=elbos.__getitem__)
    # it went on while an epoch within the last `patience` improved on all before, and stopped at the first
    # epoch that made `patience` in a row without
    assert len(elbos) - 1 - best_at == patience, f"patience {patience}, held-out ELBO per epoch {elbos}"
    assert all(e <= elbos[best_at] for e in elbos[best_at + 1 :]), elbos


@pytest.mark.parametrize("clip_grad", [None, 0.2, 1e6])
def test_clipping_scales_the_gradient_that_the_optimizer_steps_with(tmp_path, clip_grad):
    config = small_config(tmp_path, clip_grad=clip_grad)
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = vaezoo.create_model("vae-mlp", input_shape=data.input_shape, **SMALL)
    trainer = Trainer(config, data, model, tmp_path / "run", progress=False)
    x, y, rows = trainer.batch(0, next(trainer.batches.epoch(1, 0)))

    # the gradient of the batch's loss by hand, on a copy of the model with the same noise
    twin = copy.deepcopy(model)
    noise = torch.get_rng_state()
    twin(x).loss.backward()
    torch.set_rng_state(noise)
    raw = [p.grad.clone() for p in twin.parameters()]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in raw]))
    assert 0.2 * 10 < norm < 1e6 / 10, f"the gradient norm {norm} does not tell clipping from none here"
    expected = raw if clip_grad is None else [g * min(1.0, clip_grad / norm) for g in raw]

    stepped_with = []
    trainer.optimizer.register_step_pre_hook(
        lambda optimizer, args, kwargs: stepped_with.append([p.grad.clone() for p in model.parameters()])
    )
    before = [p.detach().clone() for p in model.parameters()]
    assert trainer.step(x, y, rows) is not None
    assert len(stepped_with) == 1
    for got, want in zip(stepped_with[0], expected, strict=True):
        torch.testing.assert_close(got, want)
    seen = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in stepped_with[0]]))
    assert seen <= (clip_grad or math.inf) * (1 + 1e-5), f"clip_grad {clip_grad}: the optimizer saw norm {seen}"
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "the step moved nothing"


def test_seed_repeats_a_run(tmp_path):
    first = train(small_config(tmp_path, out=str(tmp_path / "a"), seed=5), progress=False)
    second = train(small_config(tmp_path, out=str(tmp_path / "b"), seed=5), progress=False)
    assert read_metrics(first)[-1]["val_elbo"] == read_metrics(second)[-1]["val_elbo"]


def recording(seen: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]):
    """Trainer.batch, noting (epoch, the rows drawn, their images as given, the batch as trained on) of each."""
    original = Trainer.batch

    def batch(self, index, loaded):
        x, y, rows = original(self, index, loaded)
        seen.append((self.state.epoch, loaded.rows.clone(), to_model_input(loaded.images).clone(), x.clone()))
        return x, y, rows

    return batch


@pytest.mark.parametrize("flag, mode", [("static", "static"), ("dynamic", "dynamic"), ("none", "none"),
                                        ("auto", "dynamic")])  # auto: dynamic for vae-mlp's Bernoulli pixels
def test_binarize_decides_what_the_model_trains_and_is_judged_on(tmp_path, monkeypatch, capsys, flag, mode):
    seen = []
    monkeypatch.setattr(Trainer, "batch", recording(seen))
    run = tmp_path / "run"
    assert cli_main(["train", "vae-mlp", "--dataset", "digits", "--limit", "200", "--batch-size", "50",
                     "--epochs", "2", "--binarize", flag, "--out", str(run), "--quiet",
                     "--set", "encoder.hidden_dims=[32]", "--set", "decoder.hidden_dims=[32]"]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["binarize"] == flag

    trained = {1: {}, 2: {}}  # epoch -> {row: the image trained on}
    for epoch, ids, grey, x in seen:
        assert ((grey > 0) & (grey < 1)).any()  # the digits are grey: a binarization shows
        if mode == "none":
            assert torch.equal(x, grey), "--binarize none changed the images"
        else:
            assert set(x.unique().tolist()) <= {0.0, 1.0}, f"--binarize {flag} trained on grey pixels"
            # a Bernoulli draw of these very images: black stays black, white stays white, grey goes either way
            assert torch.equal(x[grey == 0], torch.zeros_like(x[grey == 0]))
            assert torch.equal(x[grey == 1], torch.ones_like(x[grey == 1]))
        trained[epoch].update(zip(ids.tolist(), x))
    assert sorted(trained[1]) == sorted(trained[2]) == list(range(200)), "an epoch missed rows"
    given, drawn = torch.cat([grey for _, _, grey, _ in seen]), torch.cat([x for _, _, _, x in seen])
    assert len(drawn) == 400  # two epochs of 200
    assert abs(drawn.mean() - given.mean()) < 0.02, "the pixels are not drawn with the images' grey levels"
    changed = sum(not torch.equal(trained[1][row], trained[2][row]) for row in range(200))
    if mode == "dynamic":
        assert changed > 150, f"--binarize {flag}: only {changed} of 200 rows drew a new binarization in epoch 2"
    else:
        assert changed == 0, f"--binarize {flag}: {changed} rows were trained on other pixels in epoch 2"

    # the held-out ELBO recorded is the one on the held-out images as the mode has them
    model, data = vaezoo.load_model(run), load_dataset("digits")
    judged = held_out_set(data, model, mode)
    other = held_out_set(data, model, "dynamic" if mode == "none" else "none")
    recorded = read_metrics(run)[-1]["val_elbo"]
    assert elbo(model, judged)["elbo"] == pytest.approx(recorded, rel=1e-5)
    assert elbo(model, other)["elbo"] != pytest.approx(recorded, rel=1e-4)  # equal in expectation: only the draw tells them apart


def test_a_run_leaves_pictures_curves_and_a_report(tmp_path):
    run = train(small_config(tmp_path, epochs=2), progress=False)
    model = vaezoo.load_model(run)
    x = load_dataset("digits").test_x[:32]  # the held-out inputs shown: 4 rows of 8, as they are (grey)
    with torch.no_grad():
        torch.manual_seed(0)  # as the run's pictures are drawn
        samples = model.sample(64)
        recon = model.reconstruct(x)
        walks = explore.interpolate(model, x[0:16:2], x[1:16:2], 10)
        sweeps = explore.traverse(model, x[:1], dims=list(range(16)))
    assert model.latent_dim == 20  # of which the traversal shows the first 16, a row of 9 steps each

    cells = read_cells(run / "samples.png", n=64, nrow=8)
    assert_shows(cells, samples, "samples.png")
    assert cells.min() < 0.2 and cells.max() > 0.8, "the samples are one flat grey"
    cells = read_cells(run / "reconstructions.png", n=64, nrow=8).view(4, 2, 8, 1, 8, 8)
    assert_shows(cells[:, 0].reshape(32, 1, 8, 8), x, "reconstructions.png, the input rows")
    assert_shows(cells[:, 1].reshape(32, 1, 8, 8), recon, "reconstructions.png, the reconstruction rows")
    cells = read_cells(run / "interpolation.png", n=80, nrow=10)
    assert_shows(cells, walks, "interpolation.png")
    assert_shows(cells.view(8, 10, 1, 8, 8)[:, 0], recon[0:16:2], "interpolation.png, the first column")
    assert_shows(cells.view(8, 10, 1, 8, 8)[:, -1], recon[1:16:2], "interpolation.png, the last column")
    assert_shows(read_cells(run / "traversal.png", n=9 * 16, nrow=9), sweeps, "traversal.png")
    with Image.open(run / "curves.png") as curves:
        assert curves.size == (600, 350)  # 6 x 3.5 inches at 100 dpi
        assert len(curves.convert("RGB").getcolors(maxcolors=1 << 16)) > 10, "the curves are blank"

    assert_report_shows(run, ["curves.png", "samples.png", "reconstructions.png", "interpolation.png",
                              "traversal.png"], read_metrics(run))
