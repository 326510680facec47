"""Third-party plugins: the real vaezoo-flows installed with pip, and fake installed distributions that
fail to import, fail validation, raise in a hook, are blocked, or clash."""
from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest
import torch
from plugin_sites import BOARDS, pip_install_flows

import vaezoo
from vaezoo.cli.main import main
from vaezoo.data.datasets import load_dataset
from vaezoo.errors import AmbiguousNameError, BadOverrideError, DataError, PluginError
from vaezoo.registry.discovery import PluginWarning, get_registry, reset_registry
from vaezoo.runs.directory import read_metrics


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


# --- the real plugin, pip-installed -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def flows_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pip_install_flows(tmp_path_factory.mktemp("flows") / "site")


@pytest.fixture
def flows(flows_target: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """vaezoo-flows installed on sys.path, with discovery starting afresh."""
    monkeypatch.syspath_prepend(str(flows_target))
    for name in [m for m in sys.modules if m == "vaezoo_flows" or m.startswith("vaezoo_flows.")]:
        monkeypatch.delitem(sys.modules, name)  # a copy installed in the environment must not shadow this one
    reset_registry()
    import vaezoo_flows

    assert Path(vaezoo_flows.__file__).is_relative_to(flows_target), "imported from the source tree, not installed"
    yield vaezoo_flows
    for name in [m for m in sys.modules if m == "vaezoo_flows" or m.startswith("vaezoo_flows.")]:
        del sys.modules[name]


def test_installed_flows_plugin_is_discovered(flows):
    record = get_registry().plugins["flows"]
    assert (record.status, record.distribution, record.version, record.error) == ("active", "vaezoo-flows", "0.1.0", None)
    assert record.contributed == {"prior": ["realnvp"], "variant": ["flow-vae-mlp"]}
    assert "realnvp" in vaezoo.list_components("prior")
    assert vaezoo.get_model_spec("flow-vae-mlp").plugin == "flows"


def test_cli_reports_the_flows_plugin(flows, capsys):
    code, out = run_cli(capsys, "plugins", "--json")
    record = next(r for r in json.loads(out) if r["name"] == "flows")
    assert code == 0 and record["status"] == "active" and record["distribution"] == "vaezoo-flows"
    assert record["contributed"] == {"prior": ["realnvp"], "variant": ["flow-vae-mlp"]}
    code, out = run_cli(capsys, "list", "--json")
    rows = {r["name"]: r["plugin"] for r in json.loads(out)}
    assert code == 0 and rows["flow-vae-mlp"] == "flows" and rows["vae-mlp"] == "vaezoo"
    code, out = run_cli(capsys, "show", "flow-vae-mlp", "--json")
    parts = json.loads(out)["parts"]
    assert (parts["prior"]["name"], parts["prior"]["plugin"]) == ("realnvp", "flows")
    assert (parts["encoder"]["name"], parts["encoder"]["plugin"]) == ("mlp", "vaezoo")


def test_flow_vae_trains_one_epoch_through_the_cli(flows, capsys, tmp_path):
    run = tmp_path / "run"
    code = main(["train", "flow-vae-mlp", "--dataset", "digits", "--epochs", "1", "--out", str(run), "--quiet"])
    assert code == 0, capsys.readouterr().err
    (metrics,) = read_metrics(run)
    assert math.isfinite(metrics["val_elbo"]) and math.isfinite(metrics["val_kl"])
    model = vaezoo.load_model(run)
    assert isinstance(model.prior, flows.RealNVPPrior)
    last_layers = [layer.net[-1].weight for layer in model.prior.layers]
    assert any(w.abs().sum() > 0 for w in last_layers), "the prior starts at zero and must have been trained"
    assert model.sample(4).shape == (4, 1, 8, 8)
    capsys.readouterr()
    assert main(["eval", str(run), "--nll-samples", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert math.isfinite(result["nll"]) and math.isfinite(result["mutual_information"])
    assert "closed-form KL" in result["unavailable"]["kl_per_dim"]


def test_flow_prior_needs_two_latent_dims(flows):
    with pytest.raises(BadOverrideError, match="latent_dim >= 2"):
        vaezoo.create_model("flow-vae-mlp", input_shape=(1, 8, 8), latent_dim=1)
    model = vaezoo.create_model("flow-vae-mlp", input_shape=(1, 8, 8), latent_dim=3, **{"prior.coupling_layers": 3})
    assert len(model.prior.layers) == 3


def random_flow(flows: ModuleType, latent_dim: int) -> torch.nn.Module:
    """A float64 RealNVP prior moved away from its identity start, so the checks below see a real flow."""
    torch.manual_seed(0)
    prior = flows.RealNVPPrior(latent_dim, coupling_layers=4, hidden_dim=16).double()
    with torch.no_grad():
        for layer in prior.layers:
            layer.net[-1].weight.normal_(0.0, 0.5)
            layer.net[-1].bias.normal_(0.0, 0.3)
    return prior


@pytest.mark.parametrize("latent_dim", [2, 3, 5])
def test_flow_log_prob_is_the_change_of_variables(flows, latent_dim):
    prior = random_flow(flows, latent_dim)
    z = torch.randn(4, latent_dim, dtype=torch.float64)
    log_prob = prior.log_prob(z)
    for zi, lp in zip(z, log_prob):
        jacobian = torch.autograd.functional.jacobian(lambda v: prior.to_base(v)[0], zi)
        u = prior.to_base(zi)[0]
        base = torch.distributions.Normal(0.0, 1.0).log_prob(u).sum()
        assert lp.item() == pytest.approx((base + torch.linalg.slogdet(jacobian)[1]).item(), abs=1e-10)


def test_flow_density_integrates_to_one(flows):
    prior = random_flow(flows, 2)
    grid = torch.linspace(-10.0, 10.0, 801, dtype=torch.float64)
    points = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        mass = prior.log_prob(points).exp().sum() * (grid[1] - grid[0]) ** 2
    assert mass.item() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("latent_dim", [2, 7])
def test_flow_sample_runs_the_log_prob_map_backwards(flows, latent_dim):
    prior = random_flow(flows, latent_dim)
    z = prior.sample(64)
    assert z.shape == (64, latent_dim) and z.dtype == torch.float64
    u, _ = prior.to_base(z)
    torch.testing.assert_close(prior.from_base(u), z, atol=1e-10, rtol=0)
    torch.testing.assert_close(prior.log_prob(z.unsqueeze(0).expand(3, -1, -1))[1], prior.log_prob(z))


# --- fake installed distributions ----------------------------------------------------------------------------

GOOD = """
    from vaezoo import VariantSpec, hookimpl
    from vaezoo.components.priors import StandardNormal

    @hookimpl
    def vaezoo_register_priors(register):
        register("good-prior", StandardNormal)

    @hookimpl
    def vaezoo_register_variants(register):
        register("good-vae", VariantSpec(encoder="mlp", decoder="mlp", prior="good-prior", input_shape=(1, 8, 8)))
"""

BROKEN = {
    "import": ("import failed", "raise ImportError('needs a package that is not installed')\n"),
    "hook": ("vaezoo_register_variants raised", """
        from vaezoo import hookimpl
        from vaezoo.components.priors import StandardNormal

        @hookimpl
        def vaezoo_register_priors(register):
            register("half-prior", StandardNormal)

        @hookimpl
        def vaezoo_register_variants(register):
            raise RuntimeError("boom")
    """),
    "unknown-hook": ("hook validation failed", """
        from vaezoo import hookimpl

        @hookimpl
        def vaezoo_register_prior(register):
            pass
    """),
    "argument-names": ("hook validation failed", """
        from vaezoo import hookimpl

        @hookimpl
        def vaezoo_register_priors(reg):
            pass
    """),
    "wrapper": ("hook validation failed", """
        from vaezoo import hookimpl

        @hookimpl(wrapper=True)
        def vaezoo_register_priors(register):
            return (yield)
    """),
    "bad-register": ("vaezoo_register_encoders raised", """
        from vaezoo import hookimpl

        @hookimpl
        def vaezoo_register_encoders(register):
            register("Not A Name", dict)
    """),
    "bad-dataset": ("vaezoo_register_datasets raised: TypeError: dataset 'tables': the loader must be callable", """
        from vaezoo import hookimpl

        @hookimpl
        def vaezoo_register_datasets(register):
            register("tables", [[0.5]])
    """),
}


def assert_builtin_zoo_works() -> None:
    assert get_registry().plugins["vaezoo"].status == "active"
    assert {"vae-mlp", "vae-conv"} <= set(vaezoo.list_models())
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8))
    assert model(torch.rand(2, 1, 8, 8).bernoulli()).loss.isfinite()


@pytest.mark.parametrize("failure", sorted(BROKEN))
def test_a_failing_plugin_warns_once_and_is_skipped(site, failure, capsys):
    stage, source = BROKEN[failure]
    site.install("broken", source)
    site.install("good", GOOD)
    with pytest.warns(PluginWarning) as caught:
        registry = get_registry()
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "'broken'" in message and "broken 1.0" in message and stage in message
    record = registry.plugins["broken"]
    assert (record.status, record.distribution, record.version, record.contributed) == ("failed", "broken", "1.0", {})
    assert record.error.startswith(stage)
    assert "half-prior" not in vaezoo.list_components("prior"), "a failed plugin's partial work is forgotten"
    assert registry.plugins["good"].status == "active"
    vaezoo.create_model("good-vae")
    assert_builtin_zoo_works()
    code, out = run_cli(capsys, "plugins")
    assert code == 0 and "broken  (broken 1.0)  failed" in out and f"error: {stage}" in out


@pytest.mark.parametrize("failure", ["import", "hook", "unknown-hook"])
def test_strict_mode_turns_plugin_failures_into_errors(site, failure, monkeypatch, capsys):
    site.install("broken", BROKEN[failure][1])
    monkeypatch.setenv("VAEZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="'broken'"):
        get_registry()
    reset_registry()
    code = main(["list"])
    assert code == 2 and "plugin 'broken'" in capsys.readouterr().err


@pytest.mark.parametrize("blocked", ["blockme", "blockme-dist"])
def test_blocked_plugin_is_never_imported(site, blocked, monkeypatch, capsys, recwarn):
    site.install("blockme-dist", "raise ImportError('must not be imported')\n", plugin="blockme")
    site.install("good", GOOD)
    monkeypatch.setenv("VAEZOO_DISABLE_PLUGINS", f"other, {blocked}")
    registry = get_registry()
    assert not [w for w in recwarn if issubclass(w.category, PluginWarning)]
    record = registry.plugins["blockme"]
    assert (record.status, record.error, record.contributed) == ("blocked", None, {})
    assert "blockme_dist_plugin" not in sys.modules
    vaezoo.create_model("good-vae")
    assert_builtin_zoo_works()
    code, out = run_cli(capsys, "plugins", "--json")
    assert {"name": "blockme", "status": "blocked"}.items() <= next(
        r for r in json.loads(out) if r["name"] == "blockme"
    ).items()


def clashing_plugin(tag: str) -> str:
    """A plugin that reuses the built-in encoder name 'mlp', and a prior and a variant name of the other one."""
    return f"""
        from vaezoo import VariantSpec, hookimpl
        from vaezoo.components.encoders import MLPEncoder
        from vaezoo.components.priors import StandardNormal

        class {tag.title()}Prior(StandardNormal):
            pass

        @hookimpl
        def vaezoo_register_encoders(register):
            register("mlp", MLPEncoder)

        @hookimpl
        def vaezoo_register_priors(register):
            register("shared", {tag.title()}Prior)

        @hookimpl
        def vaezoo_register_variants(register):
            register("twin-vae", VariantSpec(encoder="mlp", decoder="mlp", prior="shared", input_shape=(1, 8, 8)))
    """


def test_clashing_plugins_need_plugin_prefix(site, capsys, recwarn):
    site.install("alpha", clashing_plugin("alpha"))
    site.install("beta", clashing_plugin("beta"))
    assert not [w for w in recwarn if issubclass(w.category, PluginWarning)]
    with pytest.raises(AmbiguousNameError) as info:
        vaezoo.create_model("twin-vae")
    assert "alpha:twin-vae" in str(info.value) and "beta:twin-vae" in str(info.value)
    with pytest.raises(AmbiguousNameError) as info:
        vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), encoder="mlp")
    assert all(f"{p}:mlp" in str(info.value) for p in ("vaezoo", "alpha", "beta"))
    with pytest.raises(AmbiguousNameError) as info:
        vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), prior="shared")
    assert "alpha:shared" in str(info.value) and "beta:shared" in str(info.value)

    for plugin in ("alpha", "beta"):  # a recipe's bare names mean its own plugin's parts
        model = vaezoo.create_model(f"{plugin}:twin-vae")
        assert type(model.prior).__name__ == f"{plugin.title()}Prior"
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), prior="beta:shared", encoder="alpha:mlp")
    assert type(model.prior).__name__ == "BetaPrior"
    assert_builtin_zoo_works()

    code, out = run_cli(capsys, "list", "--kind", "prior")
    assert code == 0 and "alpha:shared" in out and "beta:shared" in out
    code, out = run_cli(capsys, "show", "beta:twin-vae", "--json")
    parts = json.loads(out)["parts"]
    assert parts["prior"]["plugin"] == "beta" and parts["encoder"]["plugin"] == "beta"
    assert parts["decoder"]["plugin"] == "vaezoo"


