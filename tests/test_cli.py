"""The command line as a user meets it: list, show, train, demo, and the errors for bad input."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from grids import assert_report_shows, assert_shows, read_cells

import vaezoo
from vaezoo.analysis.evaluate import elbo
from vaezoo.cli.main import main
from vaezoo.data.datasets import load_dataset
from vaezoo.data.held_out import held_out_set
from vaezoo.runs.directory import read_metrics


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_console_script_lists_variants():
    exe = shutil.which("vaezoo", path=os.path.dirname(sys.executable)) or shutil.which("vaezoo")
    assert exe, "the vaezoo console script is not installed"
    result = subprocess.run([exe, "list"], capture_output=True, text=True, check=True)
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert "vae-mlp" in names and "vae-conv" in names


def test_list_json_and_kinds(capsys):
    code, out, _ = run_cli(capsys, "list", "--json")
    assert code == 0
    rows = json.loads(out)
    plugins = {r["name"]: r["plugin"] for r in rows}
    assert plugins["vae-mlp"] == plugins["vae-conv"] == "vaezoo"
    code, out, _ = run_cli(capsys, "list", "--kind", "encoder")
    assert code == 0 and "conv" in out and "mlp" in out


def test_show_describes_parts(capsys):
    code, out, _ = run_cli(capsys, "show", "vae-conv", "--json")
    info = json.loads(out)
    assert code == 0
    assert info["parts"]["encoder"]["name"] == "conv"
    assert info["parts"]["objective"]["options"]["beta"] == 1.0
    code, out, _ = run_cli(capsys, "show", "vae-conv")
    assert "encoder" in out and "standard-normal" in out


def test_misspelt_variant_fails_with_suggestion(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "vae-mpl", "--dataset", "digits", "--out", str(tmp_path / "r"))
    assert code == 2
    assert "Did you mean 'vae-mlp'" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dataset", "digitz"], "unknown dataset 'digitz'"),
        (["--dataset", "fashion-mnist", "--data-dir", "/nonexistent/dir"], "apt-get install dataset-fashion-mnist"),
        (["--dataset", "digits", "--set", "depth=3"], "no part accepts the override 'depth'"),
        (["--dataset", "digits", "--epochs", "0"], "--epochs must be a whole number of at least 1, got 0"),
        (["--dataset", "digits", "--set", "beta"], "--set takes KEY=VALUE"),
    ],
)
def test_bad_input_is_one_clear_error(capsys, tmp_path, extra, message):
    code, _, err = run_cli(capsys, "train", "vae-mlp", *extra, "--out", str(tmp_path / "r"), "--quiet")
    assert code == 2
    assert message in err and "Traceback" not in err


def test_unwritable_out_is_refused(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, _, err = run_cli(capsys, "train", "vae-mlp", "--dataset", "digits", "--out", str(blocker / "run"), "--quiet")
    assert code == 2 and "cannot write the run directory" in err


def test_train_writes_a_complete_run_and_never_overwrites_it(capsys, tmp_path):
    run = tmp_path / "run"
    code, out, _ = run_cli(
        capsys, "train", "vae-conv", "--dataset", "digits", "--epochs", "2", "--out", str(run), "--quiet",
        "--set", "encoder.channels=[8,16]", "--set", "decoder.channels=[16,8]",
    )
    assert code == 0, out
    for name in ("model.safetensors", "config.json", "metrics.jsonl", "samples.png", "reconstructions.png"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["variant"] == "vaezoo:vae-conv" and config["dataset"] == "digits"
    assert config["identity"]["encoder"] == {"name": "vaezoo:conv", "distribution": "vaezoo", "version": vaezoo.__version__}
    assert config["overrides"] == {"encoder.channels": [8, 16], "decoder.channels": [16, 8]}
    assert {"vaezoo", "torch", "python"} <= set(config["versions"])
    metrics = read_metrics(run)
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert all({"train_loss", "val_elbo"} <= set(m) for m in metrics)
    read_cells(run / "samples.png", n=64, nrow=8)  # 8 x 8 samples of 8 x 8 pixels
    inputs = read_cells(run / "reconstructions.png", n=64, nrow=8).view(4, 2, 8, 1, 8, 8)[:, 0]
    assert_shows(inputs.reshape(32, 1, 8, 8), load_dataset("digits").test_x[:32], "the inputs reconstructed")
    # the saved weights reproduce the recorded held-out ELBO
    model = vaezoo.load_model(run)
    held_out = held_out_set(load_dataset("digits"), model)
    assert elbo(model, held_out)["elbo"] == pytest.approx(metrics[-1]["val_elbo"], rel=1e-5)
    before = (run / "model.safetensors").read_bytes()
    code, _, err = run_cli(capsys, "train", "vae-conv", "--dataset", "digits", "--out", str(run), "--quiet")
    assert code == 2 and "already holds a run" in err
    assert (run / "model.safetensors").read_bytes() == before


def test_training_improves_the_held_out_elbo(capsys, tmp_path):
    run = tmp_path / "run"
    code, _, _ = run_cli(
        capsys, "train", "vae-mlp", "--dataset", "digits", "--epochs", "15", "--batch-size", "64",
        "--out", str(run), "--quiet",
    )
    assert code == 0
    metrics = read_metrics(run)
    assert metrics[-1]["val_elbo"] > metrics[0]["val_elbo"] + 1.5
    untrained = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8))
    held_out = held_out_set(load_dataset("digits"), untrained)
    assert metrics[-1]["val_elbo"] > elbo(untrained, held_out)["elbo"] + 15


def test_load_model_refuses_newer_format_and_corrupt_weights(capsys, tmp_path):
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "vae-mlp", "--dataset", "digits", "--epochs", "1", "--out", str(run), "--quiet")[0] == 0
    config = json.loads((run / "config.json").read_text())
    (run / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(vaezoo.errors.RunDirError, match="corrupt"):
        vaezoo.load_model(run)
    (run / "config.json").write_text(json.dumps({**config, "format": 99}))
    with pytest.raises(vaezoo.errors.RunDirError, match="newer vaezoo"):
        vaezoo.load_model(run)


def test_demo_trains_and_writes_pictures(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "demo", "--out", str(tmp_path / "demo"), "--epochs", "3", "--quiet")
    assert code == 0
    demo = tmp_path / "demo"
    assert f"run written to {demo}" in out and f"report: {demo / 'report.html'}" in out
    metrics = read_metrics(demo)
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert torch.isfinite(torch.tensor(metrics[-1]["val_elbo"]))
    samples = read_cells(demo / "samples.png", n=64, nrow=8)
    assert samples.min() < 0.2 and samples.max() > 0.8, "the samples are one flat grey"
    assert_report_shows(demo, ["curves.png", "samples.png", "reconstructions.png", "interpolation.png",
                               "traversal.png"], metrics)


def test_load_model_of_an_older_run_names_the_missing_plugin(capsys, tmp_path):
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "vae-mlp", "--dataset", "digits", "--epochs", "1", "--out", str(run), "--quiet")[0] == 0
    config = json.loads((run / "config.json").read_text())
    assert vaezoo.load_model(run).config["identity"] == config["identity"]
    del config["identity"]  # as written before runs recorded each part's distribution
    config["variant"] = "ghost-vae"
    config["plugins"] = {"ghost": {"distribution": "vaezoo-ghost", "version": "1.2"}}
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(vaezoo.errors.RunDirError) as info:
        vaezoo.load_model(run)
    assert "'ghost-vae' is not registered here; the run was made with vaezoo-ghost==1.2 (plugin ghost)" in str(info.value)
    assert "Did you mean" not in str(info.value)


def test_bench_writes_a_table_and_json(capsys, tmp_path):
    path = tmp_path / "bench.json"
    code, out, _ = run_cli(
        capsys, "bench", "--device", "cpu", "--part", "sizes", "--size", "128x32", "--min-run-time", "0.01",
        "--rounds", "1", "--json", str(path),
    )
    assert code == 0
    result = json.loads(path.read_text())
    assert result["per_call"] == []
    rows = result["rows"]
    assert [r["pass"] for r in rows] == ["forward", "backward", "forward+backward"]
    assert all(r["size"] == "128x32" and r["reference_ms"] > 0 and r["compiled_ms"] > 0 for r in rows)
    if "fused" in vaezoo.ops.backends()["cpu"]:
        assert all(r["reference_over_fused"] == pytest.approx(r["reference_ms"] / r["fused_ms"]) for r in rows)
    assert out.count("128x32") == 3


def test_bench_per_call_rows(capsys, tmp_path):
    """opcall: the per-call table times the operator against torch.add and the eager reference at small sizes,
    forward and forward + backward, with paired ratios; a channels_last spatial size runs in the size table."""
    path = tmp_path / "bench.json"
    code, out, _ = run_cli(
        capsys, "bench", "--device", "cpu", "--size", "8x4x32x32-cl", "--min-run-time", "0.005", "--rounds", "1",
        "--json", str(path),
    )
    assert code == 0
    result = json.loads(path.read_text())
    rows = result["per_call"]
    assert [(r["size"], r["pass"]) for r in rows] == [
        (size, p) for size in ("1x1", "8x4", "128x32") for p in ("forward", "forward+backward")
    ]
    assert all(r["add_us"] > 0 and r["reference_us"] > 0 for r in rows)
    if "fused" in vaezoo.ops.backends()["cpu"]:
        assert all(r["fused_us"] > 0 and r["fused_over_add"] > 0 and r["reference_over_fused"] > 0 for r in rows)
    assert [r["size"] for r in result["rows"]] == ["8x4x32x32-cl"] * 3
    assert "fused/add" in out and out.count("8x4x32x32-cl") == 3


@pytest.mark.parametrize(
    "device, message", [("mps", "must be cpu or cuda"), ("cuda:7", "CUDA GPU(s) here"), ("gpu", "not a device")]
)
def test_bench_refuses_devices_it_cannot_use(capsys, device, message):
    code, _, err = run_cli(capsys, "bench", "--device", device, "--size", "128x32")
    assert code == 2 and message in err and "Traceback" not in err


def test_resume_reads_the_run_once_checks_the_device_once_and_says_what_changes(capsys, tmp_path, monkeypatch):
    from pathlib import Path

    from vaezoo.training import config as config_module
    from vaezoo.training import trainer as trainer_module
    from vaezoo.training.resume_plan import plan_resume
    from vaezoo.training.trainer import resume

    run = tmp_path / "run"
    small = ["--dataset", "digits", "--limit", "128", "--batch-size", "64", "--set", "encoder.hidden_dims=[8]",
             "--set", "decoder.hidden_dims=[8]", "--out", str(run), "--quiet"]
    assert run_cli(capsys, "train", "vae-mlp", "--epochs", "1", *small)[0] == 0
    # the decision, in the library: settings named, every conflict at once, nothing started
    with pytest.raises(vaezoo.errors.SettingError) as caught:
        plan_resume(run, lr=0.5, batch_size=64, overrides={"beta": 2})
    assert caught.value.settings == ("lr", "overrides")
    assert "lr (the run has 0.001, not 0.5); overrides (the run has" in str(caught.value)
    code, _, err = run_cli(capsys, "train", "vae-mlp", "--resume", "--lr", "0.5", "--seed", "3", *small)
    assert code == 2 and "--lr (the run has 0.001, not 0.5); --seed (the run has 0, not 3)" in err
    reads, devices = [], []
    read_text = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: (reads.append(self.name), read_text(self, *a, **k))[1])
    check_device = config_module.check_device
    monkeypatch.setattr(config_module, "check_device", lambda d: (devices.append(d), check_device(d))[1])
    # the pictures and report written after training read the run as after any training: left out here
    monkeypatch.setattr(trainer_module, "write_run_outputs", lambda *args: reads.append("outputs"))
    code, _, err = run_cli(capsys, "train", "vae-mlp", "--resume", "--epochs", "2", "--device", "cpu",
                           "--checkpoint-every", "5", *small)
    assert code == 0, err
    assert "vaezoo: --resume: checkpoint-every is now 5 (the run had None)" in err and "device is now" not in err
    assert reads.count("config.json") == 1 and reads[-1] == "outputs" and devices == ["cpu"]
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2]
    # a run continued by another process between the plan and the lock is refused, and left as it was
    plan = plan_resume(run, epochs=3)
    config_json = run / "config.json"
    (tmp_path / "copy.json").write_bytes(config_json.read_bytes())
    os.replace(tmp_path / "copy.json", config_json)  # as an atomic rewrite by another process
    with pytest.raises(vaezoo.errors.RunDirError, match="changed while the run was being resumed"):
        resume(plan, progress=False)
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2]


@pytest.mark.parametrize("command", [["list"], ["show", "hvae-mlp"]])
def test_output_whose_reader_went_away_ends_quietly(command):
    """`vaezoo list | head -2`: the reader closes the pipe; the command ends with 141 (128 + SIGPIPE, as the shell
    reports coreutils cut short) and no traceback. Closed before vaezoo writes, so every write meets it."""
    process = subprocess.Popen([sys.executable, "-m", "vaezoo", *command], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141 and err == "", err


def test_a_broken_pipe_that_is_not_the_output_stays_an_error(monkeypatch):
    from vaezoo.cli import main as cli_main

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")  # as from a worker's pipe: the output's reader is still there

    monkeypatch.setattr(cli_main, "cmd_list", broken)
    with pytest.raises(BrokenPipeError):
        main(["list"])


def test_eval_pictures_and_fit_sampler_read_the_run_config_once(capsys, tmp_path, monkeypatch):
    """A command that reads a run opens it once (vaezoo.runs.directory.SavedRun) and hands what it read down:
    config.json is read once by eval (with the evaluation and report it writes), a picture and fit-sampler."""
    from pathlib import Path

    run = tmp_path / "run"
    assert run_cli(capsys, "train", "vae-mlp", "--dataset", "digits", "--limit", "128", "--batch-size", "64",
                   "--epochs", "1", "--set", "encoder.hidden_dims=[8]", "--set", "decoder.hidden_dims=[8]",
                   "--out", str(run), "--quiet")[0] == 0
    reads = []
    read_text = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: (reads.append(self.name), read_text(self, *a, **k))[1])
    for command in (["eval", str(run), "--nll-samples", "2", "--nll-examples", "8", "--reconstruction", "--json"],
                    ["reconstruct", str(run), "--out", str(tmp_path / "r.png")],
                    ["fit-sampler", str(run), "--sampler", "gmm", "--epochs", "1", "--set", "components=2", "--quiet"],
                    ["sample", str(run), "--sampler", "gmm", "--out", str(tmp_path / "s.png")]):
        reads.clear()
        code, _, err = run_cli(capsys, *command)
        assert code == 0, err
        assert reads.count("config.json") == 1, (command[0], reads)
    assert (run / "evaluation.json").is_file() and (run / "report.html").is_file()


def test_list_and_show_print_what_the_python_api_gives(capsys):
    from vaezoo.registry.description import list_entries

    code, out, _ = run_cli(capsys, "show", "vae-mlp", "--json")
    assert code == 0 and json.loads(out) == json.loads(json.dumps(vaezoo.describe_variant("vae-mlp")))
    assert vaezoo.describe_variant("vae-mlp")["parts"]["prior"]["name"] == "standard-normal"
    code, out, _ = run_cli(capsys, "list", "vae-*", "--json")
    assert json.loads(out) == list_entries("variant", "vae-*")
    assert [row["name"] for row in list_entries("variant", "vae-*")] == vaezoo.list_models("vae-*")
