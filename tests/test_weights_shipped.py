"""The weights distribution in plugins/vaezoo-weights, as a user gets it: every model it ships is listed,
matches its hash and loads by name; and each one's recorded reference figures (ELBO, IW-NLL, FID on a small
fixed protocol) are recomputed from its weights within the recorded tolerance, on the shipped feature networks
(none is trained here, also for a model trained with --limit): a regression test of every estimator, the parts
and the shipped feature networks at once."""
from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import pytest
from safetensors.torch import load

import vaezoo
from vaezoo.analysis.reference_metrics import PROTOCOL, reference_metrics
from vaezoo.cli.main import main
from vaezoo.data.datasets import FASHION_MNIST_DIR
from vaezoo.metrics import classifier
from vaezoo.registry.discovery import get_registry, reset_registry

SOURCE = Path(__file__).resolve().parent.parent / "plugins" / "vaezoo-weights" / "src"
MANIFEST = json.loads((SOURCE / "vaezoo_weights" / "weights.json").read_text(encoding="utf-8"))
#: The lecture's story: the plain VAE as an MLP and with convolutions, conditioned on the class, with discrete
#: codes, with a flow posterior, and disentangling dSprites.
STORY = {"vae-mlp/fashion-mnist", "vae-conv/fashion-mnist", "cvae-conv/fashion-mnist", "vq-vae-conv/fashion-mnist",
         "iaf-vae-mlp/fashion-mnist", "beta-vae-conv/dsprites"}


@pytest.fixture
def shipped(site, monkeypatch):
    """plugins/vaezoo-weights installed from the source tree (an installed copy of it blocked)."""
    monkeypatch.syspath_prepend(str(SOURCE))
    monkeypatch.setenv("VAEZOO_DISABLE_PLUGINS", "vaezoo-weights")  # a pip-installed copy: the source is tested
    info = site.root / "vaezoo_weights_source-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vaezoo-weights-source\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[vaezoo]\nweights-source = vaezoo_weights.plugin\n")
    importlib.invalidate_caches()
    reset_registry()
    return get_registry()


def test_the_story_is_shipped_small_and_whole(shipped):
    assert set(shipped.names("weights")) == STORY == set(MANIFEST)
    total = 0
    for name, record in MANIFEST.items():
        folder = SOURCE / "vaezoo_weights" / "runs" / record["directory"]
        total += sum(p.stat().st_size for p in folder.iterdir())
        data = (folder / "model.safetensors").read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
        stored = {str(t.dtype) for t in load(data).values() if t.is_floating_point()}
        assert stored == {f"torch.{record['protocol']['storage']}"}, name
        assert record["command"].startswith("OMP_NUM_THREADS=1 vaezoo train " + name.split("/")[0])
        reference = {"elbo", "nll", "fid"} if record["protocol"]["quality"] else {"elbo", "nll"}
        full = reference | ({"mig", "sap", "dci_disentanglement"} if name.endswith("/dsprites") else set())
        assert full <= set(record["metrics"]) and reference <= set(record["reference"]), name
    assert total < 7_000_000


def needs_data(name: str) -> None:
    if name.endswith("/fashion-mnist") and not Path(FASHION_MNIST_DIR).is_dir():
        pytest.skip(f"Fashion-MNIST is not installed in {FASHION_MNIST_DIR} (scripts/bootstrap.sh installs it)")


def no_cached_network(*parts: str):
    raise AssertionError(f"a feature network was looked for in the cache ({'/'.join(parts)}): the figures of shipped "
                         "weights are measured on a shipped network, which is neither trained nor cached")


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_recorded_reference_figures_are_recomputed(shipped, name, monkeypatch):
    needs_data(name)
    monkeypatch.setattr(classifier, "cache_dir", no_cached_network)  # beta-vae-conv/dsprites ran with --limit
    record = MANIFEST[name]
    protocol = {k: record["protocol"][k] for k in PROTOCOL}
    got = reference_metrics(f"pretrained:{name}", protocol)
    assert set(got) == set(record["reference"])
    for metric, value in record["reference"].items():
        assert got[metric] == pytest.approx(value, rel=record["protocol"]["tolerance"]), metric


def test_sample_from_shipped_weights_without_training(shipped, tmp_path, capsys):
    assert main(["sample", "pretrained:vae-conv/fashion-mnist", "--n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    model = vaezoo.create_model("cvae-conv", pretrained="fashion-mnist")
    assert model.sample(4, 3).shape == (4, 1, 28, 28)
    assert main(["traverse", "pretrained:beta-vae-conv/dsprites", "--steps", "3", "--out", str(tmp_path / "t.png")]) == 0
    assert (tmp_path / "t.png").stat().st_size > 0
