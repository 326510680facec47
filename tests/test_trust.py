"""Nothing in a run directory runs code unless the user asks, every byte read is checked, and nothing non-finite
is reported as a result (issue 21, items 1 and 2). Hostile files are planted as a user would find them: a
pickle whose unpickling writes a marker file, weights changed on disk, weights that overflow."""
from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import vaezoo
from vaezoo.cli.output import print_json
from vaezoo.components.likelihoods.bernoulli import Bernoulli
from vaezoo.components.objectives.elbo import ELBO
from vaezoo.components.posteriors.gaussian import GaussianPosterior
from vaezoo.components.priors.gaussian import StandardNormal
from vaezoo.core import VAE
from vaezoo.data.datasets import load_dataset
from vaezoo.analysis.pictures import save_grid
from vaezoo.errors import NonFiniteError, RunDirError
from vaezoo.runs import architecture
from vaezoo.runs.directory import append_metrics, load_model, read_metrics
from vaezoo.runs.sealed import seal
from vaezoo.runtime.finite import mark_nonfinite
from vaezoo.training.trainer import TrainConfig, train

PARTS = '''
import torch
from torch import nn


class Encoder(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 2 * d))

    def forward(self, x):
        return tuple(self.net(x).chunk(2, dim=-1))


class Decoder(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, 64), nn.Unflatten(1, (1, 8, 8)))
        self.shape = (1, 8, 8)

    def forward(self, z):
        return self.net(z)


class FragileDecoder(Decoder):
    """Its own __setstate__ (which a record calls, as unpickling does) fails."""

    def __setstate__(self, state):
        raise RuntimeError("this decoder refuses to be restored")


class FunctionalDecoder(Decoder):
    """Holds a function, which a JSON record cannot describe: saved as a pickle."""

    def __init__(self, d):
        super().__init__(d)
        self.squash = torch.tanh

    def forward(self, z):
        return self.net(self.squash(z))
'''


class Evil:
    """Unpickling this writes the marker file: the sign that a pickle was run."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def plant_pickle(run: Path, marker: Path) -> None:
    (run / "model.pt").write_bytes(pickle.dumps(Evil(marker)))


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vaezoo", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=300)


def one_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("vaezoo: error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zoo") / "run"
    return train(TrainConfig(variant="vae-mlp", dataset="digits", out=str(out), epochs=1, batch_size=64,
                             overrides={"encoder.hidden_dims": [8], "decoder.hidden_dims": [8]}), progress=False)


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """A user's module of hand-written parts, importable as `trust_parts` (here and in subprocesses)."""
    (tmp_path / "trust_parts.py").write_text(PARTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    yield __import__("trust_parts")
    sys.modules.pop("trust_parts", None)


def hand_built(parts, decoder: str = "Decoder", d: int = 3) -> VAE:
    return VAE(parts.Encoder(d), getattr(parts, decoder)(d), StandardNormal(d), Bernoulli((1, 8, 8)), ELBO(),
               posterior=GaussianPosterior(d), input_shape=(1, 8, 8), latent_dim=d)


def copy(run: Path, to: Path) -> Path:
    return Path(shutil.copytree(run, to))


# -- 1. no pickle unless asked -----------------------------------------------------------------------------------

def test_a_zoo_run_never_reads_model_pt_whatever_its_config_says(zoo_run, tmp_path):
    """The probe of issue 21: "architecture": "model.pt" added to a vae-mlp run's config.json, a pickle planted."""
    run, marker = copy(zoo_run, tmp_path / "run"), tmp_path / "MARKER"
    record = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**record, "architecture": "model.pt"}))
    plant_pickle(run, marker)
    for trust in (False, True):
        with pytest.raises(RunDirError, match="records the variant 'vaezoo:vae-mlp' and also a hand-built model's"):
            load_model(run, trust_pickle=trust)
    for args in (["eval", run, "--nll-samples", "2"], ["sample", run, "--out", tmp_path / "s.png", "--trust-pickle"],
                 ["traverse", run, "--out", tmp_path / "t.png", "--trust-pickle"]):
        assert "a run has one or the other" in one_error(cli(*args))
    assert not marker.exists()


