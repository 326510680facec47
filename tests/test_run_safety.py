"""Fault injection on run directories: concurrent writers, leftovers, tampered and hostile checkpoints, NaN
weights, symbolic links, small data sets, runs killed early or made read-only. Every test checks the files."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from grids import assert_shows, read_cells
from PIL import Image
from safetensors.torch import load_file, save

import vaezoo.atomic
from vaezoo.data.datasets import load_dataset
from vaezoo.errors import NonFiniteError, RunDirError, VaezooError
from vaezoo.runs import checkpoint as ckpt
from vaezoo.runs.checkpoint import (
    checkpoints,
    decode,
    load_latest_checkpoint,
    save_checkpoint,
)
from vaezoo.runs.directory import load_model, read_metrics, save_weights
from vaezoo.runs.lock import LOCK_FILE, lock_run_dir
from vaezoo.training.trainer import TrainConfig, Trainer, _load, resume, train

SMALL = {"encoder.hidden_dims": [16], "decoder.hidden_dims": [16]}
CLI_SMALL = ["--set", "encoder.hidden_dims=[16]", "--set", "decoder.hidden_dims=[16]"]


def config(out: Path, **changes) -> TrainConfig:
    base = dict(variant="vae-mlp", dataset="digits", out=str(out), epochs=2, batch_size=128, overrides=dict(SMALL))
    return TrainConfig(**{**base, **changes})


def cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "vaezoo", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every regular file under `folder` (not following links), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def reencode(path: Path, edit) -> None:
    """Rewrite checkpoint `path` after `edit(tensors, extra)` changed it, with a valid checksum (a forger's)."""
    data = path.read_bytes()
    from safetensors.torch import load

    tensors = load(data)
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    extra = json.loads(header["__metadata__"]["vaezoo"])
    edit(tensors, extra)
    raw = json.dumps(extra)
    path.write_bytes(save(tensors, metadata={"vaezoo": raw, "sha256": ckpt._digest(tensors, raw)}))


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """A 3-epoch run that was never interrupted: what every resumed run below must end with."""
    return train(config(tmp_path_factory.mktemp("straight") / "run", epochs=3), progress=False)


# -- one writer ---------------------------------------------------------------------------------------------

def test_a_locked_run_directory_refuses_a_second_writer_naming_the_holder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with lock_run_dir(run):
        result = cli("train", "vae-mlp", "--dataset", "digits", "--epochs", "1", "--quiet", "--out", str(run), *CLI_SMALL)
        _, err = result.communicate(timeout=300)
        assert result.returncode == 2 and "Traceback" not in err
        assert f"in use by pid {os.getpid()}" in err
        assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]  # the refused writer wrote nothing
        with pytest.raises(RunDirError, match=f"in use by pid {os.getpid()}"):
            train(config(run), progress=False)
    run_done = train(config(run, epochs=1), progress=False)  # released: the directory is usable
    with lock_run_dir(run_done), pytest.raises(RunDirError, match="in use by pid"):
        resume(str(run_done), progress=False, epochs=2)
    assert [m["epoch"] for m in read_metrics(run_done)] == [1]


def test_eval_that_writes_into_a_run_takes_its_lock(tmp_path, straight):
    run = Path(shutil.copytree(straight, tmp_path / "run"))
    with lock_run_dir(run):  # a training still under way
        result = cli("eval", str(run), "--sample-quality", "--nll-samples", "2")
        _, err = result.communicate(timeout=300)
    assert result.returncode == 2 and "in use by pid" in err and "then evaluate it" in err, err
    assert not (run / "evaluation.json").exists()


def test_a_lock_file_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / LOCK_FILE)
    with pytest.raises(RunDirError, match="is not a regular file"):
        lock_run_dir(run)


def test_a_full_disk_when_writing_the_lock_is_one_error(tmp_path, monkeypatch):
    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(RunDirError, match="cannot write the lock file .*No space left on device"):
        lock_run_dir(tmp_path)


