"""Every user error is one clear line: the CLI exits 2 with `vaezoo: error: ...` naming the problem, and never
prints a traceback. Every case runs in-process (vaezoo.cli.main.main with the arguments); the few named in
END_TO_END run again as `python -m vaezoo` in a subprocess.

To add a case, add a row to CASES: the arguments after `vaezoo` (with {run}: a trained run directory shared by
every case, to read only; {tmp}: a fresh folder of this case's own), a fragment the error line must hold,
and optionally a `setup(tmp, run)` that makes the files the case needs and an `env` to add ({run} and {tmp}
are filled in there too; a PYTHONPATH there also goes on sys.path for the in-process run).
"""
from __future__ import annotations

import fcntl
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image
import torch
from hub_cache import lay_out, run_files
from plugin_sites import BOARDS, FILES, FakeSite, write_image_files
from plugin_sites import BOARDS, FILES, FakeSite, install_weights, write_image_files
from safetensors.torch import load, save

from vaezoo.runs import checkpoint as ckpt
from vaezoo.runs.sealed import seal
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


def huge_npy(path: Path) -> None:
    """A .npy file whose header promises 10^12 images of 64 x 64, with 4 KB of data."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (10**12, 64, 64)})
        f.write(bytes(4096))


def huge_npz(tmp: Path, run: Path) -> None:
    huge_npy(tmp / "x.npy")
    with zipfile.ZipFile(tmp / "huge.npz", "w") as archive:
        archive.write(tmp / "x.npy", "x.npy")


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
    """A run that trained two epochs and lost its checkpoints (after one epoch it would train again from the
    start: its first checkpoint may have failed to write)."""
    copy = copy_run(tmp, run)
    shutil.rmtree(copy / "checkpoints")
    with open(copy / "metrics.jsonl", "a") as f:
        f.write(json.dumps({**json.loads((copy / "metrics.jsonl").read_text().splitlines()[-1]), "epoch": 2}) + "\n")


def writes(name: str, text: str) -> Callable[[Path, Path], None]:
    """A set-up that writes `text` to {tmp}/name."""
    return lambda tmp, run: (tmp / name).write_text(text)


def two_epochs(tmp: Path, run: Path) -> None:
    train(TrainConfig(variant="vae-mlp", dataset="digits", out=str(tmp / "run"), epochs=2, batch_size=64,
                      overrides={"encoder.hidden_dims": [8], "decoder.hidden_dims": [8]}), progress=False)


def fifo_lock(tmp: Path, run: Path) -> None:
    lock = copy_run(tmp, run) / ".vaezoo.lock"
    lock.unlink(missing_ok=True)
    os.mkfifo(lock)


def logging_to(logger: str, plant: Callable[[Path], object]) -> Callable[[Path, Path], None]:
    """A copy of the run that logs to `logger`, with `plant(run)` in its way."""
    def setup(tmp: Path, run: Path) -> None:
        edit_config(lambda c: c["train"].__setitem__("log", [logger]))(tmp, run)
        plant(tmp / "run")
    return setup


foreign_csv = logging_to("csv", lambda run: (run / "metrics.csv").write_text("name,age\nx,3\n"))
foreign_mlruns = logging_to("mlflow", lambda run: (run / "mlruns").write_text("not a store"))
HELD: list[int] = []  # lock descriptors this process holds, as a training run under way would


def held_lock(tmp: Path, run: Path) -> None:
    HELD.append(os.open(copy_run(tmp, run) / ".vaezoo.lock", os.O_RDWR | os.O_CREAT))
    fcntl.flock(HELD[-1], fcntl.LOCK_EX | fcntl.LOCK_NB)


def a_file(tmp: Path, run: Path) -> None:
    (tmp / "file").write_text("not a directory")


def boards_plugin(tmp: Path, run: Path) -> None:
    """The `boards` plugin (tests/plugin_sites.py) installed into {tmp}/site, which ON_SITE puts on the path."""
    site = FakeSite(tmp / "site")
    site.root.mkdir()
    site.install("vaezoo-boards", BOARDS, plugin="boards")


def files_plugin_with_a_damaged_file(tmp: Path, run: Path) -> None:
    """The `files` plugin (tests/plugin_sites.py) installed into {tmp}/site, reading {tmp}/images, of which one
    file (a training image) is damaged."""
    site = FakeSite(tmp / "site")
    site.root.mkdir()
    site.install("vaezoo-files", FILES, plugin="files")
    (write_image_files(tmp / "images") / "0090.npy").write_bytes(b"\x93NUMPY garbage")


def shipped_weights(damage: bool = False) -> Callable[[Path, Path], None]:
    """The shared run shipped as weights vae-mlp/digits by a distribution installed into {tmp}/site (ON_SITE);
    with `damage`, its model.safetensors changed after it was registered."""
    def setup(tmp: Path, run: Path) -> None:
        site = FakeSite(tmp / "site")
        site.root.mkdir()
        shipped = install_weights(site, run, "vae-mlp/digits")
        if damage:
            data = bytearray((shipped / "model.safetensors").read_bytes())
            data[-1] ^= 1
            (shipped / "model.safetensors").write_bytes(bytes(data))
    return setup


ON_SITE = {"PYTHONPATH": os.pathsep.join(filter(None, ["{tmp}/site", os.environ.get("PYTHONPATH")]))}


RESUME = ["train", "vae-mlp", "--dataset", "digits", "--out", "{tmp}/run", "--resume", "--quiet"]

# (branch numbers) a plugin posterior whose why_not offers every feature but that has no moments method, and an
# objective that needs a feature vaezoo does not know
PROMISING = """
import torch
from vaezoo import Latent, Posterior, hookimpl
from vaezoo.components.objectives.elbo import ELBO

