"""The plugin contract checked at the door, combinations refused at build, and run identities that cannot be
hijacked: each failure is one line that names the part, the plugin or the distribution, and what to do."""
from __future__ import annotations

import json
import math

import pytest
import torch

import vaezoo
from vaezoo.cli.main import main
from vaezoo.errors import CombinationError, RunDirError
from vaezoo.registry.catalog import check_factory
from vaezoo.registry.discovery import PluginWarning, get_registry, reset_registry

LAB = """
    import math
    import torch
    from torch import nn
    from vaezoo import Prior, hookimpl

    class ShiftedPrior(Prior):
        \"\"\"N(shift, I) with a Monte-Carlo KL (no closed form given).\"\"\"

        def __init__(self, latent_dim, shift=0.5):
            super().__init__(latent_dim)
            self.shift = shift

        def sample(self, n):
            return torch.randn(n, self.latent_dim) + self.shift

        def log_prob(self, z):
            return -0.5 * ((z - self.shift) ** 2 + math.log(2 * math.pi)).sum(-1)

    @hookimpl
    def vaezoo_register_priors(register):
        register("shifted", ShiftedPrior)
"""


def plugin_with(body: str) -> str:
    return "from torch import nn\nimport torch\nfrom vaezoo import hookimpl\n" + body


def failed_record(site, source: str):
    site.install("faulty", source)
    with pytest.warns(PluginWarning):
        record = get_registry().plugins["faulty"]
    assert record.status == "failed"
    return record


# --- at the door: hooks and factory signatures ---------------------------------------------------------------


def test_a_misspelt_hook_is_answered_with_the_close_match(site):
    record = failed_record(site, plugin_with("@hookimpl\ndef vaezoo_register_prior(register):\n    pass\n"))
    assert "vaezoo_register_prior is not a vaezoo hook; did you mean vaezoo_register_priors?" in record.error


def test_a_hook_argument_not_called_register_gets_a_sentence(site):
    record = failed_record(site, plugin_with("@hookimpl\ndef vaezoo_register_priors(reg):\n    pass\n"))
    assert "vaezoo_register_priors(reg): a vaezoo hook takes exactly one argument, named register" in record.error


def test_a_factory_that_forgets_its_context_is_refused_against_the_plugin(site):
    source = plugin_with("""
class Forgetful(nn.Module):
    def __init__(self, input_shape, hidden=16):
        super().__init__()

@hookimpl
def vaezoo_register_encoders(register):
    register("forgetful", Forgetful)
""")
    record = failed_record(site, source)
    assert "encoder 'forgetful'" in record.error and "does not name latent_dim" in record.error
    assert "forgetful" not in vaezoo.list_components("encoder")


def test_context_is_passed_by_keyword_so_order_does_not_matter():
    def encoder(latent_dim, input_shape, width=8):  # context names in another order: still fine
        return None

    check_factory("encoder", "swapped", encoder)
    with pytest.raises(TypeError, match="does not name output_shape"):
        check_factory("decoder", "half", lambda latent_dim, width=3: None)
    check_factory("prior", "anything", lambda **kwargs: None)  # **kwargs takes any context


# --- at build: what a factory returns, and combinations --------------------------------------------------------


