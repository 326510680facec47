"""The conditional VAE: labels reach the encoder and decoder, sampling takes a label, and misuse is refused."""
from __future__ import annotations

import pytest
import torch

import vaezoo
from vaezoo.errors import CombinationError
from vaezoo.registry.catalog import Entry
from vaezoo.registry.discovery import get_registry


@pytest.mark.parametrize("name", ["cvae-mlp", "cvae-conv"])
def test_labels_change_the_encoding_and_the_decoding(name):
    torch.manual_seed(0)
    model = vaezoo.create_model(name, input_shape=(1, 8, 8), latent_dim=3)
    assert model.conditional and model.num_classes == 10
    x = torch.rand(2, 1, 8, 8).bernoulli()
    mu_a, _ = model.encode(x, torch.tensor([0, 0]))
    mu_b, _ = model.encode(x, torch.tensor([5, 5]))
    assert not torch.allclose(mu_a, mu_b)
    z = torch.zeros(2, 3)
    assert not torch.allclose(model.decode(z, torch.tensor([1, 1])), model.decode(z, torch.tensor([2, 2])))


def test_sampling_asks_for_a_label():
    torch.manual_seed(0)
    model = vaezoo.create_model("cvae-mlp", input_shape=(1, 8, 8), latent_dim=3)
    torch.manual_seed(1)
    threes = model.sample(4, y=3)
    torch.manual_seed(1)
    z = model.prior.sample(4)
    torch.testing.assert_close(threes, model.decode(z, torch.full((4,), 3)))
    torch.manual_seed(1)
    cycled = model.sample(12)  # no label: the classes in turn
    torch.manual_seed(1)
    torch.testing.assert_close(cycled, model.decode(model.prior.sample(12), torch.arange(12) % 10))


def test_labels_are_required_and_checked():
    model = vaezoo.create_model("cvae-mlp", input_shape=(1, 8, 8))
    x = torch.rand(2, 1, 8, 8).bernoulli()
    with pytest.raises(ValueError, match="needs labels"):
        model(x)
    with pytest.raises(ValueError, match=r"integers in \[0, 10\)"):
        model(x, torch.tensor([0, 10]))
    plain = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="not conditional"):
        plain(x, torch.tensor([0, 1]))


def test_iwae_and_elbo_broadcast_labels_over_samples():
    torch.manual_seed(0)
    model = vaezoo.create_model("cvae-mlp", input_shape=(1, 8, 8), latent_dim=3, objective="iwae", samples=4)
    x, y = torch.rand(3, 1, 8, 8).bernoulli(), torch.tensor([1, 2, 3])
    out = model(x, y)
    assert out.params.shape == (4, 3, 1, 8, 8)
    torch.testing.assert_close(out.params[2], model.decoder(out.z[2], torch.eye(10)[y]))


def test_any_variant_can_be_made_conditional_and_networks_without_labels_are_refused():
    model = vaezoo.create_model("vae-resnet", input_shape=(1, 8, 8), num_classes=4, **{"encoder.blocks": 1})
    assert model.conditional and model(torch.rand(2, 1, 8, 8).bernoulli(), torch.tensor([0, 3])).loss.isfinite()

    class PlainEncoder(torch.nn.Module):
        def __init__(self, input_shape, latent_dim):
            super().__init__()

    get_registry().add(Entry("encoder", "plain", PlainEncoder, "test-plugin"))
    with pytest.raises(CombinationError, match="takes no labels"):
        vaezoo.create_model("cvae-mlp", encoder="plain")