def test_a_pickled_run_is_unpickled_only_when_the_user_says_so(zoo_run, tmp_path):
    """A hand-built run saved as a pickle: refused by every command without the opt-in, run with it."""
    run, marker = copy(zoo_run, tmp_path / "run"), tmp_path / "MARKER"
    record = json.loads((run / "config.json").read_text())
    del record["identity"]
    (run / "config.json").write_text(json.dumps({**record, "variant": "hand-built", "architecture": "model.pt"}))
    plant_pickle(run, marker)
    with pytest.raises(RunDirError, match=r"trust_pickle=True\) or add --trust-pickle"):
        load_model(run)
    for command in ("sample", "reconstruct", "interpolate", "traverse"):
        assert "add --trust-pickle" in one_error(cli(command, run, "--out", tmp_path / "p.png"))
    assert "add --trust-pickle" in one_error(cli("eval", run, "--nll-samples", "2"))
    assert "add --trust-pickle" in one_error(cli("arithmetic", run, "--a", "0", "--b", "1", "--c", "2",
                                                 "--out", tmp_path / "p.png"))
    assert not marker.exists()
    with pytest.raises(RunDirError, match="model.pt"):  # asked for: it is unpickled (then refused as no model)
        load_model(run, trust_pickle=True)
    assert marker.exists()


def test_eval_refuses_a_run_trained_on_data_in_memory_before_it_unpickles(parts, tmp_path):
    x = load_dataset("digits").train_x[:64]
    with pytest.warns(UserWarning, match="squash is a builtin_function_or_method.*trust_pickle=True"):
        vaezoo.fit(hand_built(parts, "FunctionalDecoder"), x, epochs=1, out=tmp_path / "run")
    run, marker = tmp_path / "run", tmp_path / "MARKER"
    assert json.loads((run / "config.json").read_text())["architecture"] == "model.pt"
    loaded = load_model(run, trust_pickle=True)  # the user's own trusted run loads back
    assert isinstance(loaded.decoder, parts.FunctionalDecoder)
    plant_pickle(run, marker)
    for args in (["eval", run, "--trust-pickle"], ["reconstruct", run, "--out", tmp_path / "r.png", "--trust-pickle"]):
        assert "trained by vaezoo.fit on data in memory" in one_error(cli(*args))
    assert not marker.exists()


def test_a_hand_built_model_is_saved_without_pickle_and_drawn_from_the_command_line(parts, tmp_path):
    x = load_dataset("digits").train_x[:64]
    torch.manual_seed(0)
    model = hand_built(parts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to pickle, and no warning of any kind
        vaezoo.fit(model, x, epochs=1, out=tmp_path / "run")
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["architecture"] == "architecture.safetensors"
    assert not (run / "model.pt").exists()
    loaded = load_model(run)
    assert type(loaded.encoder) is parts.Encoder and loaded.decoder.shape == (1, 8, 8)
    assert loaded.state_dict().keys() == model.state_dict().keys()
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value)
    torch.manual_seed(1)
    expected = model.eval().sample(4)
    torch.manual_seed(1)
    assert torch.equal(loaded.sample(4), expected)
    # a fresh process has not imported the user's module: importing it runs its code, so only when asked
    result = cli("sample", run, "--out", tmp_path / "s.png", "--n", "4")
    assert "module trust_parts, which is not imported" in one_error(result) and "--import trust_parts" in result.stderr
    assert not (tmp_path / "s.png").exists()
    result = cli("sample", run, "--out", tmp_path / "s.png", "--n", "4", "--import", "trust_parts")
    assert result.returncode == 0 and (tmp_path / "s.png").is_file(), result.stderr