def test_a_prior_that_is_a_plain_module_is_refused_before_a_run_directory_exists(site, tmp_path, capsys):
    site.install("lab", plugin_with("""
@hookimpl
def vaezoo_register_priors(register):
    register("plain", lambda latent_dim: nn.Linear(latent_dim, latent_dim))
"""))
    with pytest.raises(CombinationError, match=r"prior 'lab:plain': its factory returned a torch.nn.*Linear, not a vaezoo.Prior"):
        vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), prior="plain")
    run = tmp_path / "run"
    code = main(["train", "vae-mlp", "--dataset", "digits", "--set", "prior=plain", "--out", str(run), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not a vaezoo.Prior" in err
    assert not run.exists()


def test_an_encoder_with_the_wrong_output_shapes_is_refused_with_both_shapes(site):
    site.install("lab", plugin_with("""
class Narrow(nn.Module):
    def __init__(self, input_shape, latent_dim):
        super().__init__()
        self.linear = nn.Linear(64, latent_dim)

    def forward(self, x):
        return self.linear(x.flatten(1))

@hookimpl
def vaezoo_register_encoders(register):
    register("narrow", Narrow)
"""))
    with pytest.raises(CombinationError) as info:
        vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=3, encoder="narrow")
    assert "encoder 'lab:narrow' returned [1, 3] for one input; the posterior reads a tuple of tensors shaped ([1, 3], [1, 3])" in str(info.value)


@pytest.mark.parametrize("argv, message", [
    (["mog-vae-mlp", "--set", "free_bits=0.5"],
     "objective 'vaezoo:elbo' needs the KL split into one term per latent dimension, which posterior 'vaezoo:gaussian' with prior 'vaezoo:mog' does not give"),
    (["vae-mlp", "--set", "posterior=ladder"],
     "posterior 'vaezoo:ladder' cannot be used with prior 'vaezoo:standard-normal': it needs a prior on ladder"),
    (["hvae-mlp", "--set", "objective=tc"],
     "objective 'vaezoo:tc' needs log q(z_d|x)"),
])
def test_refused_combinations_exit_2_with_one_line_and_no_run_directory(argv, message, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", *argv, "--dataset", "digits", "--epochs", "1", "--out", str(run), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not run.exists()


#: A plugin posterior whose why_not offers every feature (as a hasty author writes it) but that implements none
#: of the methods behind them, and one whose moments have the wrong shape.
PROMISING = """
class Promising(Posterior):
    def draw(self, params, prior, samples=None):
        mu, logvar = params
        z = mu if samples is None else mu.expand(samples, *mu.shape)
        return Latent(z, torch.zeros(mu.shape[0]), torch.zeros(z.shape[:-1]))

    def mean(self, params, prior):
        return params[0]

    def why_not(self, feature, prior):
        return None

class Flat(Promising):
    def moments(self, params):
        return params[0].sum(-1), params[1].sum(-1)

@hookimpl
def vaezoo_register_posteriors(register):
    register("promising", Promising)
    register("flat", Flat)
"""


@pytest.mark.parametrize("objective, override, message", [
    ("dip", "promising", "objective 'vaezoo:dip' needs the mean and the per-dimension variance of q(z|x); "
     "posterior 'lab:promising' with prior 'vaezoo:standard-normal' offers it (its why_not gives no reason), but "
     "fails on one example: NotImplementedError: Promising does not implement moments"),
    ("dip", "flat", "posterior 'lab:flat' with prior 'vaezoo:standard-normal' offers it (its why_not gives "
     "no reason), but moments(params)[0] returned [1] for one example, not [1, 3]"),
    ("tc", "promising", "objective 'vaezoo:tc' needs log q(z_d|x)"),
])
def test_a_posterior_that_offers_a_feature_it_does_not_implement_is_refused_at_build(site, objective, override, message):
    """dip-vae with a plugin posterior lacking moments once passed the build and failed at the first step."""
    site.install("lab", plugin_with("from vaezoo import Latent, Posterior\n" + PROMISING))
    with pytest.raises(CombinationError) as info:
        vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=3, posterior=override, objective=objective)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_an_objective_needing_an_unknown_feature_is_refused_with_the_known_ones(site):
    site.install("lab", plugin_with("""
from vaezoo.components.objectives.elbo import ELBO

class Greedy(ELBO):
    def needs(self):
        return frozenset({"entropy"})

@hookimpl
def vaezoo_register_objectives(register):
    register("greedy", Greedy)
"""))
    with pytest.raises(CombinationError, match=r"objective 'lab:greedy' needs the posterior feature 'entropy', which "
                       r"vaezoo does not know; the features are samples, kl_per_dim, density, moments"):
        vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), objective="greedy")