class Promising(Posterior):
    def draw(self, params, prior, samples=None):
        return Latent(params[0], torch.zeros(len(params[0])), torch.zeros(len(params[0])))

    def mean(self, params, prior):
        return params[0]

    def why_not(self, feature, prior):
        return None

class Greedy(ELBO):
    def needs(self):
        return frozenset({"entropy"})

@hookimpl
def vaezoo_register_posteriors(register):
    register("promising", Promising)

@hookimpl
def vaezoo_register_objectives(register):
    register("greedy", Greedy)
"""


def promising_plugin(tmp: Path, run: Path) -> None:
    site = FakeSite(tmp / "site")
    site.root.mkdir()
    site.install("vaezoo-promising", PROMISING, plugin="promising")



# -- set-ups of branch trust: pickles, checksums and non-finite weights (issue 21) -------------------------------

def pickled_hand_built(tmp: Path, run: Path) -> None:
    """A copy of the run rewritten as a hand-built run saved as a pickle (whose contents never matter: it is
    refused unread)."""
    path = copy_run(tmp, run) / "config.json"
    record = json.loads(path.read_text())
    del record["identity"]
    path.write_text(json.dumps({**record, "variant": "hand-built", "architecture": "model.pt"}))
    (tmp / "run" / "model.pt").write_bytes(b"never read")


def edit_weights(edit: Callable[[dict], dict], sealed: bool = True, format: int | None = None
                 ) -> Callable[[Path, Path], None]:
    """A copy of the run whose weights are `edit(tensors)`, written sealed (a forger's checksum) or without one,
    and its config's format number set to `format` when given."""
    def setup(tmp: Path, run: Path) -> None:
        path = copy_run(tmp, run) / "model.safetensors"
        tensors = edit(load(path.read_bytes()))
        path.write_bytes(seal(tensors) if sealed else save(tensors))
        if format is not None:
            config = tmp / "run" / "config.json"
            config.write_text(json.dumps({**json.loads(config.read_text()), "format": format}))
    return setup


def flip_a_weight_bit(tmp: Path, run: Path) -> None:
    path = copy_run(tmp, run) / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    path.write_bytes(bytes(data))


def hand_built_record_naming(cls: str) -> Callable[[Path, Path], None]:
    """A hand-built run (fitted here, recorded without pickle) whose record names `cls` as the encoder's class,
    with a forger's checksum."""
    def setup(tmp: Path, run: Path) -> None:
        import vaezoo

        model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=2, hidden_dims=[8])
        model.config = {}
        vaezoo.fit(model, torch.rand(32, 1, 8, 8), epochs=1, out=tmp / "run")
        path = tmp / "run" / "architecture.safetensors"
        data = path.read_bytes()
        tree = json.loads(json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]["vaezoo"])
        tree["modules"]["encoder"]["class"] = cls
        path.write_bytes(seal({}, json.dumps(tree)))
    return setup

# branch ldmparts (issue 22): a diffusers AutoencoderKL directory, written by vaezoo's exporter, then spoiled
def diffusers_dir(config_edit: Callable[[dict], None] | None = None,
                  weights_edit: Callable[[dict], dict] | None = None) -> Callable[[Path, Path], None]:
    def setup(tmp: Path, run: Path) -> None:
        from vaezoo import create_model
        from vaezoo.runs.diffusers_format import write_diffusers

        model = create_model("autoencoder-kl", input_shape=(3, 8, 8), block_out_channels=[8, 8], norm_num_groups=4)
        folder = write_diffusers(model, tmp / "vae")
        if config_edit is not None:
            config = json.loads((folder / "config.json").read_text())
            config_edit(config)
            (folder / "config.json").write_text(json.dumps(config))
        if weights_edit is not None:
            weights = folder / "diffusion_pytorch_model.safetensors"
            weights.write_bytes(save(weights_edit(load(weights.read_bytes()))))
    return setup


def pickled_diffusers_dir(tmp: Path, run: Path) -> None:
    diffusers_dir()(tmp, run)
    (tmp / "vae" / "diffusion_pytorch_model.safetensors").rename(tmp / "vae" / "diffusion_pytorch_model.bin")


EXPORT = ["export", "{tmp}/vae", "--format", "diffusers", "--out", "{tmp}/out"]
LDM = ["train", "autoencoder-kl", "--quiet", "--epochs", "1", "--dataset", "digits", "--out", "{tmp}/o",
       "--set", "norm_num_groups=4"]
def with_gmm(change: Callable[[Path], None] | None = None) -> Callable[[Path, Path], None]:
    """A copy of the run with a gmm sampler fitted to it (samplers branch), then `change(copy)`."""
    def setup(tmp: Path, run: Path) -> None:
        from vaezoo.analysis.samplers import fit_sampler

        copy = copy_run(tmp, run)
        fit_sampler(copy, "gmm", epochs=2, options={"components": 2})
        if change is not None:
            change(copy)
    return setup


def flip_a_sampler_bit(run: Path) -> None:
    path = run / "samplers" / "gmm.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    path.write_bytes(bytes(data))


def train_further(run: Path) -> None:
    """New weights (sealed as vaezoo writes them) under the sampler fitted to the old ones."""
    path = run / "model.safetensors"
    path.write_bytes(seal({k: v * 1.01 for k, v in load(path.read_bytes()).items()}))


