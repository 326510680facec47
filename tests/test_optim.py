"""Optimizers and learning-rate schedules by name: their factors, their options, and exact resumes."""
from __future__ import annotations

import json
import math

import pytest
import torch

from vaezoo.errors import VaezooError
from vaezoo.training.config import TrainConfig
from vaezoo.training.optim import Schedule, build_optimizer
from vaezoo.training.trainer import Trainer, resume, train


def factors(name: str, options: dict | None = None, warmup: int = 0, steps_per_epoch: int = 10, epochs: int = 3):
    schedule = Schedule(name, options or {}, warmup, steps_per_epoch, epochs)
    return [schedule.factor(step, 1.0) for step in range(steps_per_epoch * epochs)]


def test_warm_up_ramps_linearly_then_hands_over():
    f = factors("constant", warmup=4)
    assert f[:5] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])


def test_cosine_runs_from_one_to_its_floor_after_warm_up():
    f = factors("cosine", {"min_factor": 0.1}, warmup=5)
    assert f[4] == pytest.approx(1.0)  # the end of warm-up: the top of the cosine
    assert f[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 24 / 25)))
    assert all(a >= b for a, b in zip(f[5:], f[6:]))


def test_step_decays_every_k_epochs():
    f = factors("step", {"every": 2, "gamma": 0.5}, steps_per_epoch=3, epochs=5)
    assert f == pytest.approx([1.0] * 6 + [0.5] * 6 + [0.25] * 3)


def test_plateau_cuts_the_rate_after_patience_epochs_without_a_better_elbo():
    schedule = Schedule("plateau", {"patience": 2, "factor": 0.5}, 0, 10, 9)
    best, bad, scale = -math.inf, 0, 1.0
    scales = []
    for elbo in (-10.0, -9.0, -9.5, -9.2, -9.1, -8.0, -8.5, -8.4):
        best, bad, scale = schedule.after_epoch(elbo, best, bad, scale)
        scales.append(scale)
    assert scales == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]
    assert schedule.factor(0, scale) == 0.25


@pytest.mark.parametrize(("name", "options", "message"), [
    ("cosine", {"gamma": 0.1}, "the cosine schedule has no option 'gamma'; its options: min_factor"),
    ("step", {"every": 0}, "every must be a positive whole number"),
    ("plateau", {"factor": -1}, "factor must be a non-negative number"),
    ("linear", {}, "unknown schedule 'linear'"),
])
def test_bad_schedule_options_are_named(name, options, message):
    with pytest.raises(VaezooError, match=message):
        Schedule(name, options, 0, 10, 2)


def test_optimizers_by_name_take_their_options_on_their_fast_paths():
    params = [torch.nn.Parameter(torch.zeros(3))]
    adamw = build_optimizer("adamw", [{"params": params}], 0.01, {"weight_decay": 0.1, "betas": [0.8, 0.9]})
    assert isinstance(adamw, torch.optim.AdamW)
    group = adamw.param_groups[0]
    assert group["weight_decay"] == 0.1 and tuple(group["betas"]) == (0.8, 0.9) and group["fused"]
    sgd = build_optimizer("sgd", [{"params": params}], 0.1, {"momentum": 0.9})
    assert sgd.param_groups[0]["momentum"] == 0.9 and sgd.param_groups[0]["foreach"]
    with pytest.raises(VaezooError, match="sgd has no option 'betas'"):
        build_optimizer("sgd", [{"params": params}], 0.1, {"betas": [0.9, 0.99]})


def config(out, **changes) -> TrainConfig:
    base = dict(variant="vae-mlp", dataset="digits", out=str(out), epochs=3, batch_size=64, limit=320,
                overrides={"encoder.hidden_dims": [16], "decoder.hidden_dims": [16]}, schedule="cosine",
                warmup_steps=4, optimizer="adamw", optimizer_options={"weight_decay": 0.01})
    return TrainConfig(**{**base, **changes})


def read(run) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def interrupted_after_epoch(monkeypatch, epoch: int, cfg: TrainConfig) -> None:
    """Train `cfg` but stop the process's training (as a kill would) once epoch `epoch` is checkpointed."""
    real = Trainer.end_epoch

    def end_epoch(self):
        going_on = real(self)
        if self.state.epoch > epoch:
            raise KeyboardInterrupt
        return going_on

    monkeypatch.setattr(Trainer, "end_epoch", end_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    monkeypatch.setattr(Trainer, "end_epoch", real)


@pytest.mark.parametrize("changes", [
    {},  # cosine after warm-up, AdamW with weight decay
    {"schedule": "plateau", "schedule_options": {"patience": 1, "factor": 0.5}, "warmup_steps": 0, "epochs": 4},
    {"schedule": "step", "schedule_options": {"every": 1, "gamma": 0.5}, "optimizer": "sgd",
     "optimizer_options": {"momentum": 0.9}},
], ids=["cosine", "plateau", "step-sgd"])
def test_a_resumed_scheduled_run_is_the_run_that_was_not_interrupted(tmp_path, monkeypatch, changes):
    train(config(tmp_path / "straight", **changes), progress=False)
    interrupted_after_epoch(monkeypatch, 1, config(tmp_path / "stopped", **changes))
    assert len(read(tmp_path / "stopped")) == 1
    resume(str(tmp_path / "stopped"), progress=False)
    straight = read(tmp_path / "straight")
    assert read(tmp_path / "stopped") == straight
    if changes.get("schedule") != "plateau":  # (plateau's cuts depend on the ELBO: unit-tested above)
        assert len({m["lr"] for m in straight}) == len(straight)  # the rate did change from epoch to epoch