def test_two_concurrent_trains_into_one_directory_leave_one_clean_run(tmp_path):
    run = tmp_path / "run"
    args = ["train", "vae-mlp", "--dataset", "digits", "--epochs", "12", "--quiet", "--out", str(run), *CLI_SMALL]
    first, second = cli(*args, "--seed", "1"), cli(*args, "--seed", "2")
    results = {p.pid: (p.wait(timeout=600), p.stderr.read()) for p in (first, second)}
    winners = [pid for pid, (code, _) in results.items() if code == 0]
    assert len(winners) == 1, results
    loser_code, loser_err = next(v for pid, v in results.items() if pid not in winners)
    assert loser_code == 2 and "Traceback" not in loser_err
    assert f"in use by pid {winners[0]}" in loser_err or "already holds a run" in loser_err, loser_err
    assert [m["epoch"] for m in read_metrics(run)] == list(range(1, 13))  # every epoch once
    seed = 1 if winners[0] == first.pid else 2
    assert json.loads((run / "config.json").read_text())["train"]["seed"] == seed


# -- leftovers ----------------------------------------------------------------------------------------------

def test_leftovers_of_another_run_are_refused_and_kept(tmp_path):
    old = train(config(tmp_path / "old"), progress=False)
    for name in ("config.json", "model.safetensors"):
        (old / name).unlink()
    before = snapshot(old)
    with pytest.raises(RunDirError, match=r"is not empty \(it holds .*checkpoints/.*metrics\.jsonl"):
        train(config(old), progress=False)
    with pytest.raises(RunDirError, match="config.json is missing"):
        resume(str(old), progress=False)
    assert snapshot(old) == before


# -- checkpoints: tampered, hostile, non-finite -------------------------------------------------------------

def test_tampered_progress_fails_the_checksum_and_resume_uses_the_one_before(tmp_path, straight):
    run = train(config(tmp_path / "run", epochs=2), progress=False)
    newest = checkpoints(run)[-1]
    data = newest.read_bytes()
    assert data.count(b'\\"epoch\\": 3') == 1
    newest.write_bytes(data.replace(b'\\"epoch\\": 3', b'\\"epoch\\": 1'))
    with pytest.raises(ValueError, match="checksum mismatch"):
        decode(newest.read_bytes())
    with pytest.warns(UserWarning, match="checksum mismatch"):
        resume(str(run), progress=False, epochs=3)
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2, 3]
    assert_same_weights(run, straight)  # no epoch dropped, none trained twice


def _set(group: str, key: str, value):
    return lambda tensors, extra: extra[group].__setitem__(key, value)


def _copy_optimizer_entry(tensors, extra, source: str, target: str) -> None:
    extra["optimizer"]["state"][target] = extra["optimizer"]["state"][source]
    for key in [k for k in tensors if k.startswith(f"optim/{source}.")]:
        tensors[key.replace(f"optim/{source}.", f"optim/{target}.")] = tensors[key].clone()