CASES = {
    # devices, counts and output paths of the commands on a run
    "eval --nll-examples 0": Case(["eval", "{run}", "--nll-examples", "0"], "--nll-examples must be a whole number of at least 1, got 0"),
    "eval --device foo": Case(["eval", "{run}", "--device", "foo"], "device must be cpu, cuda or cuda:N"),
    "eval --device cuda:99": Case(["eval", "{run}", "--device", "cuda:99"], "device cuda:99 was asked for"),
    "sample --device foo": Case(["sample", "{run}", "--device", "foo", "--out", "{tmp}/s.png"], "device must be"),
    "sample --device cuda:99": Case(["sample", "{run}", "--device", "cuda:99", "--out", "{tmp}/s.png"], "cuda:99"),
    "reconstruct --device foo": Case(["reconstruct", "{run}", "--device", "foo", "--out", "{tmp}/r.png"], "device must"),
    "sample --n 0": Case(["sample", "{run}", "--n", "0", "--out", "{tmp}/s.png"], "--n must be a whole number of at least 1"),
    "sample --n -1": Case(["sample", "{run}", "--n", "-1", "--out", "{tmp}/s.png"], "--n must be a whole number of at least 1"),
    "reconstruct --n -1": Case(["reconstruct", "{run}", "--n", "-1", "--out", "{tmp}/r.png"], "--n must be a whole number of at least 1"),
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
        "dataset 'boards:unpacked': its loader load_unpacked returned dict, not vaezoo Splits or a vaezoo.Dataset; "
        "fix the boards plugin",
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
    "--log neptune": Case([*TRAIN, "--dataset", "digits", "--log", "neptune", "--out", "{tmp}/o"],
                          "--log must be one of tensorboard, csv, mlflow, wandb, got 'neptune'"),
    "--warmup-steps -1": Case([*TRAIN, "--dataset", "digits", "--warmup-steps", "-1", "--out", "{tmp}/o"],
                              "--warmup-steps must be a whole number of at least 0"),
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
                                       "--lr (the run has 0.001, not 0.5); --seed (the run has 0, not 9)", copy_run),
    "--resume without checkpoints": Case(RESUME, "no checkpoint to resume from", weights_without_checkpoints),
    "--resume --device foo": Case([*RESUME, "--device", "foo"], "device must be", copy_run),
    "--resume hostile checkpoints": Case(
        RESUME, "every checkpoint", forge_checkpoints(lambda t, e: e["progress"].__setitem__("epoch", "x"))),
    "--resume checkpoint with a stored data order": Case(
        RESUME, "every checkpoint",
        forge_checkpoints(lambda t, e: t.__setitem__("data/order", torch.arange(10)))),
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
    # (branch numbers) issue 21: a feature the posterior offers but does not implement is refused at build
    "dip with a posterior that offers moments it does not have": Case(
        [*TRAIN, "--dataset", "digits", "--set", "objective=dip", "--set", "posterior=promising", "--out", "{tmp}/o"],
        "posterior 'promising:promising' with prior 'vaezoo:standard-normal' offers it (its why_not gives no "
        "reason), but fails on one example: NotImplementedError", promising_plugin, ON_SITE),
    # branch config (issue 21): typed config files, bounded reads
    **{f"config file {name}": Case(["train", "--config", "{tmp}/c" + suffix, "--out", "{tmp}/o"], message,
                                   writes("c" + suffix, text))
       for name, suffix, text, message in [
           ("bf16 as a string", ".toml", 'bf16 = "false"', "bf16 must be true or false, got 'false'"),
           ("compile as a string", ".toml", 'compile = "no"', "compile must be true or false"),
           ("clip_grad as a boolean", ".toml", "clip_grad = true", "clip_grad must be a number"),
           ("data_dir as a number", ".toml", "data_dir = 3", "data_dir must be a string or unset"),
           ("out as a list", ".toml", 'out = ["x"]', "out must be a string or unset"),
           ("integer key", ".yaml", "variant: vae-mlp\n1: 2\n", "key 1 is not a string but int"),
           ("null key", ".yaml", "set:\n  ~: 2\n", "key None in set is not a string but NoneType"),
           ("self-referential alias", ".yaml", "a: &a [*a]\n", "anchors and aliases (&NAME, *NAME) are not accepted"),
           ("set and overrides", ".toml", "overrides = { beta = 2 }\n[set]\nbeta = 3\n",
            "the file has both: keep one table, named set"),
       ]},
    "config file /dev/zero": Case(["train", "--config", "/dev/zero", "--out", "{tmp}/o"],
                                  "config file /dev/zero: the file must end in .toml"),
    # branch config (issue 21): runs resume after failed writes, and eval does not write into a training run
    "--resume --epochs fewer than trained": Case([*RESUME, "--epochs", "1"], "--epochs 1 is fewer than the 2 epochs",
                                                 two_epochs),
    "lock file that is a FIFO": Case(RESUME, "is not a regular file (vaezoo's lock file is one); remove it",
                                     fifo_lock),
    "eval --sample-quality of a run still training": Case(
        ["eval", "{tmp}/run", "--sample-quality"], "(a vaezoo run writing there); wait for it to finish, then evaluate",
        held_lock),
    "--resume --log csv over a foreign metrics.csv": Case(
        [*RESUME, "--epochs", "2"], "metrics.csv is not what --log csv writes", foreign_csv),
    "--resume --log mlflow over a file named mlruns": Case(
        [*RESUME, "--epochs", "2"], "mlruns is not what --log mlflow writes", foreign_mlruns),
    # branch config (issue 21): datasets are identities, flags a dataset does not take are refused
    "eval of a run whose dataset plugin is not installed": Case(
        ["eval", "{tmp}/run"], "distribution vaezoo-ghost 1.2, which is not installed: pip install 'vaezoo-ghost==1.2'",
        edit_config(lambda r: r.update(dataset="ghosts", dataset_identity={
            "name": "ghost:ghosts", "distribution": "vaezoo-ghost", "version": "1.2"}))),
    "--resume of a run whose variant plugin is not installed": Case(
        [*RESUME, "--epochs", "2"], "pip install 'vaezoo-ghost==1.2'",
        edit_config(lambda r: r["identity"]["variant"].update(name="ghost:ghost-vae", distribution="vaezoo-ghost",
                                                              version="1.2"))),
    "--dataset digits --data-dir": Case([*TRAIN, "--dataset", "digits", "--data-dir", "/etc", "--out", "{tmp}/o"],
                                        "the digits dataset reads no files and takes no --data-dir"),
    "--data-option a loader does not take": Case(
        [*TRAIN, "--dataset", "digits", "--data-option", "colour=1", "--out", "{tmp}/o"],
        "--data-option colour does not apply to the digits dataset"),
    "--image-size and --data-option disagree": Case(
        [*TRAIN, "--dataset", "folder", "--image-size", "4", "--data-option", "image_size=5", "--out", "{tmp}/o"],
        "--image-size 4 and --data-option image_size=5 disagree"),
    # branch trust: nothing is unpickled unless asked, every byte read is checked, no non-finite result (issue 21)
    "eval of a zoo run whose config names model.pt": Case(
        ["eval", "{tmp}/run"], "and also a hand-built model's model.pt; a run has one or the other",
        edit_config(lambda c: c.__setitem__("architecture", "model.pt"))),
    "sample of a pickled run without --trust-pickle": Case(
        ["sample", "{tmp}/run", "--out", "{tmp}/s.png"], "unpickling runs any code the file holds; if you trust",
        pickled_hand_built),
    "eval of weights changed on disk": Case(["eval", "{tmp}/run"], "checksum mismatch", flip_a_weight_bit),
    "sample of weights replaced without a checksum": Case(
        ["sample", "{tmp}/run", "--out", "{tmp}/s.png"], "carries no checksum, which every run of format 2 has",
        edit_weights(lambda t: t, sealed=False)),
    "eval of NaN weights under a forged checksum": Case(
        ["eval", "{tmp}/run"], "holds NaN or infinity in",
        edit_weights(lambda t: {k: torch.full_like(v, float("nan")) for k, v in t.items()})),
    "eval of an old run whose decoder overflows": Case(
        ["eval", "{tmp}/run", "--nll-samples", "2"], "is non-finite (elbo, recon",
        edit_weights(lambda t: {k: v * 1e30 if k.startswith("decoder") else v for k, v in t.items()}, sealed=False,
                     format=1)),
    "eval of an old run whose encoder overflows": Case(
        ["eval", "{tmp}/run", "--nll-samples", "2"], "active units are undefined",
        edit_weights(lambda t: {k: v * 1e30 for k, v in t.items()}, sealed=False, format=1)),
    "sample of a hand-built run whose record names a function": Case(
        ["sample", "{tmp}/run", "--out", "{tmp}/s.png"], "os:system (the class of encoder) is not a Module class",
        hand_built_record_naming("os:system")),
    "an objective that needs an unknown posterior feature": Case(
        [*TRAIN, "--dataset", "digits", "--set", "objective=greedy", "--out", "{tmp}/o"],
        "objective 'promising:greedy' needs the posterior feature 'entropy', which vaezoo does not know",
        promising_plugin, ON_SITE),
    # branch data (issue 20): the streaming data layer
    "--workers -1": Case([*TRAIN, "--dataset", "digits", "--workers", "-1", "--out", "{tmp}/o"],
                         "--workers must be a whole number of at least 0, got -1"),
    "a damaged file read by a worker": Case(
        [*TRAIN, "--dataset", "files", "--data-dir", "{tmp}/images", "--workers", "2", "--batch-size", "10",
         "--out", "{tmp}/o"], "0090.npy is not a readable .npy file", files_plugin_with_a_damaged_file, ON_SITE),
    # dataset sources (sources branch)
    ".npy header promising 10^12 images": Case(
        [*TRAIN, "--dataset", "arrays", "--data-dir", "{tmp}/huge.npy", "--out", "{tmp}/o"],
        "huge.npy: its header promises 1000000000000 x 64 x 64 uint8", lambda tmp, run: huge_npy(tmp / "huge.npy")),
    ".npz member header promising 10^12 images": Case(
        [*TRAIN, "--dataset", "arrays", "--data-dir", "{tmp}/huge.npz", "--out", "{tmp}/o"],
        "the header of x.npy promises 1000000000000 x 64 x 64 uint8", huge_npz),
    ".npy in Fortran order": Case(
        [*TRAIN, "--dataset", "arrays", "--data-dir", "{tmp}/f.npy", "--out", "{tmp}/o"],
        "f.npy is stored in Fortran order", lambda tmp, run: np.save(tmp / "f.npy", np.asfortranarray(np.zeros((4, 8, 8))))),
    # branch evalstream: refused before any work or allocation (issue 21)
    "eval --disentanglement of a dataset without factors": Case(
        ["eval", "{run}", "--disentanglement"], "--disentanglement needs a dataset with ground-truth factors"),
    "eval --sample-quality with too few samples": Case(
        ["eval", "{run}", "--sample-quality", "--quality-samples", "5"], "--quality-samples must be a whole number of at least 10"),
    "eval --nll-samples 10^9": Case(
        ["eval", "{run}", "--nll-samples", "1000000000"], "--nll-samples: the number of importance samples must be"),
    "eval --nll-samples 0": Case(["eval", "{run}", "--nll-samples", "0"], "must be a whole number in 1..1,000,000"),
    # branch ldmloss: the latent-diffusion objective (issue 22)
    "ldm objective's domain features on unlabelled data": Case(
        ["train", "vae-conv", "--quiet", "--epochs", "1", "--set", "objective=ldm", "--set",
         "objective.discriminator_layers=1", "--dataset", "arrays", "--data-dir", "{tmp}/x.npy", "--out", "{tmp}/o"],
        "give labelled data (fit(model, (x, y))), or set objective.perceptual=none",
        lambda tmp, run: np.save(tmp / "x.npy", np.random.default_rng(0).random((16, 8, 8)).astype(np.float32))),
    "ldm objective asked for LPIPS, which is not installed": Case(
        [*TRAIN, "--dataset", "digits", "--set", "objective=ldm", "--set", "objective.perceptual=lpips",
         "--set", "objective.discriminator_layers=1", "--out", "{tmp}/o"],
        "perceptual='lpips' cannot run here: the 'lpips' package is not installed"),
    "ldm objective's patch discriminator deeper than the images allow": Case(
        [*TRAIN, "--dataset", "digits", "--set", "objective=ldm", "--set", "objective.discriminator_layers=3",
         "--out", "{tmp}/o"],
        "a patch discriminator of 3 layers needs images of at least 24 pixels a side, got 8x8"),
    # branch ldmparts (issue 22): latent-diffusion parts and diffusers directories
    "ldm parts on images the downsampling does not divide": Case(
        [*LDM, "--set", "block_out_channels=[4,4,4,4,4]"], "height 8 -> 16"),
    "ldm parts with a latent_dim of their own": Case(
        [*LDM, "--latent-dim", "16", "--set", "block_out_channels=[4,4]"], "sets latent_dim from the input shape"),
    "ldm encoder for a posterior it cannot serve": Case(
        [*LDM, "--set", "block_out_channels=[4,4]", "--set", "posterior=vmf", "--set", "prior=uniform-sphere"],
        "encoder 'vaezoo:ldm' cannot give posterior 'vaezoo:vmf' its parameters"),
    "ldm latents quantized across positions": Case(
        [*LDM, "--set", "block_out_channels=[4,4]", "--set", "posterior=vq", "--set", "prior=codebook",
         "--set", "prior.code_dim=2"], "groups the code in vectors of code_dim=2 numbers"),
    "diffusers dir: a weight missing": Case(
        EXPORT, "has no weight 'decoder.conv_in.bias'",
        diffusers_dir(weights_edit=lambda t: {k: v for k, v in t.items() if k != "decoder.conv_in.bias"})),
    "diffusers dir: an extra weight": Case(
        EXPORT, "holds the weight 'encoder.extra.weight'",
        diffusers_dir(weights_edit=lambda t: {**t, "encoder.extra.weight": torch.zeros(2)})),
    "diffusers dir: a weight of the wrong shape": Case(
        EXPORT, "weight 'quant_conv.weight' is shaped [8, 8, 3, 3]",
        diffusers_dir(weights_edit=lambda t: {**t, "quant_conv.weight": torch.zeros(8, 8, 3, 3)})),
    "diffusers dir: an unsupported block type": Case(
        EXPORT, "down_block_types[1] is 'AttnDownEncoderBlock2D'",
        diffusers_dir(lambda c: c["down_block_types"].__setitem__(1, "AttnDownEncoderBlock2D"))),
    "diffusers dir: a config key vaezoo cannot map": Case(
        EXPORT, "key 'norm_type' is not an AutoencoderKL setting", diffusers_dir(lambda c: c.update(norm_type="spatial"))),
    "diffusers dir: per-channel latent statistics": Case(
        EXPORT, "latents_mean is set", diffusers_dir(lambda c: c.update(latents_mean=[0.0] * 4))),
    "diffusers dir: another class": Case(
        EXPORT, "_class_name is 'VQModel'", diffusers_dir(lambda c: c.update(_class_name="VQModel"))),
    "diffusers dir with pickled weights only": Case(
        EXPORT, "vaezoo never reads pickled weights", pickled_diffusers_dir),
    "export of a model diffusers cannot hold": Case(
        ["export", "{run}", "--format", "diffusers", "--out", "{tmp}/out"],
        "an AutoencoderKL holds the ldm encoder; this model's encoder is MLPEncoder"),
    "export of an activation diffusers does not build": Case(
        EXPORT, "act_fn is 'elu', which diffusers' AutoencoderKL does not build",
        diffusers_dir(lambda c: c.update(act_fn="elu"))),
    "reconstruct --tile of a model without ldm parts": Case(
        ["reconstruct", "{run}", "--tile", "4", "--out", "{tmp}/r.png"],
        "tiled reconstruction needs the ldm encoder and decoder; this model has MLPEncoder and MLPDecoder"),
    "reconstruct --overlap without --tile": Case(
        ["reconstruct", "{run}", "--overlap", "4", "--out", "{tmp}/r.png"], "--overlap is the overlap of the tiles"),
    "export into a folder that holds files": Case(
        ["export", "{tmp}/vae", "--format", "diffusers", "--out", "{tmp}/vae"], "is not an empty folder",
        diffusers_dir()),
    # branch thincli: the library names the setting, the command line its flag
    "arithmetic --b out of range": Case(["arithmetic", "{run}", "--a", "0", "--b", "9999", "--c", "1", "--out",
                                         "{tmp}/a.png"], "--b 9999 is out of range: the held-out set has examples"),
    "traverse --dims out of range": Case(["traverse", "{run}", "--dims", "0", "99", "--out", "{tmp}/t.png"],
                                         "--dims must be in 0..19, got [0, 99]"),
    "--resume --epochs 0": Case([*RESUME, "--epochs", "0"], "--epochs must be a whole number of at least 1, got 0",
                                copy_run),
    # opcall
    "bench --threads 0": Case(["bench", "--threads", "0"], "--threads must be a whole number at least 1, got 0"),
    # samplers branch (issue 24): samplers fitted to a run, stored in it, refused when they do not belong to it
    "sample --sampler gmm never fitted": Case(
        ["sample", "{run}", "--sampler", "gmm", "--out", "{tmp}/s.png"],
        "has no fitted 'gmm' sampler; fit one first: vaezoo fit-sampler"),
    "sample --sampler gmm changed on disk": Case(
        ["sample", "{tmp}/run", "--sampler", "gmm", "--out", "{tmp}/s.png"],
        "gmm.safetensors is corrupt or was changed (checksum mismatch", with_gmm(flip_a_sampler_bit)),
    "sample --sampler gmm fitted to other weights": Case(
        ["sample", "{tmp}/run", "--sampler", "gmm", "--out", "{tmp}/s.png"],
        "was fitted to other weights than", with_gmm(train_further)),
    "eval --sample-quality --sampler flow never fitted": Case(
        ["eval", "{run}", "--sample-quality", "--sampler", "flow"], "has no fitted 'flow' sampler"),
    "eval --sampler without --sample-quality": Case(["eval", "{run}", "--sampler", "gmm"],
                                                    "--sampler gmm chooses whose draws --sample-quality scores"),
    "sample --sampler gmn": Case(["sample", "{run}", "--sampler", "gmn", "--out", "{tmp}/s.png"],
                                 "unknown sampler 'gmn'. Did you mean 'gmm'"),
    "fit-sampler pixelcnn of a Gaussian posterior": Case(
        ["fit-sampler", "{run}", "--sampler", "pixelcnn"],
        "sampler 'vaezoo:pixelcnn' cannot be fitted to the codes of posterior 'vaezoo:gaussian'"),
    "fit-sampler prior": Case(["fit-sampler", "{run}", "--sampler", "prior"], "it has nothing to fit"),
    "fit-sampler --epochs 0": Case(["fit-sampler", "{run}", "--sampler", "gmm", "--epochs", "0"],
                                   "--epochs must be a positive integer, got 0"),
    "fit-sampler --set an option it lacks": Case(["fit-sampler", "{run}", "--sampler", "gmm", "--set", "colours=2"],
                                                 "sampler 'vaezoo:gmm' has no option 'colours'; it accepts components"),
    "fit-sampler --set components=0": Case(["fit-sampler", "{run}", "--sampler", "gmm", "--set", "components=0"],
                                           "components must be a positive int, got 0"),
    "fit-sampler with more components than codes": Case(
        ["fit-sampler", "{run}", "--sampler", "gmm", "--set", "components=2000"],
        "1500 codes cannot fit 2000 mixture components"),
    # branch weights (issue 23): pretrained:VARIANT/DATASET
    "pretrained weights whose file changed": Case(
        ["sample", "pretrained:vae-mlp/digits", "--out", "{tmp}/s.png"], "not the registered",
        shipped_weights(damage=True), ON_SITE),
    "unknown pretrained weights": Case(
        ["eval", "pretrained:vae-mpl/digits"], "no pretrained weights pretrained:vae-mpl/digits. Did you mean "
        "pretrained:vae-mlp/digits", shipped_weights(), ON_SITE),
    "pretrained weights when none are installed": Case(
        ["sample", "pretrained:vae-conv/fashion-mnist", "--out", "{tmp}/s.png"], "no pretrained weights are installed",
        env={"VAEZOO_DISABLE_PLUGINS": "weights"}),
    "pretrained without VARIANT/DATASET": Case(
        ["reconstruct", "pretrained:vae-mlp", "--out", "{tmp}/s.png"], "name pretrained weights as pretrained:VARIANT/DATASET"),
    "eval --sample-quality of shipped weights": Case(
        ["eval", "pretrained:vae-mlp/digits", "--sample-quality"], "pretrained:vae-mlp/digits is read-only",
        shipped_weights(), ON_SITE),
    # famB branch (issue 24): flow posteriors
    "planar posterior with no layers": Case(
        ["train", "planar-vae-mlp", "--quiet", "--dataset", "digits", "--set", "posterior.layers=0", "--out", "{tmp}/o"],
        "building posterior 'vaezoo:planar' with options {'layers': 0} for input_shape (1, 8, 8) and latent_dim 20 "
        "failed: layers must be a positive int, got 0"),
    "radial posterior with a fractional layer count": Case(
        ["train", "radial-vae-mlp", "--quiet", "--dataset", "digits", "--set", "posterior.layers=2.5", "--out",
         "{tmp}/o"], "layers must be a positive int, got 2.5"),
    "hamiltonian objective with an initial temperature above 1": Case(
        ["train", "hamiltonian-vae-mlp", "--quiet", "--dataset", "digits", "--set", "objective.initial_beta=1.5",
         "--out", "{tmp}/o"], "initial_beta must be in (0, 1) and tempered true or false, got 1.5, True"),
    "hamiltonian objective on the sphere": Case(
        ["train", "hamiltonian-vae-mlp", "--quiet", "--dataset", "digits", "--set", "posterior=vmf", "--set",
         "prior=uniform-sphere", "--out", "{tmp}/o"],
        "objective 'vaezoo:hamiltonian' cannot be used with prior 'vaezoo:uniform-sphere': its leapfrog steps move z "
        "through R^d along the gradient of log p(x, z), and the prior is on sphere"),
    "Poincaré posterior and prior of different curvatures": Case(
        ["train", "pvae-mlp", "--quiet", "--dataset", "digits", "--set", "posterior.curvature=0.5", "--out", "{tmp}/o"],
        "posterior 'vaezoo:wrapped-normal' cannot be used with prior 'vaezoo:poincare': the posterior's ball has "
        "curvature -0.5, the prior's -1.0; give both the same curvature"),
    "Poincaré ball of curvature zero": Case(
        ["train", "pvae-mlp", "--quiet", "--dataset", "digits", "--set", "prior.curvature=0", "--out", "{tmp}/o"],
        "curvature must be a positive number (the ball's curvature is -curvature), got 0"),
    "a Gaussian posterior with the Poincaré prior": Case(
        [*TRAIN, "--dataset", "digits", "--set", "prior=poincare", "--out", "{tmp}/o"],
        "posterior 'vaezoo:gaussian' cannot be used with prior 'vaezoo:poincare': it needs a prior on euclidean; "
        "the prior is on poincare"),
}


