"""The sample-quality feature networks shipped with vaezoo: their hashes are the recorded ones, the same images
give the recorded FID on every machine (a run trained with --limit on part of a dataset included), a damaged
file is refused, and other data still trains its own."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vaezoo import metrics
from vaezoo.analysis.eval_extras import _feature_images, feature_network
from vaezoo.cli.main import main
from vaezoo.data.datasets import FASHION_MNIST_DIR, load_dataset
from vaezoo.data.splits import Rows, Splits, to_model_input
from vaezoo.errors import DataError
from vaezoo.metrics import classifier
from vaezoo.runs.directory import load_run_data

#: The SHA-256 of each shipped network file: a network trained again, or changed, changes every FID made with
#: it, so it must be a deliberate change of this table (and of the recorded figures below).
SHIPPED = {
    "fashion-mnist": "92f006ed3a582e214d70f1ae33a8758e341469511108228072e54ee401d834ee",
    "digits": "95ea944cd0519db49f71110df7c78f30cc92a000150b986b09630c4485de0465",
    "colour-shapes": "500c5857432fa7d0ac422fb8c2cc4e23994efe97e7f507c53f137d750af123b8",
    "dsprites": "dc230d7fb66546ebba7aafdacac60b26228446f9ce62b4ae5a0cd8c69d308a8d",
}
#: FID between the first N held-out and the first N training images, on the shipped network (measured once;
#: dsprites is left out: reading it renders 737,280 images into a cache first).
FIDS = {"digits": (297, 19.049967812023624), "fashion-mnist": (1000, 3.3683659652015194),
        "colour-shapes": (300, 80.48030149408532)}
TOLERANCE = 1e-4  # relative: float32 features summed in another order on another CPU


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """An empty cache: nothing trained elsewhere is used."""
    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path / "cache"))


def test_shipped_files_are_the_recorded_ones():
    manifest = classifier.shipped_manifest()
    assert {name: record["sha256"] for name, record in manifest.items() if name in SHIPPED} == SHIPPED
    for name, record in manifest.items():
        assert hashlib.sha256((classifier.SHIPPED / record["file"]).read_bytes()).hexdigest() == record["sha256"]
        assert (classifier.SHIPPED / record["file"]).stat().st_size < 400_000  # float16: a few hundred KB


def fid_first(data: Splits, n: int) -> tuple[float, dict]:
    extractor = feature_network(data)
    rows = np.arange(n)
    real = extractor.net.features(to_model_input(data.test.read(rows))).double().numpy()
    fake = extractor.net.features(to_model_input(data.train.read(rows))).double().numpy()
    return metrics.fid(real, fake), extractor.describe()


@pytest.mark.parametrize("name", sorted(FIDS))
def test_the_same_images_give_the_recorded_fid(name, tmp_path):
    if name == "fashion-mnist" and not Path(FASHION_MNIST_DIR).is_dir():
        pytest.skip(f"Fashion-MNIST is not installed in {FASHION_MNIST_DIR} (scripts/bootstrap.sh installs it)")
    n, recorded = FIDS[name]
    fid, features = fid_first(load_dataset(name), n)
    assert features["source"] == "shipped with vaezoo" and features["weights_sha256"] == SHIPPED[name]
    assert fid == pytest.approx(recorded, rel=TOLERANCE)
    assert not list((tmp_path / "cache").rglob("*.safetensors")), "no network was trained here"


def test_a_limited_run_is_measured_on_its_datasets_network(tmp_path, capsys):
    """A run trained with --limit on part of a dataset is measured on the dataset's own network (made from the
    whole training split): here the shipped one, and nothing is trained."""
    run = tmp_path / "run"
    assert main(["train", "vae-mlp", "--dataset", "digits", "--limit", "64", "--epochs", "1", "--latent-dim", "2",
                 "--out", str(run), "--quiet"]) == 0
    data = load_run_data(run)
    whole, limited = feature_network(load_dataset("digits")), feature_network(data)
    assert len(data.train) == 64 and len(data.full_train()) == len(load_dataset("digits").train)
    assert (limited.data_hash, limited.sha256, limited.shipped) == (whole.data_hash, SHIPPED["digits"], True)
    capsys.readouterr()
    assert main(["eval", str(run), "--sample-quality", "--quality-samples", "10", "--json"]) == 0
    features = json.loads(capsys.readouterr().out)["sample_quality"]["features"]
    assert (features["data_hash"], features["weights_sha256"]) == (whole.data_hash, SHIPPED["digits"])
    assert features["source"] == "shipped with vaezoo"
    assert not list((tmp_path / "cache").rglob("*.safetensors")), "no network was trained here"


def test_a_damaged_shipped_network_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "shipped"
    shutil.copytree(classifier.SHIPPED, folder)
    data = bytearray((folder / "digits.safetensors").read_bytes())
    data[-3] ^= 1
    (folder / "digits.safetensors").write_bytes(bytes(data))
    monkeypatch.setattr(classifier, "SHIPPED", folder)
    monkeypatch.setattr(classifier.shipped_extractor, "__defaults__", (folder,))
    with pytest.raises(DataError, match="digits.safetensors has SHA-256 .*, not 95ea944cd051... as recorded"):
        feature_network(load_dataset("digits"))


def test_other_data_trains_its_own_and_says_so(monkeypatch):
    whole = load_dataset("digits")  # a subset given as the data: not the data the shipped network was made from
    data = Splits("digits", Rows(whole.train, np.arange(600)), whole.test)
    train, test = _feature_images(data.train), _feature_images(data.test)
    key = classifier.cache_key("digits", train, test, classifier.STEPS, classifier.BATCH_SIZE, classifier.SEED)
    assert key != classifier.shipped_manifest()["digits"]["data_hash"]
    assert classifier.shipped_extractor("digits", key, train.shape, 10) is None
    monkeypatch.setattr(classifier, "STEPS", 20)  # what it trains instead, briefly
    described = feature_network(data).describe()
    assert described["source"] == "trained on this machine" and described["training_steps"] == 20
    assert len(described["weights_sha256"]) == 64 and described["weights_sha256"] != SHIPPED["digits"]


def test_the_quality_table_names_the_feature_network_of_its_fids():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "quality" / "run.py"
    spec = importlib.util.spec_from_file_location("benchmark_quality_run_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shipped = {"fid": 3.0, "feature_network_sha256": SHIPPED["fashion-mnist"], "feature_network": "shipped with vaezoo"}
    older = {"fid": 4.0, "classifier_test_accuracy": 0.86}
    assert module.feature_network_line([shipped, {"fid": None}]) == (
        "FID, KID and precision/recall on the network 92f006ed3a582e21 (shipped with vaezoo).")
    assert "a network trained on the measuring machine before vaezoo shipped one (held-out accuracy 0.8600)" in (
        module.feature_network_line([shipped, older]))
