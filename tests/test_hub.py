"""Runs on the Hugging Face Hub: hf://ORG/NAME loads from a cache the tests lay out, offline; `vaezoo push` is
followed up to the network (HfApi's create_repo and upload_folder are replaced by fakes that keep what they
were given)."""
from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
from pathlib import Path

import pytest
import torch
from hub_cache import REVISION, lay_out, run_files

import vaezoo
import vaezoo.analysis.hub_push
from vaezoo.cli.main import build_parser, main
from vaezoo.errors import RunDirError, VaezooError
from vaezoo.runs.directory import claim_run_dir

huggingface_hub = pytest.importorskip("huggingface_hub")
hub_constants = pytest.importorskip("huggingface_hub.constants")
hub_errors = pytest.importorskip("huggingface_hub.errors")

REPO = "someone/digits-vae"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    from vaezoo.training.trainer import TrainConfig, train

    out = tmp_path_factory.mktemp("hub") / "digits-run"
    config = TrainConfig(variant="vae-mlp", dataset="digits", out=str(out), epochs=2, batch_size=64, limit=300,
                         latent_dim=4, overrides={"encoder.hidden_dims": [16], "decoder.hidden_dims": [16]})
    return train(config, progress=False)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty Hub cache in tmp, offline: huggingface_hub reads these at import, so its constants are set too."""
    folder = tmp_path / "hf-cache"
    folder.mkdir()
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(folder))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(folder))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    return folder


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_load_model_reads_a_cached_hub_run_offline_and_asks_only_for_safe_files(run, cache, monkeypatch):
    lay_out(cache, REPO, run_files(run))
    asked = []
    real = huggingface_hub.snapshot_download

    def spy(*args, **kwargs):
        asked.append(kwargs["allow_patterns"])
        return real(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", spy)
    local = vaezoo.load_model(run)
    assert same_weights(vaezoo.load_model(f"hf://{REPO}"), local)
    assert same_weights(vaezoo.load_model(f"hf://{REPO}@{REVISION}"), local)
    [patterns, _] = asked
    wanted = lambda name: any(fnmatch.fnmatch(name, p) for p in patterns)  # noqa: E731
    assert wanted("config.json") and wanted("model.safetensors")
    for pickle in ("model.pt", "pytorch_model.bin", "x.pkl", "checkpoints/step-000000001.safetensors"):
        assert not wanted(pickle), pickle  # never a pickle, nor a checkpoint


def test_every_command_on_a_run_takes_an_hf_reference(run, cache, tmp_path, capsys):
    lay_out(cache, REPO, run_files(run))
    pictures = {}
    for name, source in (("local", str(run)), ("hub", f"hf://{REPO}")):
        pictures[name] = tmp_path / f"{name}.png"
        assert main(["sample", source, "--n", "4", "--seed", "3", "--out", str(pictures[name])]) == 0
        assert main(["reconstruct", source, "--n", "2", "--out", str(tmp_path / f"{name}-r.png")]) == 0
    assert pictures["hub"].read_bytes() == pictures["local"].read_bytes()
    assert (tmp_path / "hub-r.png").read_bytes() == (tmp_path / "local-r.png").read_bytes()
    capsys.readouterr()
    scores = []
    for source in (str(run), f"hf://{REPO}"):
        torch.manual_seed(0)
        assert main(["eval", source, "--nll-samples", "2", "--nll-examples", "3", "--json"]) == 0
        scores.append(json.loads(capsys.readouterr().out))
    assert scores[0]["elbo"] == scores[1]["elbo"]


def edited(run: Path, into: Path, edit) -> Path:
    """A copy of the run directory with its config.json changed by `edit(config)`."""
    copy = Path(shutil.copytree(run, into, ignore=shutil.ignore_patterns("checkpoints", ".vaezoo.lock")))
    config = json.loads((copy / "config.json").read_text())
    edit(config)
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def from_a_missing_plugin(config: dict) -> None:
    config["identity"]["encoder"] = {"name": "vaezoo-extras:mlp", "distribution": "vaezoo-extras", "version": "1.0"}


def test_a_hub_run_whose_plugin_is_missing_is_answered_as_its_directory_would_be(run, cache, tmp_path):
    copy = edited(run, tmp_path / "copy", from_a_missing_plugin)
    lay_out(cache, "someone/extras-vae", run_files(copy))
    with pytest.raises(RunDirError) as local:
        vaezoo.load_model(copy)
    with pytest.raises(RunDirError) as hub:
        vaezoo.load_model("hf://someone/extras-vae")
    assert "pip install 'vaezoo-extras==1.0'" in str(local.value)
    assert str(hub.value) == str(local.value).replace(str(copy), "hf://someone/extras-vae")
    assert "\n" not in str(hub.value)


@pytest.mark.parametrize(("ref", "message"), [
    ("hf://someone/absent", "is not in the local Hugging Face cache"),
    ("hf://no-name", "does not name a Hub repository: write hf://ORG/NAME"),
    ("hf://a/b/c", "does not name a Hub repository"),
    ("hf://someone/digits-vae@", "does not name a Hub repository"),
])
def test_a_hub_reference_that_cannot_be_read_is_one_error(cache, ref, message):
    with pytest.raises(RunDirError, match=message):
        vaezoo.load_model(ref)


def test_a_hub_run_saved_as_a_pickle_is_refused_unread(run, cache, tmp_path):
    def pickled(config: dict) -> None:
        config.update(variant="hand-built", architecture="model.pt")
        del config["identity"]

    copy = edited(run, tmp_path / "copy", pickled)
    (copy / "model.pt").write_bytes(b"a pickle would run code")
    lay_out(cache, "someone/pickled", run_files(copy))
    with pytest.raises(RunDirError, match=r"saved as a pickle \(model.pt\); .* never unpickles"):
        vaezoo.load_model("hf://someone/pickled", trust_pickle=True)
    with pytest.raises(RunDirError, match="saved as a pickle"):  # nor is it published
        vaezoo.analysis.hub_push.push_run(copy, "someone/pickled", command=None)


def test_a_downloaded_run_is_never_written_into(run, cache):
    snapshot = lay_out(cache, REPO, run_files(run))
    with pytest.raises(RunDirError, match="downloaded from the Hugging Face Hub into its cache"):
        claim_run_dir(snapshot, busy="wait")
    assert main(["eval", f"hf://{REPO}", "--nll-samples", "2", "--sample-quality"]) == 2
    assert not (snapshot / ".vaezoo.lock").exists()


class FakeHub:
    """HfApi's create_repo and upload_folder as the network would see them: what was asked, and the files sent."""

    def __init__(self, monkeypatch, cache: Path | None = None) -> None:
        self.created: list[tuple[str, dict]] = []
        self.uploads: list[dict] = []
        self.cache = cache
        monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", self.create_repo)
        monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", self.upload_folder)

    def create_repo(self, repo_id, **kwargs):  # set on the class as a bound method: HfApi's self is not passed
        self.created.append((repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        folder = Path(folder_path)
        sent = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        self.uploads.append({"repo_id": repo_id, "files": sent, **kwargs})
        if self.cache is not None:  # what a later download of the repository would find
            lay_out(self.cache, repo_id, sent)


def test_push_sends_the_runs_safe_files_and_a_card_that_loads_back(run, cache, tmp_path, monkeypatch, capsys):
    copy = Path(shutil.copytree(run, tmp_path / "my-run"))
    (copy / "model.pt").write_bytes(b"a stray pickle")
    (copy / "notes.txt").write_text("private notes")
    (copy / "wandb").mkdir()
    hub = FakeHub(monkeypatch, cache)
    assert main(["push", str(copy), "someone/pushed", "--private"]) == 0
    assert "pushed" in capsys.readouterr().out
    assert hub.created == [("someone/pushed", {"private": True, "exist_ok": True, "repo_type": "model"})]
    [upload] = hub.uploads
    assert sorted(upload["files"]) == sorted([
        "README.md", "config.json", "model.safetensors", "metrics.jsonl", "report.html", "curves.png",
        "samples.png", "reconstructions.png", "interpolation.png", "traversal.png",
    ])
    for name, data in upload["files"].items():
        if name != "README.md":
            assert data == (copy / name).read_bytes(), name
    assert "model.pt" in upload["delete_patterns"] or "config.json" in upload["delete_patterns"]
    assert not any(fnmatch.fnmatch("notes.txt", p) for p in upload["delete_patterns"])  # others' files stay

    card = upload["files"]["README.md"].decode()
    config = json.loads((copy / "config.json").read_text())
    last = vaezoo.runs.directory.read_metrics(copy)[-1]
    assert card.startswith("---\nlibrary_name: vaezoo\n")
    for fragment in ("# someone/pushed", 'vaezoo.load_model("hf://someone/pushed")',
                     "| variant | `vaezoo:vae-mlp` from vaezoo", "| encoder | `vaezoo:mlp` | vaezoo ",
                     "| prior | `vaezoo:standard-normal` |", "Dataset `vaezoo:digits` from vaezoo",
                     "the first 300 training examples", f"| val_elbo | {last['val_elbo']:.4g} |",
                     "![Samples from the prior](samples.png)", "| latent dimensions | 4 |"):
        assert fragment in card, fragment
    # the command in the card repeats the run: parsed back, it gives the settings the run recorded
    [command] = [line for line in card.splitlines() if line.startswith("vaezoo train ")]
    from vaezoo.cli.train_command import train_config

    args = build_parser().parse_args(shlex.split(command)[1:])
    again = train_config(args)[0].record()
    assert {k: v for k, v in again.items() if k != "out"} == {k: v for k, v in config["train"].items() if k != "out"}

    assert same_weights(vaezoo.load_model("hf://someone/pushed"), vaezoo.load_model(copy))


def test_the_card_names_the_plugins_a_run_needs(run, tmp_path):
    from vaezoo.analysis.model_card import model_card

    copy = edited(run, tmp_path / "copy", from_a_missing_plugin)
    card = model_card(copy, "someone/extras", None)
    assert "| encoder | `vaezoo-extras:mlp` | vaezoo-extras 1.0 |" in card
    assert "needs these plugin distributions installed: `vaezoo-extras==1.0`" in card
    assert "vaezoo train" not in card  # no command given: none shown


def test_push_refuses_a_link_out_of_the_run_and_a_bad_repository_name(run, tmp_path, monkeypatch):
    hub = FakeHub(monkeypatch)
    copy = Path(shutil.copytree(run, tmp_path / "copy", ignore=shutil.ignore_patterns(".vaezoo.lock")))
    secret = tmp_path / "secret"
    secret.write_text("a key")
    (copy / "samples.png").unlink()
    (copy / "samples.png").symlink_to(secret)
    with pytest.raises(RunDirError, match="samples.png is not a regular file of the run"):
        vaezoo.analysis.hub_push.push_run(copy, "someone/x", command=None)
    with pytest.raises(RunDirError, match="without @REVISION"):
        vaezoo.analysis.hub_push.push_run(run, "someone/x@main", command=None)
    with pytest.raises(RunDirError, match="does not name a Hub repository"):
        vaezoo.analysis.hub_push.push_run(run, "just-a-name", command=None)
    assert hub.created == [] and hub.uploads == []


def test_a_failed_upload_is_one_error(run, monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", refuse)
    with pytest.raises(VaezooError, match=r"cannot push .* as someone/x: ConnectionError: .*unreachable.*hf auth login"):
        vaezoo.analysis.hub_push.push_run(run, "someone/x", command=None)


def test_the_cards_command_repeats_every_kind_of_setting():
    from vaezoo.cli.train_command import train_config
    from vaezoo.cli.recorded_command import train_command
    from vaezoo.training.config import TrainConfig

    settings = TrainConfig(
        variant="vae-conv", dataset="folder", out="/runs/a b", data_dir="/data/my images", epochs=3, lr=3e-4,
        overrides={"encoder.channels": [16, 32], "prior": "mog", "beta": 2.5}, optimizer="adamw",
        optimizer_options={"betas": [0.9, 0.99]}, schedule="cosine", log=["csv", "wandb"], compile=True,
        data_options={"image_size": 16, "prepare": True}, seed=7, clip_grad=1.0,
    ).record()
    command = train_command(settings)
    assert "/data/my images" not in command and "RUN_DIR" in command and "DATA_DIR" in command
    again = train_config(build_parser().parse_args(shlex.split(command)[1:]))[0].record()
    assert again == {**settings, "out": "RUN_DIR", "data_dir": again["data_dir"]}
    assert again["data_dir"].endswith("DATA_DIR")  # made absolute, as every --data-dir is


def test_a_run_from_the_hub_can_be_pushed_on(run, cache, monkeypatch):
    lay_out(cache, REPO, run_files(run, ["config.json", "model.safetensors", "metrics.jsonl"]))
    hub = FakeHub(monkeypatch)
    assert main(["push", f"hf://{REPO}", "someone/copy"]) == 0
    [upload] = hub.uploads
    assert sorted(upload["files"]) == ["README.md", "config.json", "metrics.jsonl", "model.safetensors"]
    assert upload["files"]["model.safetensors"] == (run / "model.safetensors").read_bytes()
