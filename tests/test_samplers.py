"""Samplers: fitted after training to a run's codes, stored in the run sealed and keyed to its weights, used by
`vaezoo sample --sampler` and `vaezoo eval --sample-quality --sampler`; each fits what it claims to."""
from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load

import vaezoo
from vaezoo.analysis.samplers import draw_images, fit_sampler, load_sampler, training_codes
from vaezoo.cli.main import main
from vaezoo.components.samplers import (
    FlowSampler,
    GaussianMixtureSampler,
    PixelCNNSampler,
    TwoStageSampler,
)
from vaezoo.data.datasets import load_dataset
from vaezoo.errors import CombinationError, RunDirError, VaezooError
from vaezoo.runs.samplers import sampler_path
from vaezoo.training.trainer import TrainConfig, train

TINY = {"encoder.hidden_dims": [8], "decoder.hidden_dims": [8]}


def trained(root: Path, variant: str, latent_dim: int, **overrides) -> Path:
    config = TrainConfig(variant=variant, dataset="digits", out=str(root / variant), epochs=1, batch_size=64,
                         latent_dim=latent_dim, overrides={**TINY, **overrides})
    return train(config, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sampler-runs")
    return {
        "vae": trained(root, "vae-mlp", latent_dim=4),
        "ae": trained(root, "ae-mlp", latent_dim=4),
        "vq": trained(root, "vq-vae-mlp", latent_dim=8, **{"prior.codes": 8, "prior.code_dim": 2}),
    }


def test_the_samplers_are_a_kind_listed_by_name(capsys):
    assert vaezoo.list_components("sampler") == ["flow", "gmm", "pixelcnn", "prior", "two-stage"]
    assert main(["list", "--kind", "sampler"]) == 0
    listing = capsys.readouterr().out
    assert "Dai and Wipf, 2019" in listing and "van den Oord et al., 2017" in listing


# -- each sampler fits what it claims to, on codes whose distribution is known -------------------------------------

def two_clusters(n: int = 2000) -> torch.Tensor:
    """Codes from two well-separated, correlated Gaussians (weights 0.3 and 0.7) in 3 dimensions."""
    g = torch.Generator().manual_seed(0)
    mix = torch.rand(n, generator=g) < 0.3
    base = torch.randn(n, 3, generator=g) @ torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.2]])
    return base + torch.where(mix[:, None], torch.tensor([5.0, 5.0, 0.0]), torch.tensor([-5.0, 0.0, 1.0]))


def test_gmm_recovers_a_mixture_by_em():
    torch.manual_seed(0)
    codes = two_clusters()
    gmm = GaussianMixtureSampler(3, components=2)
    gmm.fit(codes, 100)
    order = gmm.means[:, 0].argsort()
    torch.testing.assert_close(gmm.means[order], torch.tensor([[-5.0, 0.0, 1.0], [5.0, 5.0, 0.0]]), atol=0.15, rtol=0)
    torch.testing.assert_close(gmm.log_weights.exp()[order], torch.tensor([0.7, 0.3]), atol=0.03, rtol=0)
    draws = gmm.sample(4000)
    assert abs((draws[:, 0] > 0).float().mean() - 0.3) < 0.03
    # the fitted mixture is a better density of the codes than one Gaussian
    one = GaussianMixtureSampler(3, components=1)
    one.fit(codes, 10)
    assert gmm.log_prob(codes).mean() > one.log_prob(codes).mean() + 1.0


def skewed(n: int = 1000) -> torch.Tensor:
    """Codes whose second dimension depends on the first non-linearly: z_2 = z_1^2 + noise."""
    g = torch.Generator().manual_seed(0)
    first = torch.randn(n, generator=g)
    return torch.stack([first, first**2 + 0.1 * torch.randn(n, generator=g)], dim=1)


@pytest.mark.parametrize("factory", [lambda: FlowSampler(2, layers=4, hidden_dims=[32, 32], batch_size=50),
                                     lambda: TwoStageSampler(2, hidden_dims=[32, 32], batch_size=50)],
                         ids=["flow", "two-stage"])
def test_flow_and_two_stage_draw_codes_like_the_ones_they_fitted(factory):
    torch.manual_seed(0)
    codes = skewed()
    sampler = factory()
    sampler.fit(codes, 15)
    draws = sampler.sample(2000)
    assert draws.shape == (2000, 2) and torch.isfinite(draws).all()
    deciles = torch.tensor([0.1, 0.5, 0.9])
    torch.testing.assert_close(draws.quantile(deciles, dim=0), codes.quantile(deciles, dim=0), atol=0.4, rtol=0)
    # the dependence a Gaussian (the prior's shape) cannot draw: z_2 follows z_1^2
    assert (draws[:, 1] - draws[:, 0] ** 2).abs().median() < 0.5
    assert (draws[:, 1] > -0.5).float().mean() > 0.9


