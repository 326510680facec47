"""The deep feature consistent VAE objective (Hou et al., 2017): its loss against a direct computation on the
feature network's layers, and the dataset's FeatureNet handed over by the training loop and saved with the model."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import vaezoo
from vaezoo.cli.main import main
from vaezoo.errors import BadOverrideError, DataError
from vaezoo.metrics.classifier import FeatureNet, shipped_manifest

SHAPE = (1, 8, 8)
SMALL = {"encoder.channels": [4], "encoder.hidden": 16, "decoder.channels": [4], "decoder.hidden": 16,
         "objective.feature_steps": 5}


def model(**options):
    torch.manual_seed(0)
    return vaezoo.create_model("dfc-vae-conv", input_shape=SHAPE, latent_dim=3,
                               **{**SMALL, **{f"objective.{k}": v for k, v in options.items()}})


def labelled(n: int = 24):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, *SHAPE, generator=g), torch.arange(n) % 3


def test_the_loss_is_the_halved_mean_squared_feature_difference_per_layer_plus_kl_and_pixels():
    m = model(feature_weight=0.7, kl_weight=0.3, pixel_weight=0.2)
    net = FeatureNet(SHAPE, 3)  # a network as the trainer hands it over (random weights suffice here)
    m.objective.use_feature_network(net, {"what": "test"})
    x = torch.rand(5, *SHAPE)
    torch.manual_seed(4)
    out = m(x)
    x_hat = torch.sigmoid(out.params)
    distance = torch.zeros(5)
    a, b = x_hat, x
    for conv in (net.body[0], net.body[2], net.body[4]):  # conv, ReLU, conv, ReLU, conv, ReLU
        a, b = torch.relu(conv(a)), torch.relu(conv(b))
        distance = distance + ((a - b) ** 2).flatten(1).sum(1) / (2 * a[0].numel())
    torch.testing.assert_close(out.terms["feature_distance"], distance)
    expected = (0.7 * 64 * distance + 0.3 * out.kl - 0.2 * out.recon).mean()
    torch.testing.assert_close(out.loss, expected)


def test_the_trainer_hands_over_the_datasets_feature_network_saved_with_the_model(tmp_path):
    m = model()
    x, y = labelled()
    vaezoo.fit(m, (x[:16], y[:16]), (x[16:], y[16:]), epochs=1, batch_size=8, out=tmp_path / "run")
    said = json.loads((tmp_path / "run" / "config.json").read_text())["objective"]
    assert said["perceptual"].startswith("vaezoo FeatureNet trained on this dataset's class labels")
    assert said["perceptual_network"]["training_steps"] == 5
    saved = load_file(tmp_path / "run" / "model.safetensors")
    weight = saved["objective.features.domain.convs.0.weight"]
    assert torch.equal(weight, m.objective.features.domain.convs[0].weight.detach().cpu())
    assert not torch.equal(weight, model().objective.features.domain.convs[0].weight.detach())  # not the random one
    assert vaezoo.load_model(tmp_path / "run").objective.features.domain.convs[0].weight.equal(weight)


def test_a_limited_run_trains_on_its_datasets_own_network(tmp_path):
    """With --limit the objective still gets the dataset's network, made from its whole training split (for
    digits at the default 1,000 steps: the one shipped with vaezoo, so nothing is trained)."""
    sets = [f"--set={k}={json.dumps(v)}" for k, v in SMALL.items() if k != "objective.feature_steps"]
    assert main(["train", "dfc-vae-conv", "--dataset", "digits", "--limit", "16", "--epochs", "1", "--batch-size",
                 "8", "--latent-dim", "3", *sets, "--out", str(tmp_path / "run"), "--quiet"]) == 0
    said = json.loads((tmp_path / "run" / "config.json").read_text())["objective"]["perceptual_network"]
    assert said["source"] == "shipped with vaezoo"
    assert said["weights_sha256"] == shipped_manifest()["digits"]["sha256"]


def test_the_feature_network_needs_class_labels_unless_the_feature_weight_is_zero():
    with pytest.raises(DataError, match=r"give labelled data .* or set objective.feature_weight=0"):
        vaezoo.fit(model(), labelled()[0], epochs=1, batch_size=8)
    vaezoo.fit(model(feature_weight=0.0, pixel_weight=1.0), labelled()[0], epochs=1, batch_size=8)
    with pytest.raises(BadOverrideError, match=r"dfc objective's feature network needs an image shape"):
        vaezoo.create_model("vae-mlp", input_shape=(64,), objective="dfc")
