"""vaezoo.fit: any VAE, data in memory in any of its forms, run directories that load back, callbacks."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import vaezoo
from vaezoo.cli.main import main
from vaezoo.components.likelihoods.bernoulli import Bernoulli
from vaezoo.components.objectives.elbo import ELBO
from vaezoo.components.posteriors.gaussian import GaussianPosterior
from vaezoo.components.priors.gaussian import StandardNormal
from vaezoo.data.datasets import load_dataset
from vaezoo.data.sampling import EpochBatches
from vaezoo.errors import DataError, RunDirError, VaezooError
from vaezoo.training.trainer import resume

HAND_BUILT_MODULE = '''
import torch
from torch import nn


class Encoder(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 2 * d))

    def forward(self, x):
        return tuple(self.net(x).chunk(2, dim=-1))


class Decoder(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Linear(32, 64), nn.Unflatten(1, (1, 8, 8)))

    def forward(self, z):
        return self.net(z)
'''


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    data = load_dataset("digits")
    return data.train_x[:256], data.train_y[:256], data.test_x[:64], data.test_y[:64]


@pytest.fixture
def parts_module(tmp_path, monkeypatch):
    """A user's module of hand-written encoder and decoder classes, importable as `user_parts`."""
    (tmp_path / "user_parts.py").write_text(HAND_BUILT_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield __import__("user_parts")
    sys.modules.pop("user_parts", None)


def hand_built(parts, d: int = 3) -> vaezoo.VAE:
    return vaezoo.VAE(parts.Encoder(d), parts.Decoder(d), StandardNormal(d), Bernoulli((1, 8, 8)), ELBO(),
                      posterior=GaussianPosterior(d), input_shape=(1, 8, 8), latent_dim=d)


def test_a_hand_built_model_trains_on_raw_tensors_and_its_run_loads_back(parts_module, digits, tmp_path):
    x, _, val, _ = digits
    torch.manual_seed(0)
    model = hand_built(parts_module)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run = vaezoo.fit(model, x, val, epochs=2, out=tmp_path / "run", batch_size=32)
    assert run.dir == tmp_path / "run" and run.model is model
    assert [m["epoch"] for m in run.metrics] == [1, 2]
    assert run.metrics[1]["val_elbo"] > run.metrics[0]["val_elbo"] - 1.0  # trained, not diverged
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    written = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
    assert written == run.metrics
    config = json.loads((run.dir / "config.json").read_text())
    assert config["variant"] == "hand-built" and config["architecture"] == "architecture.safetensors"
    assert not (run.dir / "model.pt").exists()  # recorded without pickle
    assert config["train"]["batch_size"] == 32 and config["dataset"] == "in-memory"
    loaded = vaezoo.load_model(run.dir)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value.cpu())
    torch.manual_seed(1)
    a = loaded.posterior_mean(val)
    torch.manual_seed(1)
    torch.testing.assert_close(a, model.eval().posterior_mean(val))


def test_a_hand_built_run_whose_classes_are_gone_says_what_to_import(parts_module, digits, tmp_path):
    x = digits[0]
    vaezoo.fit(hand_built(parts_module), x, epochs=1, out=tmp_path / "run")
    sys.modules.pop("user_parts")
    sys.path.remove(str(tmp_path))
    with pytest.raises(RunDirError, match="module user_parts, which is not imported"):
        vaezoo.load_model(tmp_path / "run")
    with pytest.raises(RunDirError, match="import or install the module that defines its parts"):
        vaezoo.load_model(tmp_path / "run", imports=["user_parts"])


def test_a_model_that_does_not_pickle_is_refused_before_training(digits, tmp_path):
    class Local(nn.Module):  # a class local to a function cannot be pickled
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))

        def forward(self, x):
            return tuple(self.net(x).chunk(2, dim=-1))

    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=2)
    model.encoder, model.config = Local(), {}
    with pytest.raises(VaezooError, match="cannot be saved to a run directory"):
        vaezoo.fit(model, digits[0], epochs=1, out=tmp_path / "run")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_a_model_by_name_trains_the_same_from_every_form_of_data(digits):
    x, y, _, _ = digits
    pairs = torch.utils.data.TensorDataset(x, y)
    # a DataLoader is iterated as it is, with its own sampler: given the order vaezoo's sampler draws for
    # epoch 1 of seed 0, it trains what the other forms train (unbinarized: a stream's items have no index,
    # so their draws are keyed by position instead of by row)
    order = EpochBatches(len(x), 64, seed=0).permutation(1).tolist()
    forms = {
        "tensor": x, "pair": (x, y), "dataset": pairs, "images dataset": ImagesOnly(x),
        # (with a generator of its own: a DataLoader without one draws its workers' seed from torch's global
        # generator each epoch, which the model's noise then follows)
        "loader": torch.utils.data.DataLoader(pairs, batch_size=64, sampler=order, generator=torch.Generator()),
    }
    losses = {}
    for name, data in forms.items():
        torch.manual_seed(0)
        model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=2, hidden_dims=[16])
        losses[name] = vaezoo.fit(model, data, epochs=1, batch_size=64, binarize="none").metrics[0]["train_loss"]
    assert len({round(v, 6) for v in losses.values()}) == 1, losses


