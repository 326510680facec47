"""`vaezoo train --limit` and `vaezoo eval --disentanglement --sample-quality` end to end on colour-shapes, and
the sample-quality classifier's determinism, batch-by-batch training and checked cache."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from held_out_sets import CountingImages

from vaezoo import metrics
from vaezoo.analysis import eval_extras, evaluate
from vaezoo.cli.main import main
from vaezoo.data.datasets import load_dataset
from vaezoo.data.splits import Rows, Splits, to_model_input
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
    assert saved["held_out"]["nll"] == result["nll"] and saved["held_out"]["elbo"] == result["elbo"]
    assert saved["held_out"]["nll_budget"] == {**result["nll_budget"], "samples": 2, "examples": 346}
    assert (colour_run / "traversal_factors.png").stat().st_size > 0
    page = (colour_run / "report.html").read_text()
    assert "Evaluation (vaezoo eval)" in page and "disentanglement.mig" in page and "traversal_factors.png" in page
    assert "not with Inception-based FID" in page
    code, out, _ = run_cli(capsys, "eval", str(colour_run), "--nll-samples", "2", "--disentanglement")
    assert code == 0 and "MIG" in out and "FactorVAE score" in out and "DCI (gradient-boosted trees)" in out
    code, out, _ = run_cli(capsys, "eval", str(colour_run), "--nll-samples", "2", "--sample-quality",
                           "--quality-samples", "120")
    assert code == 0 and f"of held-out images {q['held_out_sharpness']:.4f}" in out


def test_disentanglement_needs_factors_and_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    run = tmp_path / "digits"
    assert run_cli(capsys, "train", "vae-mlp", "--dataset", "digits", "--limit", "64", "--epochs", "1",
                   "--out", str(run), "--quiet")[0] == 0
    capsys.readouterr()

    def no_work(*args, **kwargs):
        raise AssertionError("the held-out metrics ran before --disentanglement was refused")

    monkeypatch.setattr(evaluate, "summary", no_work)
    code, _, err = run_cli(capsys, "eval", str(run), "--nll-samples", "2", "--disentanglement")
    assert code == 2 and "ground-truth factors" in err and "digits has none" in err
    code, _, err = run_cli(capsys, "eval", str(run), "--sample-quality", "--quality-samples", "3")
    assert code == 2 and "--quality-samples must be a whole number of at least 10" in err


def feature_images(split) -> classifier.LabelledImages:
    return eval_extras._feature_images(split)


def test_the_classifier_is_deterministic_and_cached(quick_classifier, monkeypatch):
    data = load_dataset("colour-shapes", limit=200)
    first = classifier.train_feature_net(feature_images(data.train), steps=15)
    second = classifier.train_feature_net(feature_images(data.train), steps=15)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    trained = eval_extras.feature_network(data)
    test_x = to_model_input(data.test.read(np.arange(5)))  # colour-shapes is stored as uint8
    assert trained.net.features(test_x).shape == (5, classifier.FEATURES)

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been used")

    monkeypatch.setattr(classifier, "train_feature_net", no_training)
    cached = eval_extras.feature_network(data)
    assert cached.test_accuracy == trained.test_accuracy and cached.data_hash == trained.data_hash
    torch.testing.assert_close(cached.net.features(test_x), trained.net.features(test_x))
    other = Splits(data.name, Rows(data.train, np.arange(95)), data.test)  # other data: a subset given as such
    def key(d: Splits) -> str:  # a run's --limit keeps the whole split's network: the key of the whole split
        return classifier.cache_key(d.name, feature_images(d.full_train()), feature_images(d.test), 40, 128, 0)

    assert key(other) != trained.data_hash == key(data) == key(load_dataset("colour-shapes"))


def test_the_classifier_reads_only_the_batches_it_trains_on(quick_classifier, monkeypatch):
    data = load_dataset("colour-shapes", limit=2000)
    counting = CountingImages(data.train.read(np.arange(len(data.train))), data.train.labels, most=128)
    net = classifier.train_feature_net(feature_images(counting), steps=5)
    assert counting.rows_read == 5 * 128 and isinstance(net, classifier.FeatureNet)
    counting.reads.clear()
    monkeypatch.setattr(classifier, "STEPS", 10)
    eval_extras.feature_network(Splits(data.name, counting, data.test))
    # the cache key samples KEY_SAMPLE_ROWS images; training reads STEPS batches of 128; nothing else
    assert counting.rows_read == classifier.KEY_SAMPLE_ROWS + 10 * 128 < len(counting)


def damage_json(record):
    record.write_text(record.read_text()[:40])


def damage_weights(record):
    weights = record.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:-100])


def wrong_classes(record):  # what a hand edit does: the record no longer matches its checksum
    record.write_text(record.read_text().replace('"classes": 3', '"classes": 7'))


def replace_weights(record):  # another network's weights of the same shapes, with a record that matches nothing
    from safetensors.torch import save_file

    net = classifier.FeatureNet((3, 32, 32), 3)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(record.with_suffix(".safetensors")))


def remove_weights(record):
    record.with_suffix(".safetensors").unlink()


@pytest.mark.parametrize("damage", [damage_json, damage_weights, wrong_classes, replace_weights, remove_weights])
def test_a_damaged_or_replaced_classifier_cache_is_said_and_trained_again(quick_classifier, capsys, damage):
    data = load_dataset("colour-shapes", limit=200)
    trained = eval_extras.feature_network(data)
    (record,) = quick_classifier.joinpath("classifiers").glob("*.json")
    assert json.loads(record.read_text())["classes"] == 3
    capsys.readouterr()
    damage(record)
    again = eval_extras.feature_network(data)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cached feature network" in err and "training it again" in err, err
    test_x = to_model_input(data.test.read(np.arange(5)))  # colour-shapes is stored as uint8
    torch.testing.assert_close(again.net.features(test_x), trained.net.features(test_x))  # deterministic retraining
    assert again.test_accuracy == trained.test_accuracy
    eval_extras.feature_network(data)  # the rebuilt cache is whole again: used without a word
    assert capsys.readouterr().err == ""
