"""Checkpoints: round trip without pickle, atomic replacement, and damaged files detected."""
from __future__ import annotations

import pytest
import torch

from vaezoo.errors import RunDirError
from vaezoo.runs.checkpoint import (
    TrainingState,
    checkpoints,
    decode,
    encode,
    load_latest_checkpoint,
    save_checkpoint,
)


def make_state(seed: int = 0) -> tuple[TrainingState, torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = TrainingState(
        model=model.state_dict(), optimizer=optimizer.state_dict(), rng={"cpu": torch.get_rng_state()},
        progress={"epoch": 2, "batch": 7, "loss_sum": 1.5}, tensors={"order": torch.randperm(10)},
    )
    return state, model, optimizer


def test_round_trip_restores_model_optimizer_rng_and_progress():
    state, model, optimizer = make_state()
    restored = decode(encode(state))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(restored.model[key], value)
    fresh = torch.optim.Adam(model.parameters(), lr=0.5)
    fresh.load_state_dict(restored.optimizer)
    assert fresh.param_groups[0]["lr"] == 0.01
    torch.testing.assert_close(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(restored.rng["cpu"], state.rng["cpu"])
    assert restored.progress == state.progress
    assert torch.equal(restored.tensors["order"], state.tensors["order"])


def test_flipped_byte_is_caught_by_the_checksum():
    state, _, _ = make_state()
    data = bytearray(encode(state))
    data[-3] ^= 0xFF
    with pytest.raises(ValueError, match="checksum"):
        decode(bytes(data))


def test_only_the_newest_two_are_kept(tmp_path):
    state, _, _ = make_state()
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, state)
    assert [p.name for p in checkpoints(tmp_path)] == ["step-000000002.safetensors", "step-000000003.safetensors"]
    assert not list((tmp_path / "checkpoints").glob(".*tmp"))


def test_truncated_newest_falls_back_to_the_previous(tmp_path):
    old, _, _ = make_state(0)
    new, _, _ = make_state(1)
    save_checkpoint(tmp_path, 1, old)
    newest = save_checkpoint(tmp_path, 2, new)
    newest.write_bytes(newest.read_bytes()[:-100])
    with pytest.warns(UserWarning, match="damaged"):
        restored = load_latest_checkpoint(tmp_path)
    torch.testing.assert_close(restored.model["weight"], old.model["weight"])


def test_nothing_to_resume_is_a_clear_error(tmp_path):
    with pytest.raises(RunDirError, match="no checkpoints"):
        load_latest_checkpoint(tmp_path)
    state, _, _ = make_state()
    save_checkpoint(tmp_path, 1, state).write_bytes(b"junk")
    with pytest.warns(UserWarning), pytest.raises(RunDirError, match="every checkpoint"):
        load_latest_checkpoint(tmp_path)