class ImagesOnly(torch.utils.data.Dataset):
    """A Dataset whose items are images alone."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def test_a_loader_gives_its_batch_size(digits):
    loader = torch.utils.data.DataLoader(digits[0], batch_size=100)
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=2, hidden_dims=[16])
    steps = []

    class Steps(vaezoo.Callback):
        def on_step_end(self, trainer, loss):
            steps.append(trainer.state.step)

    vaezoo.fit(model, loader, epochs=1, callbacks=[Steps()])
    assert steps == [1, 2, 3]  # steps taken so far: 256 examples in batches of 100


def test_callbacks_see_every_event_in_order_and_can_stop(digits):
    events = []

    class Recorder(vaezoo.Callback):
        def on_fit_start(self, trainer):
            events.append("start")

        def on_step_end(self, trainer, loss):
            events.append(("step", trainer.state.step, round(loss, 3)))

        def on_epoch_end(self, trainer, metrics):
            events.append(("epoch", metrics["epoch"]))
            trainer.should_stop = metrics["epoch"] == 2

        def on_fit_end(self, trainer):
            events.append("end")

    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=2, hidden_dims=[16])
    run = vaezoo.fit(model, digits[0], epochs=5, batch_size=128, callbacks=[Recorder()])
    assert [m["epoch"] for m in run.metrics] == [1, 2]
    assert events[0] == "start" and events[-1] == "end"
    assert [e[0] if isinstance(e, tuple) else e for e in events] == \
        ["start", "step", "step", "epoch", "step", "step", "epoch", "end"]
    assert [e[1] for e in events if isinstance(e, tuple) and e[0] == "step"] == [1, 2, 3, 4]


def test_a_user_optimizer_factory_is_used(digits):
    made = []

    def sgd(groups):
        made.append(torch.optim.SGD(groups, lr=0.0))
        return made[-1]

    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=2, hidden_dims=[16])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    vaezoo.fit(model, digits[0], epochs=1, optimizer=sgd)
    assert len(made) == 1 and made[0].state_dict()["param_groups"][0]["lr"] == 0.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # lr 0: nothing moved


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda m, x: vaezoo.fit(m, x, epochs=1, batch_sise=8), VaezooError, "did you mean batch_size"),
    (lambda m, x: vaezoo.fit(m, x, epochs=1, dataset="digits"), VaezooError, "is for `vaezoo train`"),
    (lambda m, x: vaezoo.fit(m, x, epochs=0), VaezooError, "epochs must be a whole number of at least 1, got 0"),
    (lambda m, x: vaezoo.fit(m, x.flatten(1), epochs=1), DataError, r"shape \[N, 1, 8, 8\]"),
    (lambda m, x: vaezoo.fit(m, x * 16, epochs=1), DataError, "needs \\[0, 1\\]"),
    (lambda m, x: vaezoo.fit(m, x[:0], epochs=1), DataError, "holds no examples"),
    (lambda m, x: vaezoo.fit(m, [1, 2, 3], epochs=1), DataError, "must be a tensor"),
    (lambda m, x: vaezoo.fit(m, x, epochs=1, patience=2), VaezooError, "give fit\\(\\) val_data"),
    (lambda m, x: vaezoo.fit(nn.Linear(2, 2), x, epochs=1), VaezooError, "fit trains a vaezoo VAE"),
    (lambda m, x: vaezoo.fit(m, x, epochs=1, log=["csv"]), VaezooError, "write into the run directory: give fit"),
    (lambda m, x: vaezoo.fit(m, x, epochs=1, optimizer_options={"momentun": 0.9}), VaezooError, "has no option"),
    (lambda m, x: vaezoo.fit(m, x, epochs=1, steps_per_epoch=3), VaezooError, "steps_per_epoch is for streamed"),
    (lambda m, x: vaezoo.fit(m, torch.utils.data.DataLoader(x), epochs=1, steps_per_epoch=0), VaezooError,
     "steps_per_epoch must be a whole number of at least 1"),
    (lambda m, x: vaezoo.fit(m, x, epochs=1, workers=-2), VaezooError, "workers must be a whole number"),
    (lambda m, x: vaezoo.fit(m, torch.utils.data.TensorDataset(x[:0]), epochs=1), DataError, "holds no examples"),
])
def test_bad_arguments_to_fit_are_named(digits, call, error, message):
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=2, hidden_dims=[16])
    with pytest.raises(error, match=message):
        call(model, digits[0])


def test_a_conditional_model_needs_labels(digits):
    model = vaezoo.create_model("cvae-mlp", input_shape=(1, 8, 8), latent_dim=2, num_classes=10)
    with pytest.raises(DataError, match="needs labels"):
        vaezoo.fit(model, digits[0], epochs=1)
    run = vaezoo.fit(model, (digits[0], digits[1]), (digits[2], digits[3]), epochs=1)
    assert "val_elbo" in run.metrics[0]


def test_fit_in_a_directory_that_holds_files_writes_nothing(digits, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=2, hidden_dims=[16])
    with pytest.raises(VaezooError):
        vaezoo.fit(model, digits[0], epochs=1, out=tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["notes.txt"]
    assert Path(tmp_path / "run" / "notes.txt").read_text() == "mine"


def test_a_fit_run_cannot_be_resumed_by_name_and_needs_its_data(digits, tmp_path, capsys):
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=2, hidden_dims=[16])
    vaezoo.fit(model, digits[0], epochs=1, out=tmp_path / "run")
    with pytest.raises(VaezooError, match="trained by vaezoo.fit on data in memory"):
        resume(str(tmp_path / "run"), progress=False, epochs=2)
    assert main(["reconstruct", str(tmp_path / "run"), "--out", str(tmp_path / "r.png")]) == 2
    assert "trained by vaezoo.fit on data in memory" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "run"), "--out", str(tmp_path / "s.png"), "--n", "4"]) == 0  # no data needed