def test_flow_log_prob_is_a_normalized_density():
    torch.manual_seed(0)
    flow = FlowSampler(2, layers=2, hidden_dims=[16])
    flow.fit(two_clusters(500)[:, :2], 5)
    grid = torch.stack(torch.meshgrid(torch.linspace(-12, 12, 241), torch.linspace(-8, 12, 201), indexing="ij"), -1)
    with torch.no_grad():
        mass = flow.log_prob(grid.reshape(-1, 2)).exp().sum() * 0.1 * 0.1
    assert abs(mass.item() - 1.0) < 0.05


class Codebook:
    """The part of the codebook prior the PixelCNN sampler reads: 3 positions of 4 codes of 1 dimension."""

    positions, codes, code_dim = 3, 4, 1
    embedding = torch.arange(4.0)[:, None]

    def nearest(self, vectors):
        return (vectors - self.embedding.T).abs().argmin(-1)

    def lookup(self, indices):
        return self.embedding[indices].flatten(-2)


def test_pixelcnn_learns_dependencies_between_positions_that_independent_codes_miss():
    """k_2 = k_1 and k_3 = (k_1 + 1) mod 4, k_1 uniform: the PixelCNN draws only such sequences."""
    torch.manual_seed(0)
    first = torch.randint(4, (2000,))
    codes = torch.stack([first, first, (first + 1) % 4], dim=1).float()
    sampler = PixelCNNSampler(3, prior=Codebook(), channels=32, blocks=2)
    figures = sampler.fit(codes, 20)
    assert figures["nats_per_image"] < math.log(4) + 0.1  # the entropy of the sequences is log 4 nats
    draws = sampler.sample(1000).long()
    follow = (draws[:, 1] == draws[:, 0]) & (draws[:, 2] == (draws[:, 0] + 1) % 4)
    assert follow.float().mean() > 0.97  # independent codes with the right marginals: 1 in 16
    assert len(draws[:, 0].unique()) == 4


def test_temperature_narrows_the_draws():
    torch.manual_seed(0)
    gmm = GaussianMixtureSampler(3, components=1)
    gmm.fit(two_clusters(), 5)
    torch.testing.assert_close(gmm.sample(4000, temperature=0.1).std(0), 0.1 * gmm.sample(4000).std(0),
                               rtol=0.1, atol=0)


# -- fitted to a run, stored in it, used through it -----------------------------------------------------------------

def checksums(run: Path) -> dict[str, str]:
    """SHA-256 of every file of the run but its samplers and its lock."""
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.rglob("*"))
            if p.is_file() and "samplers" not in p.parts and p.name != ".lock"}


@pytest.mark.parametrize("run, name", [("vae", "gmm"), ("vae", "flow"), ("vae", "two-stage"), ("ae", "gmm"),
                                       ("vq", "pixelcnn")])
def test_fit_sampler_stores_a_sampler_that_sample_uses_and_changes_nothing_else(runs, tmp_path, capsys, run, name):
    run = Path(shutil.copytree(runs[run], tmp_path / "run"))
    before = checksums(run)
    assert main(["fit-sampler", str(run), "--sampler", name, "--epochs", "2", "--quiet"]) == 0
    assert f"wrote {sampler_path(run, name)}" in capsys.readouterr().out
    assert checksums(run) == before  # weights, metrics, checkpoints, config and pictures untouched
    assert main(["sample", str(run), "--sampler", name, "--n", "4", "--seed", "1", "--out", str(tmp_path / "s.png")]) == 0
    model = vaezoo.load_model(run)
    sampler = load_sampler(run, name, model)
    torch.manual_seed(1)
    images = draw_images(model, sampler, 4)
    assert images.shape == (4, *model.input_shape) and torch.isfinite(images).all()


def test_the_same_seed_fits_the_same_sampler_and_another_seed_another(runs, tmp_path):
    run = Path(shutil.copytree(runs["vae"], tmp_path / "run"))
    fitted = []
    for seed in (3, 3, 4):
        path, _ = fit_sampler(run, "two-stage", epochs=2, seed=seed)
        fitted.append(load(path.read_bytes()))
    assert fitted[0].keys() == fitted[1].keys()
    assert all(torch.equal(fitted[0][k], fitted[1][k]) for k in fitted[0])
    assert any(not torch.equal(fitted[0][k], fitted[2][k]) for k in fitted[0])