# -- branch hubdocs: runs on the Hugging Face Hub (hf://ORG/NAME), from a cache laid out in tmp, offline --------

OFFLINE_HUB = {"HF_HUB_CACHE": "{tmp}/hub", "HF_HOME": "{tmp}/hf-home", "HF_HUB_OFFLINE": "1"}


def on_the_hub(change: Callable[[dict], None] | None = None) -> Callable[[Path, Path], None]:
    """The run (its config changed by `change`) as the cached Hub repository someone/run."""
    def setup(tmp: Path, run: Path) -> None:
        if change is None:
            copy_run(tmp, run)
        else:
            edit_config(change)(tmp, run)
        lay_out(tmp / "hub", "someone/run", run_files(tmp / "run"))
    return setup


def from_a_missing_plugin(config: dict) -> None:
    config["identity"]["encoder"] = {"name": "vaezoo-extras:mlp", "distribution": "vaezoo-extras", "version": "1.0"}


def pickled(config: dict) -> None:
    config.update(variant="hand-built", architecture="model.pt")
    del config["identity"]


CASES.update({
    "sample hf:// not in the cache, offline": Case(["sample", "hf://someone/absent", "--out", "{tmp}/s.png"],
                                                   "is not in the local Hugging Face cache", env=OFFLINE_HUB),
    "sample hf:// without a NAME": Case(["sample", "hf://someone", "--out", "{tmp}/s.png"],
                                        "does not name a Hub repository: write hf://ORG/NAME", env=OFFLINE_HUB),
    "sample hf:// run of a plugin not installed": Case(
        ["sample", "hf://someone/run", "--out", "{tmp}/s.png"], "pip install 'vaezoo-extras==1.0'",
        on_the_hub(from_a_missing_plugin), env=OFFLINE_HUB),
    "sample hf:// run saved as a pickle": Case(
        ["sample", "hf://someone/run", "--trust-pickle", "--out", "{tmp}/s.png"], "never unpickles what it downloads",
        on_the_hub(pickled), env=OFFLINE_HUB),
    "eval --sample-quality writing into an hf:// run": Case(
        ["eval", "hf://someone/run", "--sample-quality"], "downloaded from the Hugging Face Hub into its cache",
        on_the_hub(), env=OFFLINE_HUB),
    "push to ORG/NAME@REVISION": Case(["push", "{run}", "someone/x@main"], "without @REVISION"),
    "push without the network": Case(["push", "{run}", "someone/x"], "cannot push", env=OFFLINE_HUB),
    "push a run saved as a pickle": Case(["push", "{tmp}/run", "someone/x"], "cannot be published",
                                         edit_config(pickled)),
})


