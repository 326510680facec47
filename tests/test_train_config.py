"""Training settings defined once: the flags of `vaezoo train`, config files, and replaying a run's config.json."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from vaezoo.cli.main import build_parser, main
from vaezoo.errors import VaezooError
from vaezoo.cli.train_command import POSITIONAL, flag_name
from vaezoo.training.config import TrainConfig, default_of
from vaezoo.training.config_file import read_config_file

TOML = """
variant = "vae-mlp"
dataset = "digits"
epochs = 2
batch_size = 64
limit = 300
schedule = "cosine"
warmup_steps = 3
optimizer = "adamw"
optimizer_options = { weight_decay = 0.05 }

[set]
beta = 2
"encoder.hidden_dims" = [32]
"decoder.hidden_dims" = [32]
"""


def train_parser():
    parser = build_parser()
    return next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]


def test_every_setting_is_a_flag_with_its_help_and_default():
    parser = train_parser()
    actions = {a.dest: a for a in parser._actions}
    text = parser.format_help().replace("\n", " ")
    for spec in fields(TrainConfig):
        action = actions[spec.name]
        assert action.help.startswith(spec.metadata["help"]), spec.name
        assert action.default is None, f"{spec.name}: a flag not given must be told from one given"
        if spec.name in POSITIONAL:
            continue
        assert flag_name(spec.name) in action.option_strings
        default = default_of(spec.name)
        if default not in (None, [], {}) and not isinstance(default, bool):
            assert f"(default {default})" in action.help, spec.name
        assert set(spec.metadata.get("choices", ())) <= set(action.choices or spec.metadata.get("choices", ()))
    assert "--batch-size" in text and "--set" in text and "--optimizer-option" in text


def test_a_toml_config_trains_and_flags_override_it(tmp_path):
    (tmp_path / "run.toml").write_text(TOML)
    out = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "run.toml"), "--batch-size", "32", "--out", str(out),
                 "--quiet"]) == 0
    train = json.loads((out / "config.json").read_text())["train"]
    assert train["batch_size"] == 32  # the flag, over the file's 64
    assert train["epochs"] == 2 and train["schedule"] == "cosine" and train["optimizer"] == "adamw"
    assert train["overrides"] == {"beta": 2, "encoder.hidden_dims": [32], "decoder.hidden_dims": [32]}
    assert train["optimizer_options"] == {"weight_decay": 0.05}
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert metrics[-1]["lr"] < metrics[0]["lr"] < 1e-3  # cosine after warm-up


def test_a_runs_config_json_replays_it_to_the_same_metrics(tmp_path):
    (tmp_path / "run.toml").write_text(TOML)
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["train", "--config", str(tmp_path / "run.toml"), "--seed", "7", "--out", str(first), "--quiet"]) == 0
    assert main(["train", "--config", str(first / "config.json"), "--out", str(second), "--quiet"]) == 0
    timeless = lambda run: [{k: v for k, v in json.loads(line).items() if k != "seconds"}  # noqa: E731
                            for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert timeless(first) == timeless(second)
    recorded = lambda run: {k: v for k, v in json.loads((run / "config.json").read_text())["train"].items()  # noqa: E731
                            if k != "out"}
    assert recorded(first) == recorded(second)
    assert recorded(second)["seed"] == 7


def test_toml_yaml_and_json_give_the_same_settings(tmp_path):
    pytest.importorskip("yaml")
    settings = {"variant": "vae-conv", "dataset": "digits", "batch_size": 16, "lr": 0.002,
                "set": {"beta": 4}, "log": ["csv"]}
    (tmp_path / "c.json").write_text(json.dumps(settings))
    (tmp_path / "c.yaml").write_text("variant: vae-conv\ndataset: digits\nbatch_size: 16\nlr: 0.002\n"
                                     "set:\n  beta: 4\nlog: [csv]\n")
    (tmp_path / "c.toml").write_text('variant = "vae-conv"\ndataset = "digits"\nbatch_size = 16\nlr = 0.002\n'
                                     'log = ["csv"]\n[set]\nbeta = 4\n')
    expected = {"variant": "vae-conv", "dataset": "digits", "batch_size": 16, "lr": 0.002,
                "overrides": {"beta": 4}, "log": ["csv"]}
    for name in ("c.json", "c.yaml", "c.toml"):
        assert read_config_file(tmp_path / name) == expected, name


@pytest.mark.parametrize(("text", "suffix", "message"), [
    ('variant = "vae-mlp"\nbatch_sise = 3\n', ".toml", "'batch_sise' is not a training setting; did you mean batch_size"),
    ("variant = \n", ".toml", "is not valid TOML"),
    ("[1, 2]", ".json", "must hold a table of settings"),
    ('set = ["beta"]', ".toml", "config.toml: set takes KEY=VALUE"),
    ("set = { beta = nan }", ".toml", "set.beta must be finite"),
    ("a: 1", ".ini", "must end in .toml, .yaml, .yml or .json"),
])
def test_a_bad_config_file_is_named(tmp_path, text, suffix, message):
    path = tmp_path / f"config{suffix}"
    path.write_text(text)
    with pytest.raises(VaezooError, match=message.replace("[", r"\[").replace("(", r"\(")):
        read_config_file(path)


def test_values_out_of_range_in_a_config_file_are_refused_like_flags(tmp_path, capsys):
    (tmp_path / "c.toml").write_text('variant = "vae-mlp"\ndataset = "digits"\nbatch_size = 0\n')
    assert main(["train", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "run")]) == 2
    assert "batch-size must be a whole number of at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_training_by_name_needs_a_variant_a_dataset_and_out(tmp_path, capsys):
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "run")]) == 2
    assert "training by name needs variant" in capsys.readouterr().err


def test_log_tensorboard_writes_events_tensorboard_reads(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main(["train", "vae-mlp", "--dataset", "digits", "--limit", "200", "--epochs", "2", "--out", str(out),
                 "--log", "tensorboard", "--log", "csv", "--log-images-every", "1", "--quiet",
                 "--set", "encoder.hidden_dims=[16]", "--set", "decoder.hidden_dims=[16]"]) == 0
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    elbo = events.Scalars("val_elbo")
    assert [e.step for e in elbo] == [1, 2]
    assert [e.value for e in elbo] == pytest.approx([m["val_elbo"] for m in metrics], rel=1e-6)
    assert {"samples", "reconstructions"} <= set(events.Tags()["images"])
    csv_rows = (out / "metrics.csv").read_text().splitlines()
    assert len(csv_rows) == 3 and "val_elbo" in csv_rows[0]


def test_log_mlflow_records_metrics_and_the_report(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    out = tmp_path / "run"
    assert main(["train", "vae-mlp", "--dataset", "digits", "--limit", "200", "--epochs", "2", "--out", str(out),
                 "--log", "mlflow", "--quiet", "--set", "encoder.hidden_dims=[16]",
                 "--set", "decoder.hidden_dims=[16]"]) == 0
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("vaezoo").experiment_id])
    history = client.get_metric_history(run.info.run_id, "val_elbo")
    assert [h.step for h in history] == [m["epoch"] for m in metrics]
    assert [h.value for h in history] == pytest.approx([m["val_elbo"] for m in metrics])
    assert run.data.params["epochs"] == "2" and run.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["report.html"]


def test_replaying_a_directory_that_is_not_a_run_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"format": 1, "train": {"variant": "vae-mlp", "bogus": 1}}))
    with pytest.raises(VaezooError, match="'bogus' is not a training setting"):
        read_config_file(Path(tmp_path / "config.json"))


# -- typed configuration (issue 21) -----------------------------------------------------------------------------

BILLION_LAUGHS = "\n".join(
    ["variant: vae-mlp", "{table}:", '  a: &a ["x","x","x","x","x","x","x","x","x"]']
    + [f"  {b}: &{b} [{','.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")]
) + "\n"


@pytest.mark.parametrize(("text", "suffix", "message"), [
    ('bf16 = "false"', ".toml", "bf16 must be true or false, got 'false'"),
    ('compile = "no"', ".toml", "compile must be true or false, got 'no'"),
    ("clip_grad = true", ".toml", "clip_grad must be a number or unset, got True"),
    ('epochs = "3"', ".toml", "epochs must be an integer, got '3'"),
    ("data_dir = 3", ".toml", "data_dir must be a string or unset, got 3"),
    ('out = ["x"]', ".toml", "out must be a string or unset"),
    ("log = [1]", ".toml", "log must be a list of strings"),
    ("quiet = 1", ".toml", "quiet must be true or false"),
    ("variant: vae-mlp\n1: 2\n", ".yaml", "key 1 is not a string but int"),
    ("set:\n  ~: 2\n", ".yaml", "key None in set is not a string but NoneType"),
    ("a: &a [*a]\n", ".yaml", "anchors and aliases (&NAME, *NAME) are not accepted"),
    ("overrides = { beta = 2 }\n", ".toml", "the table of overrides is named set in a config file, not overrides"),
    ("overrides = { beta = 2 }\n[set]\nbeta = 3\n", ".toml", "the file has both: keep one table, named set"),
])
def test_a_setting_of_the_wrong_type_or_shape_is_refused_by_name(tmp_path, text, suffix, message):
    pytest.importorskip("yaml")
    path = tmp_path / f"config{suffix}"
    path.write_text(text)
    with pytest.raises(VaezooError, match=re.escape(message)):
        read_config_file(path)


@pytest.mark.parametrize("table", ["set", "optimizer_options"])
def test_a_billion_laughs_yaml_is_refused_at_once(tmp_path, table):
    pytest.importorskip("yaml")
    path = tmp_path / "laughs.yaml"
    path.write_text(BILLION_LAUGHS.format(table=table))
    assert len(path.read_bytes()) < 700
    result = subprocess.run([sys.executable, "-m", "vaezoo", "train", "--config", str(path), "--out",
                             str(tmp_path / "run")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "anchors and aliases" in result.stderr, result.stderr


def test_the_config_file_is_refused_by_its_suffix_before_it_is_read(tmp_path):
    with pytest.raises(VaezooError, match="must end in .toml"):
        read_config_file("/dev/zero")
    (tmp_path / "zero.toml").symlink_to("/dev/zero")  # an endless file with a good name: the read is bounded
    with pytest.raises(VaezooError, match="larger than 1024 KiB"):
        read_config_file(tmp_path / "zero.toml")


def test_set_on_the_command_line_merges_key_by_key_over_the_files_table(tmp_path, capsys):
    (tmp_path / "c.toml").write_text('variant = "vae-mlp"\ndataset = "digits"\nepochs = 1\nquiet = true\n'
                                     'optimizer_options = { weight_decay = 0.01 }\n'
                                     '[set]\nbeta = 2\n"encoder.hidden_dims" = [8]\n"decoder.hidden_dims" = [8]\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "c.toml"), "--set", "beta=3", "--optimizer-option",
                 "eps=1e-6", "--out", str(out)]) == 0
    train = json.loads((out / "config.json").read_text())["train"]
    assert train["overrides"] == {"beta": 3, "encoder.hidden_dims": [8], "decoder.hidden_dims": [8]}
    assert train["optimizer_options"] == {"weight_decay": 0.01, "eps": 1e-6}
    assert "epoch 1/1" not in capsys.readouterr().err  # quiet, from the file


def test_log_takes_several_names_after_one_flag():
    args = train_parser().parse_args(["vae-mlp", "--log", "tensorboard", "csv", "--log", "mlflow"])
    assert args.log == ["tensorboard", "csv", "mlflow"]


def test_a_python_config_of_the_wrong_type_is_refused():
    with pytest.raises(VaezooError, match="bf16 must be true or false, got 'false'"):
        TrainConfig(variant="vae-mlp", dataset="digits", out="x", bf16="false").validate()
    TrainConfig(variant="vae-mlp", dataset="digits", out="x", lr=1, clip_grad=2).validate()  # ints are numbers


def test_a_config_is_what_to_build_and_how_to_train():
    from vaezoo import BuildSettings, TrainSettings
    from vaezoo.errors import SettingError

    build, how = [f.name for f in fields(BuildSettings)], [f.name for f in fields(TrainSettings)]
    assert [f.name for f in fields(TrainConfig)] == build + how and not set(build) & set(how)
    assert {"variant", "dataset", "overrides", "latent_dim"} <= set(build) and {"epochs", "lr", "device"} <= set(how)
    config = TrainConfig("vae-mlp", "digits", "out", epochs=3, overrides={"beta": 2}, image_size=8)  # as before
    assert config.build == BuildSettings("vae-mlp", "digits", "out", overrides={"beta": 2}, image_size=8)
    assert config.training == TrainSettings(epochs=3) and config.build.data_options == {"image_size": 8}
    assert TrainConfig.from_parts(config.build, config.training) == config
    # each part checks its own settings, naming the setting: flags are the command line's
    for part, name in ((TrainSettings(epochs=0), "epochs"), (BuildSettings(latent_dim=0), "latent_dim"),
                       (BuildSettings(overrides=[1]), "overrides"), (TrainSettings(log=["x"]), "log")):
        with pytest.raises(SettingError, match=f"^{name} must be") as caught:
            part.validate()
        assert caught.value.settings == (name,)
    for spec in fields(TrainConfig):
        assert set(spec.metadata) <= {"help", "choices"}, spec.name


def test_settings_over_a_file_replace_it_but_tables_key_by_key():
    from vaezoo.training.config_file import settings_over

    base = {"overrides": {"beta": 2, "prior": "mog"}, "epochs": 3, "log": ["csv"]}
    merged = settings_over(base, {"overrides": {"beta": 5}, "epochs": 4, "log": ["tensorboard"], "lr": 0.1})
    assert merged == {"overrides": {"beta": 5, "prior": "mog"}, "epochs": 4, "log": ["tensorboard"], "lr": 0.1}
    assert base == {"overrides": {"beta": 2, "prior": "mog"}, "epochs": 3, "log": ["csv"]}  # left as it was