def test_the_prior_sampler_is_what_sample_always_drew(runs):
    model = vaezoo.load_model(runs["vae"])
    torch.manual_seed(0)
    expected = model.sample(5, temperature=0.5)
    torch.manual_seed(0)
    assert torch.equal(draw_images(model, load_sampler(runs["vae"], "prior", model), 5, temperature=0.5), expected)


def test_a_class_asked_of_a_fitted_sampler_is_a_setting_the_command_line_names_as_its_flags():
    """A fitted sampler draws codes without labels: asking one for a class is refused naming the settings (label,
    sampler), which the command line shows as --label and --sampler, from draw_images and from the pictures."""
    from vaezoo.analysis.run_pictures import samples
    from vaezoo.errors import SettingError

    model = vaezoo.create_model("cvae-mlp", input_shape=(1, 8, 8), latent_dim=2, num_classes=3)
    fitted = GaussianMixtureSampler(2, components=2)  # refused before it draws: no fit needed
    for draw in (lambda: draw_images(model, fitted, 2, label=1), lambda: samples(model, 2, 1, sampler=fitted)):
        with pytest.raises(SettingError) as caught:
            draw()
        assert caught.value.settings == ("label", "sampler")
        assert caught.value.named({"label": "--label", "sampler": "--sampler"}.get) == (
            "--label needs the prior sampler (the default --sampler): a fitted sampler draws codes without labels")


def test_codes_are_means_or_draws_as_the_sampler_says(runs):
    model = vaezoo.load_model(runs["vae"])
    data = load_dataset("digits")
    means = training_codes(model, data, "means")
    assert means.shape == (len(data.train_x), 4)
    assert torch.equal(training_codes(model, data, "means"), means)  # the training images binarized once, fixed
    draws = training_codes(model, data, "samples")
    assert not torch.equal(training_codes(model, data, "samples"), draws)
    assert (draws - means).abs().mean() > 0.01


def test_a_sampler_is_refused_where_it_cannot_work_naming_both_parts(runs):
    model = vaezoo.load_model(runs["vae"])
    with pytest.raises(CombinationError, match="sampler 'vaezoo:pixelcnn' cannot be fitted to the codes of "
                                               "posterior 'vaezoo:gaussian'"):
        load_sampler(runs["vae"], "pixelcnn", model)
    with pytest.raises(CombinationError, match="sampler 'vaezoo:gmm' cannot be fitted to the codes of posterior "
                                               "'vaezoo:vq': it models the codes of posteriors of the"):
        fit_sampler(runs["vq"], "gmm")
    conditional = vaezoo.create_model("cvae-mlp", input_shape=(1, 8, 8))
    from vaezoo.registry.samplers import build_sampler

    with pytest.raises(CombinationError, match="conditional model's decoder needs one per code"):
        build_sampler("flow", conditional)
    build_sampler("prior", conditional)  # the prior draws with labels, as `vaezoo sample --label` does


def test_a_stored_sampler_is_refused_when_missing_changed_or_fitted_to_other_weights(runs, tmp_path):
    run = Path(shutil.copytree(runs["vae"], tmp_path / "run"))
    model = vaezoo.load_model(run)
    with pytest.raises(RunDirError, match="has no fitted 'gmm' sampler; fit one first"):
        load_sampler(run, "gmm", model)
    path, _ = fit_sampler(run, "gmm", epochs=2)
    load_sampler(run, "gmm", model)
    other = Path(shutil.copytree(runs["ae"], tmp_path / "other"))
    sampler_path(other, "gmm").parent.mkdir()
    shutil.copy(path, sampler_path(other, "gmm"))
    with pytest.raises(RunDirError, match="was fitted to other weights"):
        load_sampler(other, "gmm", vaezoo.load_model(other))
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(RunDirError, match="is corrupt or was changed .*checksum mismatch"):
        load_sampler(run, "gmm", model)


def test_fitting_the_prior_is_refused(runs):
    with pytest.raises(VaezooError, match="has nothing to fit"):
        fit_sampler(runs["vae"], "prior")


def test_a_sampler_factory_is_checked_at_the_door_and_what_it_builds_at_build(runs):
    from vaezoo.registry.catalog import Entry, PluginRecord, Registry, register_callback
    from vaezoo.registry.samplers import _build

    register = register_callback(Registry(), "sampler", "p", PluginRecord("p", "p", "1", "active"))
    with pytest.raises(TypeError, match="does not name latent_dim; vaezoo calls sampler factories as"):
        register("nameless", lambda components=2: None)
    model = vaezoo.load_model(runs["vae"])
    odd = Entry("sampler", "odd", lambda latent_dim: torch.nn.Linear(1, 1), "p")
    with pytest.raises(CombinationError, match="sampler 'p:odd': its factory returned a torch.nn.modules.linear.Linear"):
        _build(odd, model, {})
