"""Weights as plugin contributions: vaezoo_register_weights, checked at the door; pretrained:VARIANT/DATASET
wherever a run is taken, vaezoo.create_model(..., pretrained=DATASET), `vaezoo list --pretrained`; a file whose
hash does not match, and unknown names, are refused."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from plugin_sites import install_weights

import vaezoo
from vaezoo.cli.main import main
from vaezoo.errors import BadOverrideError, RunDirError, UnknownNameError
from vaezoo.registry.discovery import PluginWarning, get_registry, reset_registry
from vaezoo.runs.directory import load_model
from vaezoo.training.trainer import TrainConfig, train


@pytest.fixture(autouse=True)
def without_installed_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests register weights of their own: the distribution the set-up installs is blocked."""
    monkeypatch.setenv("VAEZOO_DISABLE_PLUGINS", "vaezoo-weights")
    reset_registry()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "run"
    config = TrainConfig(variant="vae-mlp", dataset="digits", out=str(out), epochs=1, batch_size=64,
                         overrides={"encoder.hidden_dims": [8], "decoder.hidden_dims": [8]})
    return train(config, progress=False)


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_shipped_weights_are_listed_and_load_everywhere_a_run_is_taken(site, tiny_run, tmp_path, capsys):
    shipped = install_weights(site, tiny_run, "vae-mlp/digits")
    code, out = run_cli(capsys, "list", "--pretrained", "--json")
    (row,) = json.loads(out)
    assert code == 0 and row["name"] == "pretrained:vae-mlp/digits" and row["plugin"] == "tiny-weights"
    assert (row["variant"], row["dataset"], row["metrics"]) == ("vae-mlp", "digits", {"elbo": -1.5})
    assert row["command"] == "vaezoo train vae-mlp/digits" and len(row["sha256"]) == 64
    assert "pretrained:vae-mlp/digits  tiny-weights  ELBO -1.50" in run_cli(capsys, "list", "--pretrained")[1]

    expected = load_model(tiny_run).state_dict()
    for model in (load_model("pretrained:vae-mlp/digits"), vaezoo.create_model("vae-mlp", pretrained="digits")):
        assert not model.training
        assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    for command in ("sample", "reconstruct", "interpolate"):
        code, out = run_cli(capsys, command, "pretrained:vae-mlp/digits", "--out", str(tmp_path / f"{command}.png"))
        assert code == 0 and (tmp_path / f"{command}.png").stat().st_size > 0
    code, out = run_cli(capsys, "eval", "pretrained:vae-mlp/digits", "--nll-samples", "2", "--json")
    assert code == 0 and json.loads(out)["examples"] == 297
    assert sorted(p.name for p in shipped.iterdir()) == ["config.json", "metrics.jsonl", "model.safetensors"]