@pytest.mark.parametrize("name", vaezoo.list_models())
def test_every_zoo_model_built_by_hand_round_trips_through_the_record(name):
    shape = (1, 8, 8) if "mlp" in name else (1, 32, 32)
    options = {"num_classes": 3} if name.startswith("c") else {}
    if vaezoo.get_model_spec(name).recipe.encoder != "ldm":  # the ldm encoder sets latent_dim from the shape
        options["latent_dim"] = 20
    model = vaezoo.create_model(name, input_shape=shape, **options).eval()
    tree, extra = architecture.record(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rebuilt = architecture.rebuild(json.loads(json.dumps(tree)), state, dict(extra), VAE).eval()
    rebuilt.load_state_dict(state)
    assert [type(m) for m in rebuilt.modules()] == [type(m) for m in model.modules()]
    x = torch.rand(4, *shape)
    y = (torch.arange(4) % 3,) if model.conditional else ()
    torch.manual_seed(0)
    expected = model(x, *y).loss
    torch.manual_seed(0)
    assert torch.equal(rebuilt(x, *y).loss, expected)
    if name.startswith("vamp"):
        assert rebuilt.prior.encoder is rebuilt.encoder  # a shared module stays shared


def test_a_hostile_record_imports_only_module_classes_and_calls_nothing_else(tmp_path):
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=2)
    tree, extra = architecture.record(model)
    state = model.state_dict()

    def changed(path: list[str], key: str, value) -> dict:
        hostile = json.loads(json.dumps(tree))
        node = hostile
        for step in path:
            node = node["modules"][step]
        node[key] = value
        return hostile

    cases = {
        "os:system": "is not a Module class",  # a function, not a class
        "subprocess:Popen": "is not a Module class",  # a class, but not a module of a model
        "torch.nn:Linear": "is not a VAE class",  # the root must be a VAE
        "vaezoo.no_such_module:Thing": "is not found",
        "os.path;rm:x": "not an import path",
    }
    for cls, message in cases.items():
        at = [] if "VAE" in message else ["encoder"]
        with pytest.raises((ValueError, ImportError), match=message):
            architecture.rebuild(changed(at, "class", cls), state, extra, VAE)
    with pytest.raises(ValueError, match="reference to the module 'nowhere'"):
        architecture.rebuild(changed(["encoder"], "attributes", {"x": {"module": "nowhere"}}), state, extra, VAE)
    with pytest.raises(ValueError, match="unknown form"):
        architecture.rebuild(changed(["encoder"], "attributes", {"x": {"call": ["os:system", "id"]}}), state, extra,
                             VAE)
    with pytest.raises(ValueError, match="attribute named '_modules'"):
        architecture.rebuild(changed([], "attributes", {"_modules": 1}), state, extra, VAE)