# -- famA branch (issue 24): the controlled-capacity and sliced-Wasserstein objectives --------------------------
CASES.update({
    "capacity objective's discrete capacity on Gaussian latents": Case(
        [*TRAIN, "--dataset", "digits", "--set", "objective=capacity", "--set", "objective.discrete_capacity=5",
         "--out", "{tmp}/o"],
        "objective 'vaezoo:capacity' needs the KL split into its continuous and discrete parts"),
    "capacity objective's negative capacity_steps": Case(
        [*TRAIN, "--dataset", "digits", "--set", "objective=capacity", "--set", "objective.capacity_steps=-5",
         "--out", "{tmp}/o"], "capacity_steps must be a non-negative int (steps), got -5"),
    "swae objective with no projections": Case(
        [*TRAIN, "--dataset", "digits", "--set", "objective=swae", "--set", "objective.projections=0",
         "--out", "{tmp}/o"], "projections must be a positive int, got 0"),
    "ms-ssim likelihood's alpha above 1": Case(
        [*TRAIN, "--dataset", "digits", "--set", "likelihood=ms-ssim", "--set", "likelihood.alpha=2",
         "--out", "{tmp}/o"], "alpha must be a number in [0, 1] (the weight of 1 - MS-SSIM), got 2"),
    "dfc objective's feature network on unlabelled data": Case(
        ["train", "dfc-vae-conv", "--quiet", "--epochs", "1", "--dataset", "arrays", "--data-dir", "{tmp}/x.npy",
         "--out", "{tmp}/o"], "give labelled data (fit(model, (x, y))), or set objective.feature_weight=0",
        lambda tmp, run: np.save(tmp / "x.npy", np.random.default_rng(0).random((16, 8, 8)).astype(np.float32))),
})