HOSTILE = {
    "unknown tensor": (lambda t, e: t.__setitem__("evil/x", torch.zeros(1)), "unknown tensor"),
    "unknown weight": (lambda t, e: t.__setitem__("model/evil", torch.zeros(1)), "do not match the model"),
    "missing weight": (lambda t, e: t.pop(next(k for k in t if k.startswith("model/"))), "do not match the model"),
    "wrong weight shape": (lambda t, e: t.__setitem__(next(k for k in t if k.startswith("model/")), torch.zeros(3, 1, 7)),
                           "weight"),
    "missing optimizer tensor": (lambda t, e: t.pop(next(k for k in t if k.startswith("optim/"))), "optimizer"),
    "epoch is text": (_set("progress", "epoch", "4"), "not a number"),
    "unknown progress field": (_set("progress", "evil", 1), "progress record has fields"),
    "batch out of range": (_set("progress", "batch", 10**6), "out of range"),
    "a stored data order": (lambda t, e: t.__setitem__("data/order", torch.arange(10)), "stores a data order"),
    "old data generator state": (lambda t, e: t.__setitem__("rng/data", t["rng/torch"].clone()), "are unknown"),
    "optimizer index out of range": (lambda t, e: _copy_optimizer_entry(t, e, "0", "999"), "parameter 999"),
    "optimizer lr changed": (lambda t, e: e["optimizer"]["param_groups"][0].__setitem__("lr", "1e39"),
                             "optimizer settings"),
    "rng state missing": (lambda t, e: t.pop("rng/torch"), "random-number state"),
    "optimizer record missing": (lambda t, e: e.pop("optimizer"), "optimizer record"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_checkpoint_with_a_valid_checksum_is_skipped_for_the_one_before(tmp_path, name):
    run = train(config(tmp_path / "run", epochs=2), progress=False)
    older, newest = checkpoints(run)
    edit, reason = HOSTILE[name]
    reencode(newest, edit)
    cfg = TrainConfig.from_dict(json.loads((run / "config.json").read_text())["train"])
    data, model = _load(cfg, torch.device("cpu"))
    trainer = Trainer(cfg, data, model, run, progress=False)
    with pytest.warns(UserWarning, match=reason):
        state = load_latest_checkpoint(run, accept=trainer.check_fits)
    assert state.progress == decode(older.read_bytes()).progress
    reencode(older, edit)  # both hostile: a clear error, nothing restored or written
    before = snapshot(run)
    with pytest.warns(UserWarning), pytest.raises(RunDirError, match="every checkpoint .* delete"):
        resume(str(run), progress=False, epochs=3)
    assert snapshot(run) == before


def _poison(tensors, extra):
    name = next(k for k in tensors if k.startswith("model/"))
    tensors[name] = torch.full_like(tensors[name], float("nan"))


def test_nan_weights_in_a_checkpoint_never_reach_model_safetensors(tmp_path, straight):
    run = train(config(tmp_path / "run", epochs=2), progress=False)
    reencode(checkpoints(run)[-1], _poison)
    with pytest.warns(UserWarning, match="non-finite"):
        resume(str(run), progress=False, epochs=3)
    assert_same_weights(run, straight)  # resumed from the good checkpoint before it
    for value in load_file(run / "model.safetensors").values():
        assert torch.isfinite(value).all()

    run2 = train(config(tmp_path / "run2", epochs=2), progress=False)
    good = (run2 / "model.safetensors").read_bytes()
    for path in checkpoints(run2):
        reencode(path, _poison)
    before = snapshot(run2)
    with pytest.warns(UserWarning), pytest.raises(RunDirError, match="every checkpoint"):
        resume(str(run2), progress=False, epochs=3)
    assert snapshot(run2) == before and (run2 / "model.safetensors").read_bytes() == good


def test_non_finite_weights_are_never_written(tmp_path):
    run = train(config(tmp_path / "run", epochs=1), progress=False)
    before = snapshot(run)
    model = load_model(run)
    with torch.no_grad():
        next(model.parameters())[0] = float("inf")
    with pytest.raises(NonFiniteError, match="model.safetensors"):
        save_weights(run, model)
    state = decode(checkpoints(run)[-1].read_bytes())
    state.model = model.state_dict()
    with pytest.raises(NonFiniteError, match="checkpoint"):
        save_checkpoint(run, 10**6, state)
    assert snapshot(run) == before


def test_a_run_whose_every_step_is_skipped_is_an_error_and_writes_nothing(tmp_path, monkeypatch):
    original = Trainer.batch

    def all_nan(self, index, loaded):
        x, y, rows = original(self, index, loaded)
        return torch.full_like(x, float("nan")), y, rows

    monkeypatch.setattr(Trainer, "batch", all_nan)
    with pytest.raises(NonFiniteError, match="epoch 1 trained on nothing"):
        train(config(tmp_path / "run"), progress=False)
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert read_metrics(tmp_path / "run") == [] and checkpoints(tmp_path / "run") == []


# -- symbolic links -----------------------------------------------------------------------------------------

def test_a_symlinked_checkpoints_folder_is_refused_and_its_target_untouched(tmp_path):
    run = train(config(tmp_path / "run", epochs=1), progress=False)
    state = decode(checkpoints(run)[-1].read_bytes())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for step in (1, 2, 3):
        (elsewhere / f"step-{step:09d}.safetensors").write_bytes(b"someone else's file")
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").symlink_to(elsewhere)
    before = snapshot(elsewhere)
    with pytest.raises(RunDirError, match="symbolic link"):
        resume(str(run), progress=False, epochs=2)
    with pytest.raises(RunDirError, match="symbolic link"):
        save_checkpoint(run, 5, state)
    assert snapshot(elsewhere) == before


def test_pruning_deletes_only_regular_checkpoint_files(tmp_path):
    run = train(config(tmp_path / "run", epochs=1), progress=False)
    victim = tmp_path / "precious.safetensors"
    victim.write_bytes(b"keep me")
    (run / "checkpoints" / "step-000000000.safetensors").symlink_to(victim)
    state = decode(checkpoints(run)[-1].read_bytes())
    for step in (100, 200, 300):
        save_checkpoint(run, step, state)
    assert victim.read_bytes() == b"keep me"
    assert (run / "checkpoints" / "step-000000000.safetensors").is_symlink()
    assert [p.name for p in checkpoints(run)] == ["step-000000200.safetensors", "step-000000300.safetensors"]


# -- small data sets ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("held_out", [1, 5, 31])
def test_small_held_out_sets_get_pictures_a_report_and_resume(tmp_path, held_out):
    rng = np.random.default_rng(0)
    data = tmp_path / "small.npz"
    np.savez(data, x_train=rng.random((40, 8, 8), dtype=np.float32), x_test=rng.random((held_out, 8, 8), dtype=np.float32))
    cfg = config(tmp_path / "run", dataset="arrays", data_dir=str(data), epochs=1, batch_size=16)
    run = train(cfg, progress=False)
    names = ["samples.png", "reconstructions.png", "traversal.png", "curves.png"]
    names += ["interpolation.png"] if held_out >= 2 else []
    for name in names:
        with Image.open(run / name) as image:
            image.verify()
    assert (held_out >= 2) == (run / "interpolation.png").exists()
    # whole rows of up to 8 held-out inputs (up to 4 rows), each row above its reconstructions
    cols = min(8, held_out)
    shown = cols * min(4, held_out // cols)
    cells = read_cells(run / "reconstructions.png", n=2 * shown, nrow=cols).view(-1, 2, cols, 1, 8, 8)
    inputs = torch.from_numpy(np.load(data)["x_test"][:shown, None])
    assert_shows(cells[:, 0].reshape(shown, 1, 8, 8), inputs, f"reconstructions.png of {held_out} held-out")
    if held_out >= 2:  # a walk of 10 steps between each pair of the inputs shown, up to 8 walks
        read_cells(run / "interpolation.png", n=10 * min(8, shown // 2), nrow=10)
    page = (run / "report.html").read_text()
    assert page.count("<figure>") == len(names)
    resume(str(run), progress=False, epochs=2, data_dir=str(data))
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2]
    out = tmp_path / "walk.png"
    result = cli("interpolate", str(run), "--data-dir", str(data), "--out", str(out))
    _, err = result.communicate(timeout=300)
    if held_out >= 2:
        assert result.returncode == 0, err
        with Image.open(out) as image:
            image.verify()
    else:
        assert result.returncode == 2 and "needs two" in err and "Traceback" not in err


# -- killed early, read-only --------------------------------------------------------------------------------

def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path, monkeypatch, straight):
    def killed(self, outputs=None):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "fit", killed)
        with pytest.raises(KeyboardInterrupt):
            train(config(tmp_path / "run", epochs=3), progress=False)
    run = tmp_path / "run"
    assert (run / "config.json").is_file() and checkpoints(run) == []
    with pytest.raises(RunDirError, match="already holds a run; add --resume"):
        train(config(run, epochs=3), progress=False)
    resume(str(run), progress=False)
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2, 3]
    assert_same_weights(run, straight)


def full_disk_at(failing: set[int]):
    """A replacement for atomic_write whose checkpoint writes number `failing` (0 the first) fail as on a full
    disk, part-way through writing."""
    real, checkpoint_writes = vaezoo.atomic.atomic_write, []

    def atomic_write(path, write):
        if Path(path).parent.name == "checkpoints":
            checkpoint_writes.append(path)
        if Path(path).parent.name == "checkpoints" and len(checkpoint_writes) - 1 in failing:
            def partial(f):
                f.write(b"half a checkpoint")
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(path, partial)
        return real(path, write)
    return atomic_write


def test_a_run_whose_first_checkpoint_failed_on_a_full_disk_resumes(tmp_path, monkeypatch, straight):
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(ckpt, "atomic_write", full_disk_at({0}))
        with pytest.raises(RunDirError, match="No space left on device"):
            train(config(run, epochs=3), progress=False)
    assert (run / "model.safetensors").is_file() and checkpoints(run) == []
    assert not [p for p in run.rglob("*.tmp")]
    resume(str(run), progress=False)
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2, 3]
    assert_same_weights(run, straight)