def test_same_entry_point_name_in_two_distributions_is_kept_apart(site):
    site.install("first-dist", GOOD, plugin="dup")
    site.install("second-dist", GOOD.replace("good-", "other-"), plugin="dup")
    dups = {r.name: r for r in get_registry().plugins.values() if r.name.startswith("dup")}
    # both are qualified by their distribution, whatever order the environment lists them in
    assert set(dups) == {"dup@first-dist", "dup@second-dist"}
    assert all(name == f"dup@{record.distribution}" for name, record in dups.items())
    assert all(r.status == "active" for r in dups.values())
    for variant in ("good-vae", "other-vae"):
        plugin = vaezoo.get_model_spec(variant).plugin
        vaezoo.create_model(f"{plugin}:{variant}")


def test_plugin_without_hookimpls_is_active_but_flagged(site, capsys):
    site.install("forgetful", "def vaezoo_register_priors(register):\n    register('never', object)\n")
    assert get_registry().plugins["forgetful"].status == "active"
    code, out = run_cli(capsys, "plugins")
    assert code == 0 and "registered nothing: are its hook functions decorated with @vaezoo.hookimpl?" in out


# --- datasets from plugins ------------------------------------------------------------------------------------

BUILTIN_DATASETS = {"digits", "fashion-mnist", "mnist", "folder", "arrays", "huggingface", "dsprites", "colour-shapes"}