# -- evalcfg branch (issue 25): runs vaezoo only reads carry no fitted samplers, and are refused as read-only -----
CASES.update({
    "sample --sampler gmm of an hf:// run": Case(
        ["sample", "hf://someone/run", "--sampler", "gmm", "--out", "{tmp}/s.png"],
        "hf://someone/run is a run downloaded from the Hugging Face Hub: read-only, and it carries no fitted "
        "samplers; to draw through 'gmm', copy it to a folder of yours (cp -rL", on_the_hub(), env=OFFLINE_HUB),
    "sample --sampler gmm of shipped weights": Case(
        ["sample", "pretrained:vae-mlp/digits", "--sampler", "gmm", "--out", "{tmp}/s.png"],
        "pretrained:vae-mlp/digits is shipped weights: read-only, and it carries no fitted samplers; to draw through "
        "'gmm', copy it to a folder of yours (cp -rL", shipped_weights(), ON_SITE),
    "fit-sampler of shipped weights": Case(["fit-sampler", "pretrained:vae-mlp/digits", "--sampler", "gmm"],
                                           "pretrained:vae-mlp/digits is read-only", shipped_weights(), ON_SITE),
    "fit-sampler of an hf:// run": Case(["fit-sampler", "hf://someone/run", "--sampler", "gmm"],
                                        "downloaded from the Hugging Face Hub into its cache", on_the_hub(),
                                        env=OFFLINE_HUB),
})