def test_a_conditional_vamp_prior_encodes_its_pseudo_inputs_with_labels(capsys, tmp_path):
    model = vaezoo.create_model("cvae-mlp", input_shape=(1, 8, 8), prior="vamp", **{"prior.components": 7})
    assert model.prior.labels.shape == (7, 10) and model.prior.labels.argmax(1).tolist() == [k % 10 for k in range(7)]
    out = model(torch.rand(4, 1, 8, 8).bernoulli(), torch.tensor([0, 1, 2, 9]))
    out.loss.backward()
    assert torch.isfinite(out.loss) and model.prior.pseudo.grad.abs().sum() > 0
    run = tmp_path / "run"
    assert main(["train", "cvae-mlp", "--dataset", "digits", "--epochs", "1", "--set", "prior=vamp",
                 "--set", "prior.components=20", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--nll-samples", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert math.isfinite(result["nll"]) and result["unavailable"] == {
        "kl_per_dim": "prior VampPrior has no closed-form KL and does not factorize over dimensions"}


# --- identity: a run loads the parts of the distributions that made it ----------------------------------------


@pytest.fixture
def lab_run(site, tmp_path, capsys):
    """A run of vae-mlp with the `lab` plugin's Monte-Carlo prior swapped in."""
    site.install("vaezoo-lab", LAB, plugin="lab")
    run = tmp_path / "run"
    assert main(["train", "vae-mlp", "--dataset", "digits", "--epochs", "1", "--set", "prior=shifted",
                 "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    config = json.loads((run / "config.json").read_text())
    assert config["identity"]["prior"] == {"name": "lab:shifted", "distribution": "vaezoo-lab", "version": "1.0"}
    return run


def test_a_plugin_run_evaluates_with_its_monte_carlo_prior(lab_run, capsys):
    assert main(["eval", str(lab_run), "--nll-samples", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert math.isfinite(result["nll"]) and math.isfinite(result["mutual_information"])
    assert "kl_per_dim" not in result
    assert result["unavailable"] == {"kl_per_dim": "prior ShiftedPrior has no closed-form KL and does not factorize over dimensions"}


def test_an_uninstalled_plugin_is_named_with_what_to_install(lab_run, site):
    (site.root / "vaezoo_lab-1.0.dist-info" / "entry_points.txt").unlink()
    reset_registry()
    with pytest.raises(RunDirError) as info:
        vaezoo.load_model(lab_run)
    message = str(info.value)
    assert "distribution vaezoo-lab 1.0, which is not installed: pip install 'vaezoo-lab==1.0'" in message
    assert "Did you mean" not in message and "..." not in message


def test_a_blocked_plugin_is_named_with_how_to_unblock_it(lab_run, monkeypatch):
    monkeypatch.setenv("VAEZOO_DISABLE_PLUGINS", "lab")
    reset_registry()
    with pytest.raises(RunDirError, match="installed but blocked by VAEZOO_DISABLE_PLUGINS; remove lab from that variable"):
        vaezoo.load_model(lab_run)


def test_a_strangers_part_of_the_same_name_is_never_loaded_instead(lab_run, site):
    (site.root / "vaezoo_lab-1.0.dist-info" / "entry_points.txt").unlink()
    site.install("stranger", LAB.replace("+ self.shift", "- self.shift"), plugin="lab", module="stranger_lab")
    reset_registry()
    assert vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), prior="lab:shifted").config["identity"]["prior"][
        "distribution"] == "stranger"
    with pytest.raises(RunDirError, match="vaezoo-lab 1.0, which is not installed"):
        vaezoo.load_model(lab_run)


def test_a_run_still_loads_when_another_distribution_takes_the_same_plugin_name(lab_run, site):
    site.install("stranger", LAB, plugin="lab", module="stranger_lab")
    reset_registry()
    names = {r.name for r in get_registry().plugins.values() if r.name.startswith("lab")}
    assert names == {"lab@vaezoo-lab", "lab@stranger"}
    model = vaezoo.load_model(lab_run)
    assert model.config["identity"]["prior"] == {"name": "lab@vaezoo-lab:shifted", "distribution": "vaezoo-lab",
                                                 "version": "1.0"}
    assert model.sample(3).shape == (3, 1, 8, 8)