def test_a_metrics_line_cut_short_by_a_full_disk_is_removed_and_the_run_resumes(tmp_path, monkeypatch, straight):
    real_fsync, synced, failed = os.fsync, [], []

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("metrics.jsonl"):
            synced.append(fd)
        if len(synced) == 2 and not failed:  # epoch 2's line
            failed.append(fd)
            os.ftruncate(fd, os.fstat(fd).st_size - 7)  # what reached the disk: part of the second line
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", fsync)
        with pytest.raises(RunDirError, match="metrics.jsonl: No space left on device"):
            train(config(run, epochs=3), progress=False)
    assert failed and [m["epoch"] for m in read_metrics(run)] == [1]  # whole lines only
    resume(str(run), progress=False)
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2, 3]
    assert_same_weights(run, straight)


def test_a_run_whose_later_checkpoint_failed_resumes_from_the_one_before(tmp_path, monkeypatch, straight):
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(ckpt, "atomic_write", full_disk_at({1}))
        with pytest.raises(RunDirError, match="No space left on device"):
            train(config(run, epochs=3), progress=False)
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2] and len(checkpoints(run)) == 1
    resume(str(run), progress=False)
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2, 3]
    assert_same_weights(run, straight)


def test_sigterm_is_one_line_leaves_no_temporary_file_and_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    proc = cli("train", "vae-mlp", "--dataset", "digits", "--epochs", "500", "--checkpoint-every", "1", "--quiet",
               "--out", str(run), *CLI_SMALL)
    while len(checkpoints(run) if (run / "checkpoints").is_dir() else []) < 2:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip().splitlines() == ["vaezoo: terminated (SIGTERM)"], err
    assert not [p for p in run.rglob("*.tmp")]  # the checkpoint being written when the signal came is removed
    epoch = decode(checkpoints(run)[-1].read_bytes()).progress["epoch"]
    resume(str(run), progress=False, epochs=epoch)  # the lock was released, the newest checkpoint is whole
    assert read_metrics(run)[-1]["epoch"] == epoch