@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "run"
    config = TrainConfig(variant="vae-mlp", dataset="digits", out=str(out), epochs=1, batch_size=64,
                         overrides={"encoder.hidden_dims": [8], "decoder.hidden_dims": [8]})
    return train(config, progress=False)


#: Rows also run as `python -m vaezoo` in a subprocess, to prove end to end (the interpreter's own exit, the
#: module entry, worker processes, plugins found through $PYTHONPATH) that the user sees one line and no
#: traceback: a setting read from the environment, a plugin on $PYTHONPATH, an error raised in a DataLoader
#: worker, and a build-time refusal of parts. Every row runs in-process too.
END_TO_END = ["VAEZOO_BACKEND=fast", "plugin dataset that returns no Dataset", "a damaged file read by a worker",
              "vmf posterior with a Gaussian prior"]


def filled(case: Case, run: Path, tmp: Path) -> tuple[list[str], dict[str, str]]:
    """The case's arguments and environment with {run} and {tmp} filled in."""
    return ([a.format(run=run, tmp=tmp) for a in case.argv],
            {key: value.format(run=run, tmp=tmp) for key, value in case.env.items()})


def hub_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub reads HF_HUB_CACHE and HF_HUB_OFFLINE once, when it is imported: a case that sets them is
    given them in this process as a fresh interpreter would read them."""
    if not {"HF_HUB_CACHE", "HF_HUB_OFFLINE"} & set(env):
        return
    from huggingface_hub import constants

    if "HF_HUB_CACHE" in env:
        monkeypatch.setattr(constants, "HF_HUB_CACHE", env["HF_HUB_CACHE"])
    if "HF_HUB_OFFLINE" in env:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", env["HF_HUB_OFFLINE"].upper() in {"1", "ON", "YES", "TRUE"})


def run_in_process(argv: list[str], env: dict[str, str], tmp: Path, monkeypatch: pytest.MonkeyPatch,
                   capfd: pytest.CaptureFixture) -> tuple[int, str]:
    """`vaezoo ARGV` as the command line runs it, in this process: (exit code, stderr). An exception that
    escapes main (which the user would see as a traceback) fails the test with that exception. State the
    command may change is put back: the environment, the working folder, sys.path and the plugin modules
    imported from it, torch's random state, default dtype and thread counts."""
    from vaezoo.cli.main import main

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    hub_settings(env, monkeypatch)
    for entry in reversed(env.get("PYTHONPATH", "").split(os.pathsep)):  # what the interpreter would put on sys.path
        if entry and entry not in sys.path:
            monkeypatch.syspath_prepend(entry)
    monkeypatch.chdir(tmp)
    rng, dtype, threads = torch.get_rng_state(), torch.get_default_dtype(), torch.get_num_threads()
    try:
        try:
            code = main(argv)
        except SystemExit as exit:  # argparse's own refusals
            code = exit.code
    finally:
        torch.set_rng_state(rng)
        torch.set_default_dtype(dtype)
        torch.set_num_threads(threads)
        for name, module in list(sys.modules.items()):  # plugin modules installed under tmp: the next case imports its own
            if str(getattr(module, "__file__", None) or "").startswith(str(tmp)):
                del sys.modules[name]
    return code, capfd.readouterr().err