def test_a_record_imports_no_module_the_caller_did_not_import_or_name(tmp_path, monkeypatch):
    """Importing a module runs its code: a record naming one that is not imported (and not vaezoo's or torch's,
    nor a private one of theirs) is refused unless the caller names it in `imports`."""
    marker = tmp_path / "imported"
    (tmp_path / "planted.py").write_text(f"open({str(marker)!r}, 'w').close()\nfrom torch.nn import Linear\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=2)
    tree, extra = architecture.record(model)
    hostile = json.loads(json.dumps(tree))
    hostile["modules"]["encoder"]["class"] = "planted:Linear"
    for name in ("planted", "vaezoo.__main__", "torch._private"):
        with pytest.raises(architecture.NotImported):
            architecture.rebuild(json.loads(json.dumps(hostile).replace("planted", name)), model.state_dict(), extra,
                                 VAE)
    assert not marker.exists() and "planted" not in sys.modules
    architecture.rebuild(hostile, model.state_dict(), extra, VAE, imports=("planted",))  # named by the caller
    assert marker.exists()
    sys.modules.pop("planted", None)


def test_parts_that_a_record_cannot_describe_are_named(parts):
    class Local(torch.nn.Module):
        pass

    model = hand_built(parts)
    model.encoder.register_forward_hook(lambda *a: None)
    with pytest.raises(architecture.NotRecordable, match="encoder has hooks"):
        architecture.record(model)
    model = hand_built(parts)
    model.extra = Local()
    with pytest.raises(architecture.NotRecordable, match="extra is a .*Local that cannot be imported by its name"):
        architecture.record(model)


# -- 2. every byte read is checked ---------------------------------------------------------------------------------

def test_weights_changed_on_disk_are_refused_by_their_checksum(zoo_run, tmp_path):
    run = copy(zoo_run, tmp_path / "run")
    data = bytearray((run / "model.safetensors").read_bytes())
    data[-5] ^= 0x01  # one bit of one weight
    (run / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(RunDirError, match="checksum mismatch"):
        load_model(run)
    (run / "model.safetensors").write_bytes(bytes(data[:-100]))  # truncated
    with pytest.raises(RunDirError, match="is corrupt or was changed"):
        load_model(run)


@pytest.mark.parametrize("how", ["scaled by 1e30", "NaN"])
def test_weights_replaced_without_a_checksum_are_refused_and_eval_prints_no_nan(zoo_run, tmp_path, how):
    """The probe of issue 21: model.safetensors scaled by 1e30 or set to NaN."""
    run = copy(zoo_run, tmp_path / "run")
    weights = load_file(run / "model.safetensors")
    save_file({k: v * 1e30 if how != "NaN" else torch.full_like(v, float("nan")) for k, v in weights.items()},
              run / "model.safetensors")
    with pytest.raises(RunDirError, match="carries no checksum, which every run of format 2 has"):
        load_model(run)
    for args in (["eval", run, "--nll-samples", "2"], ["eval", run, "--json"], ["sample", run, "--out", tmp_path / "s.png"]):
        result = cli(*args)
        assert "carries no checksum" in one_error(result) and "nan" not in result.stdout.lower()
    assert not (tmp_path / "s.png").exists()


def legacy(run: Path, edit=lambda name, value: value) -> None:
    """Make `run` a run of format 1, whose weights were written without a checksum, with `edit` applied."""
    record = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**record, "format": 1}))
    weights = load_file(run / "model.safetensors")
    save_file({k: edit(k, v) for k, v in weights.items()}, run / "model.safetensors")


def test_a_run_from_before_checksums_loads_with_a_warning_but_never_with_nan(zoo_run, tmp_path):
    run = copy(zoo_run, tmp_path / "run")
    legacy(run)
    with pytest.warns(UserWarning, match="before weights carried a checksum: its bytes cannot be verified"):
        model = load_model(run)
    for name, value in load_file(zoo_run / "model.safetensors").items():
        assert torch.equal(model.state_dict()[name], value)
    result = cli("sample", run, "--out", tmp_path / "s.png", "--n", "4")
    assert result.returncode == 0 and (tmp_path / "s.png").is_file(), result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("vaezoo: warning: ")]
    assert len(said) == 1 and "its bytes cannot be verified" in said[0] and "Warning" not in result.stderr
    (tmp_path / "s.png").unlink()
    legacy(run, lambda name, v: torch.full_like(v, float("inf")) if name.endswith("bias") else v)
    with pytest.warns(UserWarning), pytest.raises(RunDirError, match="holds NaN or infinity in .*bias"):
        load_model(run)
    assert "holds NaN or infinity" in one_error(cli("sample", run, "--out", tmp_path / "s.png"))
    assert not (tmp_path / "s.png").exists()


def test_a_picture_of_non_finite_images_is_never_written(tmp_path):
    images = torch.rand(4, 1, 8, 8)
    images[2, 0, 3, 3] = float("nan")
    with pytest.raises(NonFiniteError, match="refusing to write .*NaN or infinity"):
        save_grid(images, tmp_path / "s.png")
    assert not (tmp_path / "s.png").exists()