def test_a_changed_file_is_refused_in_one_line(site, tiny_run):
    shipped = install_weights(site, tiny_run, "vae-mlp/digits")
    data = bytearray((shipped / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (shipped / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(RunDirError, match=r"pretrained:vae-mlp/digits \(plugin tiny-weights\): .* has SHA-256 "
                                          r"[0-9a-f]{12}\.\.\., not the registered"):
        load_model("pretrained:vae-mlp/digits")


def test_registered_hash_that_does_not_match_is_refused(site, tiny_run):
    install_weights(site, tiny_run, "vae-mlp/digits", sha256="0" * 64)
    with pytest.raises(RunDirError, match="not the registered 000000000000"):
        vaezoo.create_model("vae-mlp", pretrained="digits")


def test_shipped_config_must_name_the_registered_variant_and_dataset(site, tiny_run):
    install_weights(site, tiny_run, "vae-conv/digits")
    with pytest.raises(RunDirError, match="its config.json records vae-mlp/digits, not vae-conv/digits"):
        load_model("pretrained:vae-conv/digits")


def test_unknown_names_are_answered_with_close_matches(site, tiny_run):
    with pytest.raises(UnknownNameError, match="no pretrained weights are installed.*pip install"):
        load_model("pretrained:vae-mlp/digits")
    install_weights(site, tiny_run, "vae-mlp/digits")
    reset_registry()  # discovered again, now with the weights installed
    with pytest.raises(UnknownNameError, match=r"Did you mean pretrained:vae-mlp/digits\? Installed: vae-mlp/digits"):
        load_model("pretrained:vae-mpl/digits")
    with pytest.raises(UnknownNameError, match="name pretrained weights as pretrained:VARIANT/DATASET"):
        load_model("pretrained:vae-mlp")


def test_pretrained_fixes_the_architecture(site, tiny_run):
    install_weights(site, tiny_run, "vae-mlp/digits")
    with pytest.raises(BadOverrideError, match="latent_dim, beta cannot be set too"):
        vaezoo.create_model("vae-mlp", latent_dim=4, beta=2.0, pretrained="digits")
    assert vaezoo.create_model("vae-mlp", latent_dim=3).latent_dim == 3  # without pretrained= as before


def test_shipped_runs_are_read_only(site, tiny_run):
    from vaezoo.runs.directory import claim_run_dir

    shipped = install_weights(site, tiny_run, "vae-mlp/digits")
    with pytest.raises(RunDirError, match="is read-only .* copy that directory"):
        claim_run_dir("pretrained:vae-mlp/digits")
    assert not (shipped / ".lock").exists() and not any(p.name.startswith(".") for p in shipped.iterdir())


BAD = {
    "a short hash": ({"sha256": "abc"}, "sha256 must be 64 lower-case hex digits"),
    "no command": ({"command": " "}, "command must be the command line"),
    "a metric that is not a number": ({"metrics": {"elbo": "good"}}, "metrics must be an object of metric names"),
    "an unknown field": ({"url": "http://x"}, "unknown fields ['url']"),
    "a missing folder": ({"files": "/nonexistent/run"}, "is not a directory"),
}


@pytest.mark.parametrize("change,message", BAD.values(), ids=list(BAD))
def test_the_contract_is_checked_at_the_door(site, tiny_run, change, message):
    shipped = install_weights(site, tiny_run, "vae-mlp/digits")
    record = {"files": str(shipped), "sha256": "a" * 64, "command": "vaezoo train", **change}
    site.install("vaezoo-bad-weights", f"""
        from vaezoo import hookimpl

        @hookimpl
        def vaezoo_register_weights(register):
            register("vae-mlp/digits", {record!r})
    """, plugin="bad-weights")
    with pytest.warns(PluginWarning, match="bad-weights"):
        registry = get_registry()
    assert message in registry.plugins["bad-weights"].error
    assert registry.names("weights") == ["vae-mlp/digits"]  # the good plugin's weights stay


@pytest.mark.parametrize("name,files,message", [
    ("vae-mlp", None, "use VARIANT/DATASET"),
    ("Vae/digits", None, "use VARIANT/DATASET"),
    ("vae-mlp/digits", "model.pt", "holds model.pt; shipped weights hold only"),
    ("vae-mlp/digits", "-config.json", "lacks config.json"),
])
def test_names_and_folders_are_checked_at_the_door(site, tiny_run, name, files, message):
    shipped = install_weights(site, tiny_run, "vae-mlp/digits")
    if files == "model.pt":
        (shipped / "model.pt").write_bytes(b"pickle")
    elif files == "-config.json":
        (shipped / "config.json").unlink()
    sha = "a" * 64
    site.install("vaezoo-odd-weights", f"""
        from vaezoo import hookimpl

        @hookimpl
        def vaezoo_register_weights(register):
            register({name!r}, {{"files": {str(shipped)!r}, "sha256": {sha!r}, "command": "vaezoo train"}})
    """, plugin="odd-weights")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = get_registry()
    assert any(message in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert registry.plugins["odd-weights"].status == "failed"


def test_a_record_missing_its_hash_names_what_is_missing(tmp_path):
    from vaezoo.registry.weights import PretrainedWeights

    with pytest.raises(ValueError, match=r"^weights record: missing \['sha256'\]; accepted"):
        PretrainedWeights.coerce({"files": tmp_path, "command": "vaezoo train"})
    with pytest.raises(TypeError, match="a PretrainedWeights or a dict, got str"):
        PretrainedWeights.coerce("vae-mlp")


@pytest.mark.parametrize("argv", [("sample",), ("sample", "--sampler", "gmm"), ("reconstruct",)],
                         ids=["sample", "sample --sampler", "reconstruct"])
def test_one_command_hashes_the_shipped_weights_once(site, tiny_run, tmp_path, capsys, monkeypatch, argv):
    """A command resolves pretrained:VARIANT/DATASET once: its weights file is hashed once, not once per step
    (`sample --sampler` used to hash it twice, to draw and again to refuse the sampler shipped runs lack)."""
    import vaezoo.runs.pretrained as pretrained

    install_weights(site, tiny_run, "vae-mlp/digits")
    hashed = []
    real = pretrained.file_sha256
    monkeypatch.setattr(pretrained, "file_sha256", lambda path: hashed.append(path) or real(path))
    command, *options = argv
    code = main([command, "pretrained:vae-mlp/digits", *options, "--out", str(tmp_path / "picture.png")])
    assert len(hashed) == 1, hashed
    if options:  # shipped runs carry no fitted sampler: refused, and named as the user named them
        assert code != 0 and "pretrained:vae-mlp/digits is shipped weights: read-only" in capsys.readouterr().err
    else:
        assert code == 0 and (tmp_path / "picture.png").stat().st_size > 0