def run_in_subprocess(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """`python -m vaezoo ARGV` in a fresh interpreter (one torch thread): (exit code, stderr)."""
    result = subprocess.run([sys.executable, "-m", "vaezoo", *argv], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **env}, timeout=300)
    return result.returncode, result.stderr


def assert_one_clear_line(code: int, stderr: str, message: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert code == 2, (code, stderr)
    lines = [line for line in stderr.splitlines() if line.startswith("vaezoo: error: ")]
    assert len(lines) == 1, stderr
    assert message in lines[0], lines[0]


@pytest.mark.parametrize("case", [pytest.param(case, id=name) for name, case in CASES.items()])
def test_a_user_error_is_one_clear_line(case: Case, trained_run: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture):
    if case.setup is not None:
        case.setup(tmp_path, trained_run)
    argv, env = filled(case, trained_run, tmp_path)
    before = sorted(p.name for p in trained_run.iterdir())
    capfd.readouterr()  # what the set-up printed is not the command's
    assert_one_clear_line(*run_in_process(argv, env, tmp_path, monkeypatch, capfd), case.message)
    assert sorted(p.name for p in trained_run.iterdir()) == before  # the shared run is never touched


@pytest.mark.parametrize("name", END_TO_END)
def test_a_user_error_is_one_clear_line_end_to_end(name: str, trained_run: Path, tmp_path: Path):
    case = CASES[name]
    if case.setup is not None:
        case.setup(tmp_path, trained_run)
    argv, env = filled(case, trained_run, tmp_path)
    before = sorted(p.name for p in trained_run.iterdir())
    assert_one_clear_line(*run_in_subprocess(argv, env), case.message)
    assert sorted(p.name for p in trained_run.iterdir()) == before