def test_outputs_that_overflow_are_an_error_never_a_number_or_a_picture(zoo_run, tmp_path):
    """Finite weights (a run from before checksums, its decoder scaled by 1e30) whose outputs are not finite."""
    run = copy(zoo_run, tmp_path / "run")
    legacy(run, lambda name, v: v * 1e30 if name.startswith("decoder") else v)
    result = cli("eval", run, "--nll-samples", "2", "--json")
    assert "the evaluation of" in one_error(result) and "is non-finite (elbo" in result.stderr
    printed = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON"))
    assert printed["elbo"] == "non-finite" and printed["examples"] > 0
    result = cli("eval", run, "--nll-samples", "2")
    one_error(result)
    assert "ELBO                   non-finite" in result.stdout and "nan" not in result.stdout.lower()
    shutil.rmtree(run)
    legacy(copy(zoo_run, run), lambda name, v: v * 1e30)  # the encoder too: the posterior means overflow
    assert "active units are undefined" in one_error(cli("eval", run, "--nll-samples", "2"))


def test_json_output_is_always_valid_json(capsys):
    result = {"elbo": float("nan"), "kl": [1.0, float("inf")], "n": 3, "deep": {"x": float("-inf")}}
    assert mark_nonfinite(result)[1] == ["elbo", "kl[1]", "deep.x"]
    print_json(result)
    assert json.loads(capsys.readouterr().out) == {"elbo": "non-finite", "kl": [1.0, "non-finite"], "n": 3,
                                                   "deep": {"x": "non-finite"}}


def test_the_architecture_record_is_sealed_too(parts, tmp_path):
    vaezoo.fit(hand_built(parts), load_dataset("digits").train_x[:64], epochs=1, out=tmp_path / "run")
    path = tmp_path / "run" / "architecture.safetensors"
    data = path.read_bytes()
    path.write_bytes(data.replace(b"trust_parts:Encoder", b"trust_parts:Decoder"))
    with pytest.raises(RunDirError, match="checksum mismatch"):
        load_model(tmp_path / "run")
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]["vaezoo"]
    path.write_bytes(seal({}, header.replace("trust_parts:Encoder", "os:system")))  # a forger's seal
    with pytest.raises(RunDirError, match="is not a Module class"):
        load_model(tmp_path / "run")


def test_tied_weights_are_not_recorded_as_two(parts):
    model = hand_built(parts)
    model.decoder.tied = model.encoder.net[1]  # a shared module is recorded once, by reference
    tree, _ = architecture.record(model)
    assert tree["modules"]["decoder"]["modules"]["tied"] == {"module": "encoder.net.1"}
    model.decoder.net[0].weight = model.encoder.net[3].weight  # the same parameter in two modules
    with pytest.raises(architecture.NotRecordable, match="decoder.net.0.weight is tied to encoder.net.3.weight"):
        architecture.record(model)


def test_metrics_jsonl_stays_valid_json_when_a_held_out_elbo_is_not_finite(tmp_path):
    append_metrics(tmp_path, {"epoch": 1, "train_loss": 3.0, "val_elbo": float("nan")})
    append_metrics(tmp_path, {"epoch": 2, "train_loss": 2.0, "val_elbo": float("-inf")})
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    parsed = [json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c}")) for line in lines]
    assert [p["val_elbo"] for p in parsed] == ["non-finite", "non-finite"]
    back = read_metrics(tmp_path)
    assert back[0]["train_loss"] == 3.0 and all(math.isnan(m["val_elbo"]) for m in back)


def test_a_nan_buffer_in_the_architecture_record_is_refused(parts, tmp_path):
    vaezoo.fit(hand_built(parts), load_dataset("digits").train_x[:64], epochs=1, out=tmp_path / "run")
    path = tmp_path / "run" / "architecture.safetensors"
    data = path.read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]["vaezoo"]
    path.write_bytes(seal({"prior._anchor": torch.tensor(float("nan"))}, header))
    with pytest.raises(RunDirError, match="buffer prior._anchor holds NaN or infinity"):
        load_model(tmp_path / "run")


def test_a_part_that_fails_to_restore_is_one_line(parts, tmp_path):
    vaezoo.fit(hand_built(parts, "FragileDecoder"), load_dataset("digits").train_x[:64], epochs=1, out=tmp_path / "run")
    with pytest.raises(RunDirError, match="one of its classes raised RuntimeError: this decoder refuses to be restored"):
        load_model(tmp_path / "run")