def test_a_plugins_dataset_trains_through_the_cli(site, capsys, tmp_path):
    site.install("vaezoo-boards", BOARDS, plugin="boards")
    run = tmp_path / "run"
    code = main(["train", "vae-mlp", "--dataset", "checkers", "--epochs", "1", "--batch-size", "16", "--set",
                 "encoder.hidden_dims=[8]", "--set", "decoder.hidden_dims=[8]", "--out", str(run), "--quiet"])
    assert code == 0, capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"] == "checkers" and config["input_shape"] == [1, 6, 6]
    (metrics,) = read_metrics(run)
    assert metrics["epoch"] == 1 and math.isfinite(metrics["val_elbo"])
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0, "the run reloads its plugin dataset by name"
    assert math.isfinite(json.loads(capsys.readouterr().out)["elbo"])


def test_a_plugins_dataset_is_listed_with_its_plugin(site, capsys):
    site.install("vaezoo-boards", BOARDS, plugin="boards")
    code, out = run_cli(capsys, "list", "--kind", "dataset")
    plugin_of = {line.split()[0]: line.split()[1] for line in out.splitlines()}
    assert code == 0 and plugin_of == {**dict.fromkeys(BUILTIN_DATASETS, "vaezoo"), "checkers": "boards",
                                       "unpacked": "boards"}
    assert "checkers       boards  Checkerboards and their inverses (48 images, 12 held out)." in out
    code, out = run_cli(capsys, "list", "--kind", "dataset", "check*", "--json")
    assert code == 0 and json.loads(out) == [{"name": "checkers", "kind": "dataset", "plugin": "boards",
                                              "description": "Checkerboards and their inverses (48 images, 12 held out)."}]
    code, out = run_cli(capsys, "plugins")
    assert code == 0 and "datasets     checkers, unpacked" in out


