"""The registry: listing, lookup errors with suggestions, overrides, and name clashes."""
from __future__ import annotations

import pytest

import vaezoo
from vaezoo.errors import AmbiguousNameError, BadOverrideError, UnknownNameError
from vaezoo.registry.catalog import Entry
from vaezoo.registry.discovery import get_registry


def test_builtin_variants_and_components_are_listed():
    assert {"vae-mlp", "vae-conv"} <= set(vaezoo.list_models())
    assert vaezoo.list_models("vae-c*") == ["vae-conv"]
    assert {"vae-conv", "vae-mlp"} <= set(vaezoo.list_models(tags=["density"]))
    assert all("density" in vaezoo.get_model_spec(n).tags for n in vaezoo.list_models(tags=["density"]))
    assert {"conv", "mlp"} <= set(vaezoo.list_components("encoder"))
    assert "standard-normal" in vaezoo.list_components("prior")
    assert {"bernoulli", "gaussian"} <= set(vaezoo.list_components("likelihood"))
    assert "elbo" in vaezoo.list_components("objective")


def test_builtins_are_registered_through_the_hooks():
    record = get_registry().plugins["vaezoo"]
    assert record.status == "active" and record.builtin
    assert set(record.contributed) == {"encoder", "posterior", "decoder", "prior", "likelihood", "objective", "variant",
                                       "dataset", "sampler"}
    assert get_registry().get("variant", "vae-mlp").plugin == "vaezoo"


def test_model_spec_names_its_plugin_and_parts():
    spec = vaezoo.get_model_spec("vae-conv")
    assert spec.plugin == "vaezoo"
    assert (spec.recipe.encoder, spec.recipe.decoder, spec.recipe.prior) == ("conv", "conv", "standard-normal")


def test_unknown_variant_suggests_close_match():
    with pytest.raises(UnknownNameError, match=r"Did you mean 'vae-mlp'"):
        vaezoo.create_model("vae-mpl")


def test_unknown_kind_is_rejected():
    with pytest.raises(BadOverrideError, match="unknown component kind"):
        vaezoo.list_components("encoders")


def test_bad_override_names_variant_component_key_and_accepted_keys():
    with pytest.raises(BadOverrideError) as info:
        vaezoo.create_model("vae-mlp", encoder={"depth": 3})
    text = str(info.value)
    assert "vae-mlp" in text and "'mlp'" in text and "encoder.depth" in text and "hidden_dims" in text
    with pytest.raises(BadOverrideError, match="no part accepts the override 'nonsense'"):
        vaezoo.create_model("vae-mlp", nonsense=1)


def test_overrides_reach_the_right_part():
    model = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), latent_dim=3, beta=4.0, **{"encoder.hidden_dims": [7]})
    assert model.objective.beta == 4.0
    assert model.encoder.body[0].out_features == 7
    assert model.decoder.net[0][0].out_features == 400  # only the encoder changed
    swapped = vaezoo.create_model("vae-mlp", input_shape=(1, 8, 8), likelihood="gaussian", sigma=0.5)
    assert type(swapped.likelihood).__name__ == "Gaussian"
    assert float(swapped.likelihood.log_sigma.exp().mean()) == pytest.approx(0.5)


def test_invalid_option_value_is_reported_with_the_part():
    with pytest.raises(BadOverrideError, match="building encoder 'vaezoo:mlp'"):
        vaezoo.create_model("vae-mlp", **{"encoder.hidden_dims": [0]})
    with pytest.raises(BadOverrideError, match="latent_dim"):
        vaezoo.create_model("vae-mlp", latent_dim=0)


def test_clashing_names_need_a_plugin_prefix():
    registry = get_registry()
    registry.add(Entry("encoder", "mlp", object, "other-plugin"))
    with pytest.raises(AmbiguousNameError) as info:
        registry.get("encoder", "mlp")
    assert "vaezoo:mlp" in str(info.value) and "other-plugin:mlp" in str(info.value)
    assert registry.get("encoder", "vaezoo:mlp").plugin == "vaezoo"
    assert registry.get("encoder", "other-plugin:mlp").obj is object
    assert set(registry.names("encoder", "mlp")) == {"vaezoo:mlp", "other-plugin:mlp"}


def test_invalid_names_are_refused():
    with pytest.raises(ValueError, match="not valid"):
        get_registry().add(Entry("encoder", "Bad Name", object, "x"))
