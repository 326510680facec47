"""Every user error is one clear line: the CLI, run in a subprocess, exits 2 with `vaezoo: error: ...` naming
the problem, and never prints a traceback.

To add a case, add a row to CASES: the arguments after `vaezoo` (with {run}: a trained run directory shared by
every case, to read only; {tmp}: a fresh folder of this case's own), a fragment the error line must hold,
and optionally a `setup(tmp, run)` that makes the files the case needs and an `env` to add ({run} and {tmp}
are filled in there too).
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image
from plugin_sites import BOARDS, FakeSite
from safetensors.torch import load, save

from vaezoo.runs import checkpoint as ckpt
from vaezoo.training.trainer import TrainConfig, train

TRAIN = ["train", "vae-mlp", "--quiet", "--epochs", "1", "--set", "encoder.hidden_dims=[8]",
         "--set", "decoder.hidden_dims=[8]"]


@dataclass
class Case:
    argv: list[str]
    message: str
    setup: Callable[[Path, Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


# -- set-ups: each makes, under tmp, the files one case needs ---------------------------------------------------

def copy_run(tmp: Path, run: Path) -> Path:
    return Path(shutil.copytree(run, tmp / "run"))


def edit_config(change: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, run: Path) -> None:
        path = copy_run(tmp, run) / "config.json"
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record))
    return setup


def config_is_a_directory(tmp: Path, run: Path) -> None:
    path = copy_run(tmp, run) / "config.json"
    path.unlink()
    path.mkdir()


def image_folder(tmp: Path, run: Path) -> None:
    (tmp / "images" / "a").mkdir(parents=True)
    for i in range(4):
        Image.new("L", (10, 10), color=i * 40).save(tmp / "images" / "a" / f"{i}.png")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def decompression_bomb(tmp: Path, run: Path) -> None:
    """A PNG whose header promises 40000 x 40000 pixels, in a few bytes."""
    image_folder(tmp, run)
    header = struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    (tmp / "images" / "a" / "bomb.png").write_bytes(data + png_chunk(b"IEND", b""))


def idx(path: Path, array: np.ndarray, code: int) -> None:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def mnist_files(images: np.ndarray, code: int = 0x08) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, run: Path) -> None:
        (tmp / "mnist").mkdir()
        for prefix, n in (("train", len(images)), ("t10k", 4)):
            x = images if prefix == "train" else np.zeros((4, 28, 28), images.dtype)
            idx(tmp / "mnist" / f"{prefix}-images-idx3-ubyte.gz", x, code)
            idx(tmp / "mnist" / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(n, np.uint8), 0x08)
    return setup


def labelled_arrays(tmp: Path, run: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp / "data.npz", x=rng.random((50, 8, 8), dtype=np.float32), y=np.arange(50) % 13)


def conditional_run_on_relabelled_data(tmp: Path, run: Path) -> None:
    """A cvae run trained on labels 0..9, and its data file relabelled 0..12 afterwards."""
    rng = np.random.default_rng(0)
    x = rng.random((40, 8, 8), dtype=np.float32)
    np.savez(tmp / "data.npz", x=x, y=np.arange(40) % 10)
    train(TrainConfig(variant="cvae-mlp", dataset="arrays", data_dir=str(tmp / "data.npz"), out=str(tmp / "cvae"),
                      epochs=1, batch_size=16, overrides={"encoder.hidden_dims": [8], "decoder.hidden_dims": [8]}),
          progress=False)
    np.savez(tmp / "data.npz", x=x, y=np.arange(40) % 13)


def forge_checkpoints(edit: Callable[[dict, dict], None]) -> Callable[[Path, Path], None]:
    """Every checkpoint of a copy of the run changed by `edit(tensors, extra)`, with a recomputed checksum."""
    def setup(tmp: Path, run: Path) -> None:
        for path in ckpt.checkpoints(copy_run(tmp, run)):
            data = path.read_bytes()
            tensors = load(data)
            extra = json.loads(json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]["vaezoo"])
            edit(tensors, extra)
            raw = json.dumps(extra)
            path.write_bytes(save(tensors, metadata={"vaezoo": raw, "sha256": ckpt._digest(tensors, raw)}))
    return setup


def leftovers(tmp: Path, run: Path) -> None:
    shutil.copytree(run / "checkpoints", tmp / "out" / "checkpoints")
    shutil.copy(run / "metrics.jsonl", tmp / "out")


def weights_without_checkpoints(tmp: Path, run: Path) -> None:
    shutil.rmtree(copy_run(tmp, run) / "checkpoints")


def a_file(tmp: Path, run: Path) -> None:
    (tmp / "file").write_text("not a directory")


def boards_plugin(tmp: Path, run: Path) -> None:
    """The `boards` plugin (tests/plugin_sites.py) installed into {tmp}/site, which ON_SITE puts on the path."""
    site = FakeSite(tmp / "site")
    site.root.mkdir()
    site.install("vaezoo-boards", BOARDS, plugin="boards")


ON_SITE = {"PYTHONPATH": os.pathsep.join(filter(None, ["{tmp}/site", os.environ.get("PYTHONPATH")]))}


RESUME = ["train", "vae-mlp", "--dataset", "digits", "--out", "{tmp}/run", "--resume", "--quiet"]

CASES = {
    # devices, counts and output paths of the commands on a run
    "eval --nll-examples 0": Case(["eval", "{run}", "--nll-examples", "0"], "--nll-examples must be a positive integer, got 0"),
    "eval --device foo": Case(["eval", "{run}", "--device", "foo"], "device must be cpu, cuda or cuda:N"),
    "eval --device cuda:99": Case(["eval", "{run}", "--device", "cuda:99"], "device cuda:99 was asked for"),
    "sample --device foo": Case(["sample", "{run}", "--device", "foo", "--out", "{tmp}/s.png"], "device must be"),
    "sample --device cuda:99": Case(["sample", "{run}", "--device", "cuda:99", "--out", "{tmp}/s.png"], "cuda:99"),
    "reconstruct --device foo": Case(["reconstruct", "{run}", "--device", "foo", "--out", "{tmp}/r.png"], "device must"),
    "sample --n 0": Case(["sample", "{run}", "--n", "0", "--out", "{tmp}/s.png"], "--n must be at least 1"),
    "sample --n -1": Case(["sample", "{run}", "--n", "-1", "--out", "{tmp}/s.png"], "--n must be at least 1"),
    "reconstruct --n -1": Case(["reconstruct", "{run}", "--n", "-1", "--out", "{tmp}/r.png"], "--n must be at least 1"),
    "interpolate --steps 0": Case(["interpolate", "{run}", "--steps", "0", "--out", "{tmp}/i.png"], "--steps must be"),
    "interpolate --steps 1": Case(["interpolate", "{run}", "--steps", "1", "--out", "{tmp}/i.png"], "--steps must be"),
    "interpolate --steps -3": Case(["interpolate", "{run}", "--steps", "-3", "--out", "{tmp}/i.png"], "at least 2"),
    "traverse --steps 0": Case(["traverse", "{run}", "--steps", "0", "--out", "{tmp}/t.png"], "--steps must be"),
    "--out in a missing folder": Case(["sample", "{run}", "--out", "{tmp}/missing/s.png"], "does not exist"),
    "--out names a directory": Case(["sample", "{run}", "--out", "{tmp}"], "is a directory"),
    # run directories that are not what they should be
    "eval on a file": Case(["eval", "{run}/config.json"], "is a file"),
    "eval on nothing": Case(["eval", "{tmp}/nothing"], "does not exist"),
    "config.json is a directory": Case(["eval", "{tmp}/run"], "cannot read", config_is_a_directory),
    "config lacks variant": Case(["eval", "{tmp}/run"], "lacks 'variant'", edit_config(lambda c: c.pop("variant"))),
    "config overrides is a list": Case(["sample", "{tmp}/run", "--out", "{tmp}/s.png"], "overrides must be",
                                       edit_config(lambda c: c.__setitem__("overrides", [1]))),
    "config input_shape is text": Case(["eval", "{tmp}/run"], "input_shape must be",
                                       edit_config(lambda c: c.__setitem__("input_shape", "1,8,8"))),
    "config lacks train": Case(["eval", "{tmp}/run"], "lacks 'train'", edit_config(lambda c: c.pop("train"))),
    "config train.seed is text": Case(RESUME, "seed must be an integer",
                                      edit_config(lambda c: c["train"].__setitem__("seed", "x"))),
    "config data_dir outside the run": Case(
        ["eval", "{tmp}/run"], "pass --data-dir",
        edit_config(lambda c: c.update(dataset="arrays", train={**c["train"], "data_dir": "../../etc/passwd"}))),
    # data
    "--image-size 0": Case([*TRAIN, "--dataset", "folder", "--data-dir", "{tmp}/images", "--image-size", "0",
                            "--out", "{tmp}/o"], "--image-size must be", image_folder),
    "--image-size -5": Case([*TRAIN, "--dataset", "folder", "--data-dir", "{tmp}/images", "--image-size", "-5",
                             "--out", "{tmp}/o"], "--image-size must be", image_folder),
    "digits --image-size 4": Case([*TRAIN, "--dataset", "digits", "--image-size", "4", "--out", "{tmp}/o"],
                                  "--image-size does not apply to the digits dataset"),
    "decompression bomb": Case([*TRAIN, "--dataset", "folder", "--data-dir", "{tmp}/images", "--out", "{tmp}/o"],
                               "bomb.png is too large", decompression_bomb),
    "unknown dataset": Case([*TRAIN, "--dataset", "digitz", "--out", "{tmp}/o"],
                            "unknown dataset 'digitz'. Did you mean 'digits'? Known datasets: arrays, colour-shapes"),
    "plugin dataset that returns no Dataset": Case(
        [*TRAIN, "--dataset", "unpacked", "--out", "{tmp}/o"],
        "dataset 'boards:unpacked': its loader load_unpacked returned dict, not a vaezoo.Dataset; fix the boards plugin",
        boards_plugin, ON_SITE),
    "mnist float pixels above 1": Case(
        [*TRAIN, "--dataset", "mnist", "--data-dir", "{tmp}/mnist", "--out", "{tmp}/o"],
        "train-images-idx3-ubyte.gz: float pixels must be finite and lie in [0, 1]",
        mnist_files(np.full((8, 28, 28), 3.0, dtype=">f4"), 0x0D)),
    "mnist without training images": Case(
        [*TRAIN, "--dataset", "mnist", "--data-dir", "{tmp}/mnist", "--out", "{tmp}/o"],
        "train-images-idx3-ubyte.gz holds no images", mnist_files(np.zeros((0, 28, 28), np.uint8))),
    "cvae labels out of range": Case(
        ["train", "cvae-mlp", "--quiet", "--epochs", "1", "--dataset", "arrays", "--data-dir", "{tmp}/data.npz",
         "--out", "{tmp}/o"], "training labels run 0..12, but this conditional model has 10 classes", labelled_arrays),
    "eval cvae on labels out of range": Case(["eval", "{tmp}/cvae", "--data-dir", "{tmp}/data.npz"],
                                            "this conditional model has 10 classes", conditional_run_on_relabelled_data),
    "reconstruct cvae on labels out of range": Case(
        ["reconstruct", "{tmp}/cvae", "--data-dir", "{tmp}/data.npz", "--out", "{tmp}/r.png"],
        "this conditional model has 10 classes", conditional_run_on_relabelled_data),
    # training settings
    "--lr 1e39": Case([*TRAIN, "--dataset", "digits", "--lr", "1e39", "--out", "{tmp}/o"], "lr must be a positive"),
    "--latent-dim 1000000000": Case([*TRAIN, "--dataset", "digits", "--latent-dim", "1000000000", "--out", "{tmp}/o"],
                                    "latent-dim must be at most"),
    "--set beta=nan": Case([*TRAIN, "--dataset", "digits", "--set", "beta=nan", "--out", "{tmp}/o"],
                           "beta must be a finite number"),
    "--set beta=Infinity": Case([*TRAIN, "--dataset", "digits", "--set", "beta=Infinity", "--out", "{tmp}/o"],
                                "beta must be a finite number"),
    "--optimizer-option momentun=0.9": Case(
        [*TRAIN, "--dataset", "digits", "--optimizer", "sgd", "--optimizer-option", "momentun=0.9", "--out", "{tmp}/o"],
        "sgd has no option 'momentun'"),
    "--schedule-option gamma with cosine": Case(
        [*TRAIN, "--dataset", "digits", "--schedule", "cosine", "--schedule-option", "gamma=0.5", "--out", "{tmp}/o"],
        "the cosine schedule has no option 'gamma'"),
    "--log wandb": Case([*TRAIN, "--dataset", "digits", "--log", "wandb", "--out", "{tmp}/o"],
                        "--log must be one of tensorboard, csv, mlflow, got 'wandb'"),
    "--warmup-steps -1": Case([*TRAIN, "--dataset", "digits", "--warmup-steps", "-1", "--out", "{tmp}/o"],
                              "warmup-steps must be a non-negative integer"),
    # config files
    "--config missing": Case(["train", "--config", "{tmp}/none.toml", "--out", "{tmp}/o"], "none.toml does not exist"),
    "--config misspelt key": Case(["train", "--config", "{tmp}/c.toml", "--out", "{tmp}/o"],
                                  "'batch_sise' is not a training setting; did you mean batch_size?",
                                  lambda tmp, run: (tmp / "c.toml").write_text('variant = "vae-mlp"\nbatch_sise = 8\n')),
    "--config broken TOML": Case(["train", "--config", "{tmp}/c.toml", "--out", "{tmp}/o"], "is not valid TOML",
                                 lambda tmp, run: (tmp / "c.toml").write_text("variant = \n")),
    "--config with --resume": Case([*RESUME, "--config", "{tmp}/c.toml"], "leave out --config",
                                   lambda tmp, run: (copy_run(tmp, run), (tmp / "c.toml").write_text(""))),
    "VAEZOO_BACKEND=fast": Case(["eval", "{run}"], "$VAEZOO_BACKEND must be one of", env={"VAEZOO_BACKEND": "fast"}),
    # where a run is written
    "train --out is a file": Case([*TRAIN, "--dataset", "digits", "--out", "{tmp}/file"], "is a file", a_file),
    "train into leftovers": Case([*TRAIN, "--dataset", "digits", "--out", "{tmp}/out"],
                                 "is not empty (it holds checkpoints/, metrics.jsonl)", leftovers),
    "train into a run": Case([*TRAIN, "--dataset", "digits", "--out", "{run}"], "already holds a run; add --resume"),
    "--resume nothing": Case([*TRAIN, "--dataset", "digits", "--out", "{tmp}/none", "--resume"], "does not exist"),
    "--resume --batch-size": Case([*RESUME, "--batch-size", "7"], "--batch-size (the run has 64, not 7)", copy_run),
    "--resume --lr --seed --set": Case([*RESUME, "--lr", "0.5", "--seed", "9", "--set", "beta=2"],
                                       "--lr (the run has 0.001, not 0.5); --set", copy_run),
    "--resume without checkpoints": Case(RESUME, "no checkpoint to resume from", weights_without_checkpoints),
    "--resume --device foo": Case([*RESUME, "--device", "foo"], "device must be", copy_run),
    "--resume hostile checkpoints": Case(
        RESUME, "every checkpoint", forge_checkpoints(lambda t, e: e["progress"].__setitem__("epoch", "x"))),
    "--resume checkpoint order out of range": Case(
        RESUME, "every checkpoint",
        forge_checkpoints(lambda t, e: t.__setitem__("data/order", t["data/order"] + 10**6))),
    # parts that cannot work together, and runs whose parts are not installed (issue 11)
    "free bits with a mixture prior": Case(
        [*TRAIN, "--dataset", "digits", "--set", "prior=mog", "--set", "free_bits=0.5", "--out", "{tmp}/o"],
        "objective 'vaezoo:elbo' needs the KL split into one term per latent dimension"),
    "vmf posterior with a Gaussian prior": Case(
        [*TRAIN, "--dataset", "digits", "--set", "posterior=vmf", "--out", "{tmp}/o"],
        "posterior 'vaezoo:vmf' cannot be used with prior 'vaezoo:standard-normal'"),
    "vae-gan with a temperature of 0": Case(
        ["train", "vae-gan-conv", "--quiet", "--dataset", "digits", "--set", "temperature=0", "--out", "{tmp}/o"],
        "temperature must be positive, got 0"),
    "tc with the ladder posterior": Case(
        ["train", "hvae-mlp", "--quiet", "--dataset", "digits", "--set", "objective=tc", "--out", "{tmp}/o"],
        "objective 'vaezoo:tc' needs log q(z_d|x)"),
    "eval of a run whose plugin is not installed": Case(
        ["eval", "{tmp}/run"], "distribution vaezoo-ghost 1.2, which is not installed: pip install 'vaezoo-ghost==1.2'",
        edit_config(lambda r: r["identity"]["prior"].update(name="ghost:shifted", distribution="vaezoo-ghost",
                                                            version="1.2"))),
    "sample from a run whose variant is not installed": Case(
        ["sample", "{tmp}/run", "--out", "{tmp}/s.png"], "pip install 'vaezoo-ghost==1.2'",
        edit_config(lambda r: r["identity"]["variant"].update(name="ghost:ghost-vae", distribution="vaezoo-ghost",
                                                              version="1.2"))),
    # branch evalstream: refused before any work or allocation (issue 21)
    "eval --disentanglement of a dataset without factors": Case(
        ["eval", "{run}", "--disentanglement"], "--disentanglement needs a dataset with ground-truth factors"),
    "eval --sample-quality with too few samples": Case(
        ["eval", "{run}", "--sample-quality", "--quality-samples", "5"], "--quality-samples must be at least 10"),
    "eval --nll-samples 10^9": Case(
        ["eval", "{run}", "--nll-samples", "1000000000"], "--nll-samples: the number of importance samples must be"),
    "eval --nll-samples 0": Case(["eval", "{run}", "--nll-samples", "0"], "must be a whole number in 1..1,000,000"),
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "run"
    config = TrainConfig(variant="vae-mlp", dataset="digits", out=str(out), epochs=1, batch_size=64,
                         overrides={"encoder.hidden_dims": [8], "decoder.hidden_dims": [8]})
    return train(config, progress=False)


@pytest.mark.parametrize("case", [pytest.param(case, id=name) for name, case in CASES.items()])
def test_a_user_error_is_one_clear_line(case: Case, trained_run: Path, tmp_path: Path):
    if case.setup is not None:
        case.setup(tmp_path, trained_run)
    argv = [a.format(run=trained_run, tmp=tmp_path) for a in case.argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           **{key: value.format(run=trained_run, tmp=tmp_path) for key, value in case.env.items()}}
    before = sorted(p.name for p in trained_run.iterdir())
    result = subprocess.run([sys.executable, "-m", "vaezoo", *argv], capture_output=True, text=True, env=env,
                            timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("vaezoo: error: ")]
    assert len(lines) == 1, result.stderr
    assert case.message in lines[0], lines[0]
    assert sorted(p.name for p in trained_run.iterdir()) == before  # the shared run is never touched