def test_a_plugins_dataset_takes_options_limit_and_its_qualified_name(site):
    site.install("vaezoo-boards", BOARDS, plugin="boards")
    data = load_dataset("boards:checkers", image_size=4, limit=5)
    assert data.input_shape == (1, 4, 4) and len(data.train_x) == 5 and len(data.test_x) == 12
    with pytest.raises(DataError, match="^the checkers dataset reads no files and takes no --data-dir; leave it out$"):
        load_dataset("checkers", "/somewhere")
    with pytest.raises(DataError, match="^--channels does not apply to the checkers dataset; it is for folder and huggingface$"):
        load_dataset("checkers", channels=3)
    with pytest.raises(DataError) as info:
        load_dataset("digits", image_size=4)
    assert str(info.value) == "--image-size does not apply to the digits dataset; it is for checkers and folder and huggingface"


def test_a_loader_that_returns_no_dataset_is_named_with_its_plugin(site):
    site.install("vaezoo-boards", BOARDS, plugin="boards")
    with pytest.raises(DataError) as info:
        load_dataset("unpacked")
    assert str(info.value) == ("dataset 'boards:unpacked': its loader load_unpacked returned dict, not vaezoo "
                               "Splits or a vaezoo.Dataset; fix the boards plugin")


def test_clashing_dataset_names_need_the_plugin_prefix(site):
    site.install("vaezoo-boards", BOARDS, plugin="boards")
    site.install("vaezoo-tiles", BOARDS, plugin="tiles")
    with pytest.raises(AmbiguousNameError, match="dataset 'checkers' is provided by 2 plugins") as info:
        load_dataset("checkers")
    assert "boards:checkers" in str(info.value) and "tiles:checkers" in str(info.value)
    assert load_dataset("tiles:checkers").input_shape == (1, 6, 6)
    assert {"boards:checkers", "tiles:checkers", "digits"} <= set(get_registry().names("dataset"))


