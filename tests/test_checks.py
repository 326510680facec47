"""The one check for "a whole number of at least k", and SettingError, which names settings so that the command
line can name its flags instead."""
from __future__ import annotations

import pytest

from vaezoo.checks import whole_number
from vaezoo.errors import SettingError, VaezooError, literal


@pytest.mark.parametrize("value, least", [(1, 1), (0, 0), (2, 2), (10**12, 1)])
def test_a_whole_number_in_range_is_returned(value, least):
    assert whole_number("epochs", value, least) == value


@pytest.mark.parametrize("value, least", [(0, 1), (-1, 0), (1, 2), (True, 1), (1.0, 1), ("3", 1), (None, 1)])
def test_anything_else_is_refused_naming_the_setting_and_the_value(value, least):
    with pytest.raises(SettingError) as caught:
        whole_number("batch_size", value, least)
    assert str(caught.value) == f"batch_size must be a whole number of at least {least}, got {value!r}"
    assert isinstance(caught.value, VaezooError) and isinstance(caught.value, ValueError)
    assert caught.value.settings == ("batch_size",)


def test_a_setting_error_is_said_again_with_other_names_and_keeps_literal_braces():
    error = SettingError(f"{{0}} and {{1}} disagree: {literal({'a': 1})}", "image_size", "data_options")
    assert str(error) == "image_size and data_options disagree: {'a': 1}"
    flags = {"image_size": "--image-size", "data_options": "--data-option"}
    assert error.named(flags.get) == "--image-size and --data-option disagree: {'a': 1}"
    with pytest.raises(SettingError, match=r"got \{'x': 1\}"):
        whole_number("steps", {"x": 1})


def test_the_python_api_names_settings_and_the_command_line_names_flags(capsys):
    import vaezoo
    from vaezoo.cli.main import main

    with pytest.raises(SettingError, match="^epochs must be a whole number of at least 1, got 0$"):
        vaezoo.TrainConfig(variant="vae-mlp", dataset="digits", out="x", epochs=0).validate()
    assert main(["train", "vae-mlp", "--dataset", "digits", "--out", "x", "--batch-size", "0", "--quiet"]) == 2
    assert capsys.readouterr().err == "vaezoo: error: --batch-size must be a whole number of at least 1, got 0\n"
