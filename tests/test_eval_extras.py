"""`vaezoo train --limit` and `vaezoo eval --disentanglement --sample-quality` end to end on colour-shapes, and
the sample-quality classifier's determinism and cache."""
from __future__ import annotations

import json

import pytest
import torch

from vaezoo.cli.main import main
from vaezoo.data.datasets import load_dataset
from vaezoo import metrics
from vaezoo.metrics import classifier
from vaezoo.runs.directory import load_run_data


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def quick_classifier(tmp_path, monkeypatch):
    """A private cache and a classifier trained for 40 steps instead of STEPS."""
    monkeypatch.setenv("VAEZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(classifier, "STEPS", 40)
    return tmp_path / "cache"


@pytest.fixture
def colour_run(tmp_path, capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "vae-conv", "--dataset", "colour-shapes", "--limit", "96", "--epochs", "1",
                           "--latent-dim", "4", "--out", str(run), "--quiet")
    assert code == 0, err
    return run


def test_train_limit_is_recorded_and_reused(colour_run):
    config = json.loads((colour_run / "config.json").read_text())
    assert config["train"]["limit"] == 96
    data = load_run_data(colour_run)
    assert len(data.train_x) == 96 and data.test_factors is not None
    torch.testing.assert_close(data.train_x, load_dataset("colour-shapes", limit=96).train_x)


def test_eval_adds_disentanglement_and_sample_quality(colour_run, quick_classifier, capsys):
    code, out, err = run_cli(capsys, "eval", str(colour_run), "--nll-samples", "2", "--disentanglement",
                             "--sample-quality", "--quality-samples", "120", "--json")
    assert code == 0, err
    result = json.loads(out)
    d, q = result["disentanglement"], result["sample_quality"]
    assert result["elbo"] < 0 and d["examples"] == 346 and q["samples"] == 120
    assert d["factor_names"] == ["shape", "colour", "size", "position_x", "position_y"]
    dci = {key: value for key, value in d["dci"].items() if key != "importances"}
    for value in (d["mig"], d["sap"], d["beta_vae_score"], d["factor_vae_score"], *dci.values()):
        assert 0.0 <= value <= 1.0
    assert d["dci"]["importances"] == "gradient-boosted trees"  # disentanglement_lib's protocol, named
    assert [row["dim"] for row in d["dimension_factors"]] == [0, 1, 2, 3]
    assert q["fid"] > 0 and q["kid"] > -1 and 0 <= q["precision"] <= 1 and 0 <= q["recall"] <= 1
    assert 0 <= q["features"]["test_accuracy"] <= 1 and q["features"]["training_steps"] == 40
    held_out = load_dataset("colour-shapes", limit=96).test_x[:120].numpy()
    assert q["held_out_sharpness"] == pytest.approx(metrics.sharpness(held_out)) and q["sample_sharpness"] > 0
    saved = json.loads((colour_run / "evaluation.json").read_text())
    assert saved["disentanglement"]["mig"] == d["mig"] and saved["sample_quality"]["fid"] == q["fid"]
    assert (colour_run / "traversal_factors.png").stat().st_size > 0
    page = (colour_run / "report.html").read_text()
    assert "Evaluation (vaezoo eval)" in page and "disentanglement.mig" in page and "traversal_factors.png" in page
    assert "not with Inception-based FID" in page
    code, out, _ = run_cli(capsys, "eval", str(colour_run), "--nll-samples", "2", "--disentanglement")
    assert code == 0 and "MIG" in out and "FactorVAE score" in out and "DCI (gradient-boosted trees)" in out
    code, out, _ = run_cli(capsys, "eval", str(colour_run), "--nll-samples", "2", "--sample-quality",
                           "--quality-samples", "120")
    assert code == 0 and f"of held-out images {q['held_out_sharpness']:.4f}" in out


def test_disentanglement_needs_factors(tmp_path, capsys):
    run = tmp_path / "digits"
    assert run_cli(capsys, "train", "vae-mlp", "--dataset", "digits", "--limit", "64", "--epochs", "1",
                   "--out", str(run), "--quiet")[0] == 0
    code, _, err = run_cli(capsys, "eval", str(run), "--nll-samples", "2", "--disentanglement")
    assert code == 2 and "ground-truth factors" in err and "digits has none" in err


def test_the_classifier_is_deterministic_and_cached(quick_classifier, monkeypatch):
    data = load_dataset("colour-shapes", limit=200)
    first = classifier.train_feature_net(data.train_x, data.train_y, steps=15)
    second = classifier.train_feature_net(data.train_x, data.train_y, steps=15)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    trained = classifier.feature_extractor(data)
    assert trained.net.features(data.test_x[:5]).shape == (5, classifier.FEATURES)

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been used")

    monkeypatch.setattr(classifier, "train_feature_net", no_training)
    cached = classifier.feature_extractor(data)
    assert cached.test_accuracy == trained.test_accuracy and cached.data_hash == trained.data_hash
    torch.testing.assert_close(cached.net.features(data.test_x[:5]), trained.net.features(data.test_x[:5]))
    other = load_dataset("colour-shapes", limit=201)
    assert classifier.data_hash(other.train_x, other.train_y) != trained.data_hash
