"""Data-parallel training under torchrun (gloo on the CPU): two processes train what one process trains on
the same global batches, only rank 0 writes, and a failure on rank 0 stops every rank."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vaezoo.runs.directory import read_metrics
from vaezoo.runtime.distributed import World

TRAIN = ["--dataset", "digits", "--epochs", "2", "--batch-size", "100", "--quiet"]


def run_vaezoo(out: Path, processes: int, *extra: str, variant: str = "vae-mlp") -> subprocess.CompletedProcess:
    """`vaezoo train` in one process, or under torchrun in `processes`. --standalone binds its rendezvous store to
    a port the system picks (localhost:0) and its workers meet on that same store, so runs started side by side
    (two test processes, or another job on the machine) never contend for a port; the environment must not turn
    that sharing off (torchrun would then pick a free port and bind it again later, a race)."""
    launcher = [] if processes == 1 else ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", None)
    return subprocess.run(
        [sys.executable, *launcher, "-m", "vaezoo", "train", variant, *TRAIN, "--out", str(out), *extra],
        capture_output=True, text=True, timeout=600, env=env,
    )


def assert_same_training(a: Path, b: Path) -> None:
    """The runs in a and b hold the same weights and metrics, up to float rounding."""
    weights_a, weights_b = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        torch.testing.assert_close(weights_b[name], weights_a[name], rtol=1e-4, atol=1e-5, msg=name)
    for ma, mb in zip(read_metrics(a), read_metrics(b), strict=True):
        for key in ("train_loss", "val_elbo", "val_recon", "val_kl"):
            assert mb[key] == pytest.approx(ma[key], rel=1e-5, abs=1e-6), key


@pytest.fixture(scope="module")
def one_and_two(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ddp")
    for name, processes in (("one", 1), ("two", 2)):
        result = run_vaezoo(root / name, processes)
        assert result.returncode == 0, result.stderr[-3000:]
    return root / "one", root / "two"


def test_two_processes_train_what_one_process_trains(one_and_two):
    assert_same_training(*one_and_two)


def test_two_processes_reading_through_workers_train_what_one_process_trains(one_and_two, tmp_path):
    """Each rank's DataLoader worker reads only that rank's shard of every global batch (EpochBatches)."""
    run = tmp_path / "workers"
    result = run_vaezoo(run, 2, "--workers", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_training(one_and_two[0], run)


def test_a_two_process_checkpoint_resumes_in_one_process(one_and_two, tmp_path):
    run = tmp_path / "switch"
    first = run_vaezoo(run, 2, "--epochs", "1")  # the last --epochs wins: one epoch on two processes
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(read_metrics(run)) == 1
    resumed = run_vaezoo(run, 1, "--resume")  # then the second epoch on one process
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(read_metrics(run)) == 2
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_training(one_and_two[0], run)


@pytest.mark.parametrize("variant", ["vq-vae-mlp", "vq-vae-conv"])
def test_two_processes_train_a_vq_vae_as_one_process_does(tmp_path, variant):
    """Each rank counts the codes of its shards for the refitted prior, and (vq-vae-conv) takes the codebook's
    moving-average step on the counts and sums of every rank: both are summed over the ranks."""
    for name, processes in (("one", 1), ("two", 2)):
        result = run_vaezoo(tmp_path / name, processes, "--epochs", "1", variant=variant)
        assert result.returncode == 0, result.stderr[-3000:]
    assert_same_training(tmp_path / "one", tmp_path / "two")
    logits = load_file(tmp_path / "two" / "model.safetensors")["prior.logits"]
    assert logits.shape == (8, 128) and logits.std() > 0.1  # refitted, not uniform


def test_rank_zero_alone_writes_the_run(one_and_two):
    one, two = one_and_two
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    assert len(read_metrics(two)) == 2  # one line per epoch, not one per rank
    assert len(list((two / "checkpoints").iterdir())) == len(list((one / "checkpoints").iterdir()))


def test_a_failure_on_rank_zero_stops_every_rank(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "config.json").write_text('{"a user\'s": "run"}')
    result = run_vaezoo(out, 2)
    assert result.returncode != 0
    assert "already holds a run" in result.stderr, result.stderr[-2000:]
    assert (out / "config.json").read_text() == '{"a user\'s": "run"}'
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]


@pytest.mark.parametrize("rows, size", [(100, 2), (7, 3), (1, 2), (0, 4)])
def test_shards_cover_a_batch_once_and_evenly(rows, size):
    shards = [World(rank=r, size=size).shard(rows) for r in range(size)]
    assert shards[0][0] == 0 and shards[-1][1] == rows
    assert all(a[1] == b[0] for a, b in zip(shards, shards[1:]))
    lengths = [stop - start for start, stop in shards]
    assert max(lengths) - min(lengths) <= 1


def test_gradients_are_summed_and_missing_ones_stay_missing(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        used, unused = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
        (used * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
        World(grouped=True).sum_gradients([used, unused])
        assert torch.equal(used.grad, torch.tensor([1.0, 2.0, 3.0])) and unused.grad is None
        assert World(grouped=True).sum(torch.tensor([2.0])).item() == 2.0
    finally:
        dist.destroy_process_group()