# --- datasets are identities (issue 21) -------------------------------------------------------------------------

def uninstall(site, dist: str) -> None:
    """Remove the fake distribution `dist` from `site`, as pip uninstall would, and discover afresh."""
    info = site.root / f"{dist.replace('-', '_')}-1.0.dist-info"
    module = (info / "entry_points.txt").read_text().splitlines()[1].split(" = ")[1]
    for path in sorted(info.iterdir()):
        path.unlink()
    info.rmdir()
    (site.root / f"{module}.py").unlink()
    sys.modules.pop(module, None)
    importlib.invalidate_caches()
    reset_registry()


def train_on_checkers(run: Path) -> None:
    assert main(["train", "vae-mlp", "--dataset", "checkers", "--epochs", "1", "--batch-size", "16", "--set",
                 "encoder.hidden_dims=[8]", "--set", "decoder.hidden_dims=[8]", "--out", str(run), "--quiet"]) == 0


def test_a_run_records_its_datasets_plugin_distribution_and_version(site, tmp_path):
    site.install("vaezoo-boards", BOARDS, plugin="boards")
    train_on_checkers(tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["dataset"] == "checkers"
    assert config["dataset_identity"] == {"name": "boards:checkers", "distribution": "vaezoo-boards", "version": "1.0"}


def test_eval_and_resume_of_a_run_whose_dataset_plugin_is_gone_say_what_to_install(site, tmp_path, capsys):
    site.install("vaezoo-boards", BOARDS, plugin="boards")
    run = tmp_path / "run"
    train_on_checkers(run)
    uninstall(site, "vaezoo-boards")
    capsys.readouterr()
    assert main(["eval", str(run)]) == 2
    assert "distribution vaezoo-boards 1.0, which is not installed: pip install 'vaezoo-boards==1.0'" in \
        capsys.readouterr().err
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--quiet"]) == 2
    assert "pip install 'vaezoo-boards==1.0'" in capsys.readouterr().err


def test_another_plugins_dataset_of_the_same_name_never_takes_over_a_run(site, tmp_path, capsys):
    site.install("vaezoo-boards", BOARDS, plugin="boards")
    run = tmp_path / "run"
    train_on_checkers(run)
    site.install("vaezoo-tiles", BOARDS.replace('"checkers", load_checkers', '"checkers", lambda: 1 / 0'),
                 plugin="tiles")
    reset_registry()
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0, capsys.readouterr().err  # boards' checkers, not tiles'
    uninstall(site, "vaezoo-boards")
    assert main(["eval", str(run), "--json"]) == 2
    assert "pip install 'vaezoo-boards==1.0'" in capsys.readouterr().err


def test_a_relative_data_dir_is_recorded_absolute_and_never_read_inside_the_run(tmp_path, monkeypatch, capsys):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "data.npy", np.random.default_rng(0).random((40, 6, 6), dtype=np.float32))
    run = tmp_path / "run"
    assert main(["train", "vae-mlp", "--dataset", "arrays", "--data-dir", "data.npy", "--epochs", "1",
                 "--set", "encoder.hidden_dims=[8]", "--set", "decoder.hidden_dims=[8]", "--out", "run",
                 "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["data_dir"] == str(tmp_path / "data.npy")
    np.save(run / "data.npy", np.zeros((40, 6, 6), dtype=np.float32))  # a file of that name inside the run
    capsys.readouterr()
    assert main(["eval", str(run)]) == 2
    assert f"data from {tmp_path / 'data.npy'}, outside the run directory" in capsys.readouterr().err
    assert main(["eval", str(run), "--data-dir", "data.npy", "--json"]) == 0


def test_data_options_reach_the_loader_from_the_flag_and_the_config_file(site, tmp_path):
    site.install("vaezoo-boards", BOARDS, plugin="boards")
    (tmp_path / "c.toml").write_text('variant = "vae-mlp"\ndataset = "checkers"\nepochs = 1\nbatch_size = 16\n'
                                     '[data_options]\nimage_size = 4\n'
                                     '[set]\n"encoder.hidden_dims" = [8]\n"decoder.hidden_dims" = [8]\n')
    assert main(["train", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert json.loads((tmp_path / "a" / "config.json").read_text())["input_shape"] == [1, 4, 4]
    train_args = ["train", "vae-mlp", "--dataset", "checkers", "--epochs", "1", "--batch-size", "16", "--set",
                  "encoder.hidden_dims=[8]", "--set", "decoder.hidden_dims=[8]", "--quiet"]
    assert main([*train_args, "--data-option", "image_size=5", "--out", str(tmp_path / "b")]) == 0
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["input_shape"] == [1, 5, 5] and config["train"]["data_options"] == {"image_size": 5}
    assert main(["eval", str(tmp_path / "b"), "--json"]) == 0  # the options are replayed


def test_a_data_dir_or_option_a_dataset_does_not_take_is_refused():
    with pytest.raises(DataError, match="^the digits dataset reads no files and takes no --data-dir; leave it out$"):
        load_dataset("digits", "/etc")
    with pytest.raises(DataError, match="^--data-option colour does not apply to the digits dataset"):
        load_dataset("digits", colour=1)