def test_a_signal_just_after_the_temporary_file_is_made_leaves_nothing_behind(tmp_path, monkeypatch):
    # the window the SIGTERM test above could hit now and then: the signal handled right after the file was created
    real_open = os.open

    def open_then_interrupted(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if str(path).endswith(".tmp"):
            os.close(fd)
            raise KeyboardInterrupt
        return fd

    target = tmp_path / "model.safetensors"
    target.write_bytes(b"what the user saved")
    with monkeypatch.context() as patch:
        patch.setattr(os, "open", open_then_interrupted)
        with pytest.raises(KeyboardInterrupt):
            vaezoo.atomic.atomic_write(target, lambda f: f.write(b"new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    assert target.read_bytes() == b"what the user saved"


def test_resume_with_fewer_epochs_than_trained_is_refused_and_changes_nothing(tmp_path, straight):
    run = Path(shutil.copytree(straight, tmp_path / "run"))
    before = snapshot(run)
    with pytest.raises(VaezooError, match="^epochs 1 is fewer than the 3 epochs"):
        resume(str(run), progress=False, epochs=1)
    assert snapshot(run) == before


def test_weights_without_a_checkpoint_are_kept_and_the_message_says_delete(tmp_path):
    run = train(config(tmp_path / "run", epochs=2), progress=False)
    shutil.rmtree(run / "checkpoints")
    before = snapshot(run)
    with pytest.raises(RunDirError, match="no checkpoint to resume from.*delete the directory"):
        resume(str(run), progress=False, epochs=3)
    assert snapshot(run) == before


def test_a_run_directory_turned_read_only_mid_run_loses_nothing(tmp_path, monkeypatch, straight):
    real_replace, calls = os.replace, []

    def replace(src, dst):
        if len(checkpoints(tmp_path / "run")) >= 1 and Path(dst).name != "config.json":
            raise PermissionError(13, "Permission denied", str(dst))
        calls.append(dst)
        return real_replace(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(vaezoo.atomic.os, "replace", replace)
        with pytest.raises(RunDirError, match="cannot write .*Permission denied"):
            train(config(tmp_path / "run", epochs=3), progress=False)
    run = tmp_path / "run"
    assert [m["epoch"] for m in read_metrics(run)] == [1]
    assert [p.name for p in checkpoints(run)] == ["step-000000012.safetensors"]
    decode(checkpoints(run)[-1].read_bytes())  # intact
    assert not [p for p in run.rglob("*.tmp")]  # no temporary files left behind
    resume(str(run), progress=False)  # writable again: the run completes as if never stopped
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2, 3]
    assert_same_weights(run, straight)


# -- permissions --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_run_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        run = train(config(tmp_path / "run", epochs=1), progress=False)
    finally:
        os.umask(old)
    files = [p for p in run.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"config.json", "metrics.jsonl", "model.safetensors", "report.html", LOCK_FILE}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


# -- data named by a run directory ---------------------------------------------------------------------------

def test_a_run_directory_cannot_make_vaezoo_read_outside_it(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "data.npy"
    np.save(data, rng.random((60, 8, 8), dtype=np.float32))
    run = train(config(tmp_path / "run", dataset="arrays", data_dir=str(data), epochs=1, batch_size=32), progress=False)
    config_file = run / "config.json"
    record = json.loads(config_file.read_text())
    for hostile in ("../../etc/passwd", "/", str(data)):
        record["train"]["data_dir"] = hostile
        config_file.write_text(json.dumps(record))
        result = cli("reconstruct", str(run), "--out", str(tmp_path / "r.png"))
        _, err = result.communicate(timeout=300)
        assert result.returncode == 2 and "pass --data-dir" in err and "Traceback" not in err, err
        assert not (tmp_path / "r.png").exists()
    inside = run / "data.npy"
    shutil.copy(data, inside)
    record["train"]["data_dir"] = "data.npy"  # relative to the run directory, and inside it
    config_file.write_text(json.dumps(record))
    assert load_dataset("arrays", inside).train_x.shape[1:] == (1, 8, 8)
    result = cli("reconstruct", str(run), "--out", str(tmp_path / "r.png"), "--n", "4")
    assert result.wait(timeout=300) == 0, result.stderr.read()
    with Image.open(tmp_path / "r.png") as image:
        image.verify()


def test_report_escapes_every_field(tmp_path):
    from vaezoo.analysis.report import write_report

    run = train(config(tmp_path / "run", epochs=1), progress=False)
    record = json.loads((run / "config.json").read_text())
    record["dataset"] = "<script>alert(1)</script>"
    (run / "config.json").write_text(json.dumps(record))
    page = write_report(run).read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"))])
def test_the_step_check_flags_exactly_the_non_finite_gradients(device):
    """The trainer's one reduction per step: NaN, +inf, -inf and inf - inf are caught; finite gradients pass."""
    from vaezoo.runtime.finite import nonfinite_gradients

    params = [torch.nn.Parameter(torch.zeros(4, device=device)) for _ in range(3)]
    params[2].grad = None  # a parameter without a gradient is left out
    for bad, values in [(False, [1.0, -2.0, 1e30, -1e30]), (True, [float("nan"), 0, 0, 0]),
                        (True, [0, float("inf"), 0, 0]), (True, [0, 0, -float("inf"), 0]),
                        (True, [float("inf"), -float("inf"), 0, 0])]:
        params[0].grad = torch.ones(4, device=device)
        params[1].grad = torch.tensor(values, device=device)
        assert nonfinite_gradients(params).item() == float(bad), values
    assert nonfinite_gradients([params[2]]).item() == 0.0
